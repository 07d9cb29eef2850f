"""Community detection and the choice of representative sentences, on hand-built graphs."""

from __future__ import annotations

import itertools

import numpy as np

from agents.communities import mmr
from graph import ChunkId, DocumentId, EntityId
from graph.communities import (
    CommunityScope,
    EntityGraph,
    GraphNode,
    detect_communities,
    edge_list,
    ordered,
    scope_fingerprint,
)

SCOPE = CommunityScope.of("acme", ["*"], scope_fingerprint(["doc_a"]))


def _graph(groups: list[list[str]], bridges: list[tuple[str, str]]) -> EntityGraph:
    names = [n for g in groups for n in g]
    nodes = tuple(
        GraphNode(
            id=EntityId(f"ent_{n}"),
            name=n,
            mentions=1,
            documents=(DocumentId("doc_a"),),
            chunks=(ChunkId(f"chk_{n}"),),
        )
        for n in names
    )
    rows = [
        (EntityId(f"ent_{a}"), EntityId(f"ent_{b}"), 0.9, 2)
        for g in groups
        for a, b in itertools.combinations(g, 2)
    ]
    rows += [(EntityId(f"ent_{a}"), EntityId(f"ent_{b}"), 0.1, 1) for a, b in bridges]
    return EntityGraph(nodes=nodes, edges=edge_list(rows))


def test_two_dense_groups_joined_by_one_weak_fact_are_two_communities() -> None:
    graph = _graph([["a1", "a2", "a3", "a4"], ["b1", "b2", "b3"]], [("a1", "b1")])
    top = [c for c in detect_communities(SCOPE, graph) if c.level == 0]
    assert sorted(sorted(c.entity_ids) for c in top) == [
        ["ent_a1", "ent_a2", "ent_a3", "ent_a4"],
        ["ent_b1", "ent_b2", "ent_b3"],
    ]
    assert all(c.tenant == "acme" and c.groups == ("*",) and c.parent is None for c in top)
    assert {c.passages for c in top} == {4, 3}
    assert all(c.id.startswith("com_") for c in top)


def test_large_communities_split_into_children_one_level_down() -> None:
    # Three cliques of four, weakly chained, read as one community at the top level only
    # when the weak links are strong enough; either way every child names its parent.
    groups = [[f"{g}{i}" for i in range(4)] for g in "xyz"]
    graph = _graph(groups, [("x0", "y0"), ("y1", "z1"), ("x2", "z2")])
    found = detect_communities(SCOPE, graph, min_split=8)
    by_id = {c.id: c for c in found}
    assert max(c.level for c in found) <= 2
    for c in found:
        if c.parent is not None:
            parent = by_id[c.parent]
            assert parent.level == c.level - 1
            assert set(c.entity_ids) < set(parent.entity_ids)
            assert len(parent.entity_ids) >= 8


def test_a_recomputation_seeded_with_the_old_partition_keeps_its_communities() -> None:
    graph = _graph([["a1", "a2", "a3"], ["b1", "b2", "b3"]], [("a1", "b1")])
    first = detect_communities(SCOPE, graph)
    again = detect_communities(SCOPE, graph, previous=first)
    assert [c.id for c in ordered(again)] == [c.id for c in ordered(first)]


def test_isolated_entities_are_no_community_and_fingerprints_ignore_order() -> None:
    lonely = EntityGraph(nodes=(GraphNode(id=EntityId("ent_x"), name="x", mentions=1),), edges=())
    assert detect_communities(SCOPE, lonely) == []
    assert scope_fingerprint(["b", "a"]) == scope_fingerprint(["a", "b", "a"])
    assert scope_fingerprint(["a"]) != scope_fingerprint(["a", "b"])


def test_mmr_prefers_a_new_direction_to_a_near_duplicate() -> None:
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.array([0.9, 0.89, 0.6], dtype=np.float32)
    assert mmr(vectors, relevance, 2) == [0, 2]
