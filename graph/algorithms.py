"""Graph algorithms every store shares, each written once.

A store supplies only the small callbacks its query language needs (one bounded query per
breadth-first level for Neo4j, an in-memory lookup for networkx); the algorithm, its bounds
and its orderings live here, so every store returns the same answer to the same question.

- :func:`fact_rank` / :func:`strongest_first`: which fact is strongest (relations
  ordering, and the fact each hop of a path carries).
- :func:`name_match` / :func:`rank_entities`: entity name-search ranking.
- :func:`restated_names`: an entity's name and aliases after a delete, from what its
  remaining mentions still state.
- :func:`bounded_neighborhood`: breadth-first expansion within a depth and an entity
  limit, and what ``truncated`` means.
- :func:`shortest_paths`: all shortest fact chains between two entities.
- :func:`personalized_pagerank`: random walk with restart over a small weighted graph.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

import numpy as np

from graph.ids import EntityId, RelationId, normalize_name
from graph.models import Entity, GraphPath, Relation

__all__ = [
    "EXPAND_CAP",
    "FactEnds",
    "bounded_neighborhood",
    "fact_rank",
    "level_fact_cap",
    "name_match",
    "personalized_pagerank",
    "rank_entities",
    "restated_names",
    "shortest_paths",
    "strongest_first",
]

N = TypeVar("N", bound=Hashable)

#: Neighbour pairs one breadth-first level of a path search may read.
EXPAND_CAP = 5000


# ---------------------------------------------------------------------- fact strength


def fact_rank(rid: RelationId, confidence: float, spans: int) -> tuple[float, int, RelationId]:
    """Sort key of a fact, largest first: strength (best readable confidence times the
    number of readable evidence spans), then the number of spans, then the id (descending).

    Stores that must cut a ranked list inside their query language order by the same three
    values, in the same directions.
    """
    return (confidence * spans, spans, rid)


def strongest_first(relations: Iterable[Relation]) -> list[Relation]:
    """Facts ordered strongest first (see :func:`fact_rank`)."""
    return sorted(
        relations, key=lambda r: fact_rank(r.id, r.confidence, len(r.evidence)), reverse=True
    )


# ---------------------------------------------------------------------- name search


def name_match(needle: str, keys: Iterable[str]) -> int | None:
    """How a normalised search text matches an entity's normalised names and aliases:
    0 when one equals it, 1 when one starts with it, 2 when one contains it, else None."""
    keys = list(keys)
    if needle in keys:
        return 0
    if any(k.startswith(needle) for k in keys):
        return 1
    if any(needle in k for k in keys):
        return 2
    return None


def rank_entities(scored: Iterable[tuple[Entity, int, int]], limit: int) -> list[Entity]:
    """Entities from ``(entity, match, mentions)`` triples: best match first (see
    :func:`name_match`), then most readable mentions, ties by id; at most ``limit``."""
    ranked = sorted(scored, key=lambda t: (t[1], -t[2], t[0].id))
    return [t[0] for t in ranked[: max(limit, 0)]]


def restated_names(entity: Entity, surfaces: Mapping[str, int]) -> Entity:
    """The entity as its remaining mentions state it (``surfaces``: text -> mentions).

    An alias no surface states is dropped. A canonical name no surface states gives way
    to the most frequent surface (ties by the longest, then alphabetical); the id stays,
    since ids are opaque. With no surfaces at all the entity is returned unchanged (a
    store deletes it instead).
    """
    if not surfaces:
        return entity
    stated = {normalize_name(text) for text in surfaces}
    name = entity.name
    if normalize_name(name) not in stated:
        name = min(surfaces, key=lambda text: (-surfaces[text], -len(text), text))
    key = normalize_name(name)
    aliases = tuple(
        dict.fromkeys(
            a for a in entity.aliases if normalize_name(a) in stated and normalize_name(a) != key
        )
    )
    if name == entity.name and aliases == entity.aliases:
        return entity
    return entity.model_copy(update={"name": name, "aliases": aliases})


# ---------------------------------------------------------------------- neighbourhoods


class FactEnds(Protocol):
    """What breadth-first expansion reads of a fact (a :class:`Relation` has it)."""

    @property
    def id(self) -> RelationId: ...

    @property
    def subject_id(self) -> EntityId: ...

    @property
    def object_id(self) -> EntityId: ...


F = TypeVar("F", bound=FactEnds)


def level_fact_cap(limit: int) -> int:
    """Facts one level of :func:`bounded_neighborhood` reads: enough to fill ``limit``
    entities many times over, bounded so that a hub never floods a query."""
    return max(limit * 20, 200)


async def bounded_neighborhood(
    seeds: Sequence[EntityId],
    expand: Callable[[Sequence[EntityId], int], Awaitable[Sequence[F]]],
    *,
    depth: int,
    limit: int,
) -> tuple[list[EntityId], list[F], bool]:
    """Breadth-first expansion from ``seeds`` (already checked as readable).

    ``expand(frontier, cap)`` returns the readable facts touching any frontier entity
    (restricted to the asked predicates), strongest first (:func:`fact_rank`), at most
    ``cap`` of them.

    Each level reads the facts touching the frontier, strongest first, and admits their
    unseen ends in that order until ``limit`` entities are kept. A fact is kept when both
    its ends are. Returns the kept entity ids (seeds first, then by level and strength),
    the kept facts, and ``truncated``.

    ``truncated`` is true exactly when the limit left something out that the same
    expansion without a limit would have returned: a seed or a reached entity that found
    no room, or a level with more facts than :func:`level_fact_cap` allows (every one of
    the unread facts would have been kept or would have brought a new entity).
    """
    unique = list(dict.fromkeys(seeds))
    kept: dict[EntityId, None] = dict.fromkeys(unique[: max(limit, 0)])
    truncated = len(unique) > len(kept)
    facts: dict[RelationId, F] = {}
    frontier = list(kept)
    cap = level_fact_cap(limit)
    for _ in range(depth):
        if not frontier:
            break
        touching = await expand(frontier, cap + 1)
        if len(touching) > cap:
            truncated = True
            touching = touching[:cap]
        nxt: list[EntityId] = []
        for fact in touching:
            for end in (fact.subject_id, fact.object_id):
                if end in kept:
                    continue
                if len(kept) >= limit:
                    truncated = True
                    continue
                kept[end] = None
                nxt.append(end)
            if fact.subject_id in kept and fact.object_id in kept:
                facts.setdefault(fact.id, fact)
        frontier = nxt
    return list(kept), list(facts.values()), truncated


# ---------------------------------------------------------------------- paths

#: ``neighbours(frontier, cap)``: pairs ``(a, b)`` of a frontier entity ``a`` and an entity
#: ``b`` linked to it by a readable fact (either direction), distinct, in ``(a, b)`` order,
#: at most ``cap`` of them.
NeighbourExpansion = Callable[
    [Sequence[EntityId], int], Awaitable[Sequence[tuple[EntityId, EntityId]]]
]
#: ``between(pairs)``: the readable facts linking each pair, in either direction.
FactsBetween = Callable[[Sequence[tuple[EntityId, EntityId]]], Awaitable[Sequence[Relation]]]


async def shortest_paths(
    source: EntityId,
    target: EntityId,
    neighbours: NeighbourExpansion,
    between: FactsBetween,
    *,
    max_hops: int,
    limit: int,
) -> list[GraphPath]:
    """All shortest fact chains from ``source`` to ``target`` (both already checked as
    readable), at most ``max_hops`` facts long, at most ``limit`` of them in entity-id
    order; each hop carries its strongest fact (:func:`fact_rank`).

    A bidirectional breadth-first search expands the smaller frontier one level at a time,
    each level one ``neighbours`` call of at most :data:`EXPAND_CAP` pairs, so the search
    never holds more than the levels it visited.
    """
    if source == target or max_hops < 1 or limit < 1:
        return []
    node_paths = await _shortest_node_paths(source, target, neighbours, max_hops, limit)
    if not node_paths:
        return []
    pairs = sorted({_pair(a, b) for nodes in node_paths for a, b in itertools.pairwise(nodes)})
    linking: dict[tuple[EntityId, EntityId], list[Relation]] = defaultdict(list)
    for fact in await between(pairs):
        linking[_pair(fact.subject_id, fact.object_id)].append(fact)
    best = {pair: strongest_first(facts)[0] for pair, facts in linking.items() if facts}
    paths = []
    for nodes in node_paths:
        hops = [best.get(_pair(a, b)) for a, b in itertools.pairwise(nodes)]
        # A fact deleted between the two reads leaves its hop empty: that path is gone.
        chain = [h for h in hops if h is not None]
        if len(chain) == len(hops):
            paths.append(GraphPath(entity_ids=nodes, relations=tuple(chain)))
    return paths


def _pair(a: EntityId, b: EntityId) -> tuple[EntityId, EntityId]:
    return (a, b) if a <= b else (b, a)


async def _shortest_node_paths(
    source: EntityId,
    target: EntityId,
    neighbours: NeighbourExpansion,
    max_hops: int,
    limit: int,
) -> list[tuple[EntityId, ...]]:
    """Entity chains of every shortest path (up to ``limit``, in entity-id order)."""
    preds: tuple[dict[EntityId, set[EntityId]], dict[EntityId, set[EntityId]]] = (
        {source: set()},
        {target: set()},
    )
    dist: tuple[dict[EntityId, int], dict[EntityId, int]] = ({source: 0}, {target: 0})
    fronts: list[set[EntityId]] = [{source}, {target}]
    levels = [0, 0]
    while fronts[0] and fronts[1] and levels[0] + levels[1] < max_hops:
        side = 0 if len(fronts[0]) <= len(fronts[1]) else 1
        adjacency: dict[EntityId, set[EntityId]] = defaultdict(set)
        for a, b in await neighbours(sorted(fronts[side]), EXPAND_CAP):
            adjacency[a].add(b)
        new: dict[EntityId, set[EntityId]] = defaultdict(set)
        for u in fronts[side]:
            for v in adjacency.get(u, ()):
                if v not in preds[side]:
                    new[v].add(u)
        levels[side] += 1
        for v, parents in new.items():
            preds[side][v] = parents
            dist[side][v] = levels[side]
        fronts[side] = set(new)
        meet = [v for v in new if v in dist[1 - side]]
        if meet:
            return _joined(meet, preds, dist)[:limit]
    return []


def _joined(
    meet: list[EntityId],
    preds: tuple[dict[EntityId, set[EntityId]], dict[EntityId, set[EntityId]]],
    dist: tuple[dict[EntityId, int], dict[EntityId, int]],
) -> list[tuple[EntityId, ...]]:
    """Every shortest chain through the entities where the two searches met, sorted."""
    total = min(dist[0][v] + dist[1][v] for v in meet)
    found: set[tuple[EntityId, ...]] = set()
    for v in sorted(v for v in meet if dist[0][v] + dist[1][v] == total):
        for head in _walk(v, preds[0]):
            for tail in _walk(v, preds[1]):
                found.add((*reversed(head), *tail[1:]))
    return sorted(found)


def _walk(
    node: EntityId, preds: dict[EntityId, set[EntityId]], cap: int = 100
) -> list[tuple[EntityId, ...]]:
    """Chains from ``node`` back to the root of a predecessor map (node first), at most
    ``cap`` of them (dense graphs have combinatorially many)."""
    parents = preds[node]
    if not parents:
        return [(node,)]
    chains = [(node, *rest) for p in sorted(parents) for rest in _walk(p, preds, cap)]
    return chains[:cap]


# ---------------------------------------------------------------------- PageRank


def personalized_pagerank(
    edges: Iterable[tuple[N, N, float]],
    seeds: Mapping[N, float],
    *,
    damping: float = 0.5,
    iterations: int = 30,
    tolerance: float = 1e-8,
) -> dict[N, float]:
    """Stationary probabilities of a random walk that restarts at ``seeds``.

    Edges are undirected with positive weights; ``damping`` is the probability of
    following an edge rather than jumping back to a seed (HippoRAG uses 0.5). Nodes only
    reachable from nothing keep probability 0. Dangling mass returns to the seeds.
    """
    index: dict[N, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    for a, b, w in edges:
        if w <= 0 or a == b:
            continue
        ia = index.setdefault(a, len(index))
        ib = index.setdefault(b, len(index))
        rows += [ia, ib]
        cols += [ib, ia]
        weights += [w, w]
    for node in seeds:
        index.setdefault(node, len(index))
    size = len(index)
    if size == 0:
        return {}
    restart = np.zeros(size)
    for node, w in seeds.items():
        restart[index[node]] += max(w, 0.0)
    if restart.sum() <= 0:
        return dict.fromkeys(index, 0.0)
    restart /= restart.sum()
    src = np.asarray(rows, dtype=np.int64)
    dst = np.asarray(cols, dtype=np.int64)
    val = np.asarray(weights, dtype=np.float64)
    out_weight = np.bincount(src, weights=val, minlength=size)
    share = val / out_weight[src] if len(val) else val
    rank = restart.copy()
    for _ in range(iterations):
        spread = np.bincount(dst, weights=rank[src] * share, minlength=size)
        dangling = rank[out_weight == 0].sum()
        nxt = (1 - damping) * restart + damping * (spread + dangling * restart)
        if np.abs(nxt - rank).sum() < tolerance:
            rank = nxt
            break
        rank = nxt
    return {node: float(rank[i]) for node, i in index.items()}
