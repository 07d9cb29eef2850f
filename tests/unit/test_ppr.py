from __future__ import annotations

import networkx as nx
import pytest

from graph import personalized_pagerank


def test_matches_networkx_pagerank() -> None:
    edges = [("a", "b", 1.0), ("b", "c", 2.0), ("c", "d", 1.0), ("a", "c", 0.5), ("d", "e", 1.0)]
    seeds = {"a": 1.0, "e": 0.5}
    ours = personalized_pagerank(edges, seeds, damping=0.5, iterations=200)
    graph = nx.Graph()
    graph.add_weighted_edges_from(edges)
    theirs = nx.pagerank(graph, alpha=0.5, personalization=seeds, weight="weight", tol=1e-12)
    for node, value in theirs.items():
        assert ours[node] == pytest.approx(value, abs=1e-6)
    assert sum(ours.values()) == pytest.approx(1.0)


def test_mass_flows_to_what_the_seeds_touch() -> None:
    edges = [("q", "x", 1.0), ("x", "chunk1", 1.0), ("y", "chunk2", 1.0)]
    ranks = personalized_pagerank(edges, {"q": 1.0})
    assert ranks["chunk1"] > 0
    assert ranks["chunk2"] == 0
    assert ranks["y"] == 0


def test_empty_and_seedless() -> None:
    assert personalized_pagerank([], {}) == {}
    assert personalized_pagerank([("a", "b", 1.0)], {"a": 0.0}) == {"a": 0.0, "b": 0.0}
