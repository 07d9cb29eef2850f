"""Communities of the entity graph: hierarchical Leiden clustering, per access scope.

Entities live in one scope each (a tenant and an access list, :func:`graph.ids.entity_scope`)
and facts join entities of one document, so the entity graph never links two scopes.
Communities are therefore computed per scope: everything a community holds (its members,
name, counts, key facts and sentences) comes from documents of exactly one scope, and
whoever may read that scope may read all of it. Stores keep each scope's communities with
the fingerprint of the documents they were built from (:func:`scope_fingerprint`); a scope
whose documents changed since is stale and is rebuilt on the next read, and deleting a
document drops its scope's communities in the same transaction.

Levels: 0 is the coarsest partition of a scope (Leiden, modularity); each community of
level ``n`` with enough members is partitioned again into level ``n + 1`` children. A
community that does not split has no children. Single entities are not communities.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NewType

from pydantic import BaseModel, ConfigDict, Field

from graph.errors import StoreError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId, entity_scope
from graph.models import PUBLIC_GROUP, Access, Mention, Span

if TYPE_CHECKING:
    import igraph as ig

__all__ = [
    "Community",
    "CommunityId",
    "CommunityScope",
    "EntityGraph",
    "GraphNode",
    "check_scope",
    "community_name",
    "detect_communities",
    "edge_list",
    "nodes_from",
    "ordered",
    "scope_fingerprint",
]

CommunityId = NewType("CommunityId", str)

#: Levels of the hierarchy (0 = coarsest).
LEVELS = 3
#: A community is partitioned again only when it has at least this many members.
MIN_SPLIT = 8


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def scope_fingerprint(document_ids: Iterable[str]) -> str:
    """Content hash of the set of a scope's document ids (ids hash content, so any
    ingest, replacement or delete in the scope changes it)."""
    digest = hashlib.sha256("\x1f".join(sorted(set(document_ids))).encode("utf-8"))
    return digest.hexdigest()[:32]


class CommunityScope(_Frozen):
    """One access scope of a store as the community builder sees it.

    ``fingerprint`` hashes the scope's documents now; ``built`` the documents its stored
    communities were computed from (``None``: never computed, or dropped by a delete).
    """

    tenant: str
    groups: tuple[str, ...]
    fingerprint: str
    built: str | None = None

    @classmethod
    def of(
        cls, tenant: str, groups: Iterable[str], fingerprint: str, built: str | None = None
    ) -> CommunityScope:
        """A scope with its groups in canonical (sorted, unique) order."""
        return cls(
            tenant=tenant, groups=tuple(sorted(set(groups))), fingerprint=fingerprint, built=built
        )

    @property
    def key(self) -> str:
        """Opaque stable key of the scope (a hash; it names no tenant or group)."""
        raw = entity_scope(self.tenant, self.groups).encode("utf-8")
        return "scp_" + hashlib.sha256(raw).hexdigest()[:16]

    @property
    def stale(self) -> bool:
        """Whether the stored communities were built from other documents (or never)."""
        return self.built != self.fingerprint

    def access(self) -> Access:
        """Read access to exactly this scope's documents (and the tenant's public ones)."""
        return Access(
            tenant=self.tenant, groups=frozenset(g for g in self.groups if g != PUBLIC_GROUP)
        )


class GraphNode(_Frozen):
    """An entity of a scope's graph: its name, mentions, and the documents and chunks
    (passages) mentioning it."""

    id: EntityId
    name: str
    mentions: int = Field(ge=0)
    documents: tuple[DocumentId, ...] = ()
    chunks: tuple[ChunkId, ...] = ()


class EntityGraph(_Frozen):
    """A scope's entity graph: nodes, and undirected weighted edges (summed fact strength)."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[EntityId, EntityId, float], ...]


class Community(_Frozen):
    """A community of one scope's entity graph, with the cited items that summarise it.

    ``entity_ids`` are ordered by centrality (PageRank over the scope's graph), most
    central first. ``documents`` and ``passages`` count the documents and chunks that
    mention a member (how much of the corpus the community spans). ``facts`` (its
    strongest facts), ``mentions`` (one mention of each key entity) and ``sentences``
    (representative sentences, chosen for coverage and non-redundancy) are what its
    summary cites. ``vector`` is the unit mean embedding of
    its candidate sentences (empty when none was embedded).
    """

    id: CommunityId
    tenant: str
    groups: tuple[str, ...]
    level: int = Field(ge=0)
    parent: CommunityId | None = None
    name: str
    entity_ids: tuple[EntityId, ...] = Field(min_length=2)
    documents: int = Field(ge=0)
    passages: int = Field(default=0, ge=0)
    facts: tuple[RelationId, ...] = ()
    mentions: tuple[Mention, ...] = ()
    sentences: tuple[Span, ...] = ()
    vector: tuple[float, ...] = ()


def detect_communities(
    scope: CommunityScope,
    graph: EntityGraph,
    *,
    previous: Sequence[Community] = (),
    levels: int = LEVELS,
    min_split: int = MIN_SPLIT,
    seed: int = 7,
) -> list[Community]:
    """Hierarchical communities of a scope's entity graph (CPU-bound; run in a thread).

    ``previous``: the scope's last communities; their coarsest partition seeds Leiden, so
    a recomputation after a small change starts from the old answer and keeps most
    communities (and their ids) as they were. Summaries (facts, mentions, sentences) are
    left empty for the summariser to fill.
    """
    # igraph (and the plotting library it imports) loads only when communities are detected.
    import igraph as ig  # noqa: PLC0415
    import leidenalg as la  # noqa: PLC0415

    index = {n.id: i for i, n in enumerate(graph.nodes)}
    g = ig.Graph(n=len(graph.nodes))
    weights: dict[tuple[int, int], float] = defaultdict(float)
    for a, b, w in graph.edges:
        if a in index and b in index and a != b:
            i, j = sorted((index[a], index[b]))
            weights[(i, j)] += w
    g.add_edges(list(weights))
    g.es["weight"] = list(weights.values())
    if not g.ecount():
        return []
    rank = g.pagerank(weights="weight")
    start = _initial_membership(graph, previous)
    top: list[list[int]] = []
    # Each connected component is partitioned on its own (a community never spans two):
    # a component a write did not touch gets the same input, hence the same communities
    # (and ids, so their summaries are kept).
    for component in g.connected_components():
        if len(component) < 2:
            continue
        sub = g.induced_subgraph(component)
        seeded = None if start is None else _compact([start[v] for v in component])
        parts = la.find_partition(
            sub, la.ModularityVertexPartition, weights="weight", seed=seed,
            initial_membership=seeded,
        )  # fmt: skip
        top.extend([component[v] for v in part] for part in parts)
    out: list[Community] = []
    frontier: list[tuple[list[int], CommunityId | None]] = [(m, None) for m in top]
    for level in range(levels):
        below: list[tuple[list[int], CommunityId | None]] = []
        for members, parent in frontier:
            if len(members) < 2:
                continue
            made = _community(scope, graph, members, rank, level, parent)
            out.append(made)
            if len(members) >= min_split and level + 1 < levels:
                below.extend((part, made.id) for part in _split(g, members, seed))
        frontier = below
    return out


def _split(g: ig.Graph, members: list[int], seed: int) -> list[list[int]]:
    import leidenalg as la  # noqa: PLC0415 - see detect_communities

    sub = g.induced_subgraph(members)
    if not sub.ecount():
        return []
    parts = la.find_partition(sub, la.ModularityVertexPartition, weights="weight", seed=seed)
    if len(parts) < 2:
        return []
    return [[members[v] for v in part] for part in parts]


def _initial_membership(graph: EntityGraph, previous: Sequence[Community]) -> list[int] | None:
    top = [c for c in previous if c.level == 0]
    if not top:
        return None
    where = {e: i for i, c in enumerate(top) for e in c.entity_ids}
    fresh = len(top)
    membership = []
    for node in graph.nodes:
        if node.id in where:
            membership.append(where[node.id])
        else:
            membership.append(fresh)
            fresh += 1
    return _compact(membership)


def _compact(membership: Sequence[int]) -> list[int]:
    """Membership renumbered 0, 1, ... in order of first appearance."""
    compact: dict[int, int] = {}
    return [compact.setdefault(m, len(compact)) for m in membership]


def _community(
    scope: CommunityScope,
    graph: EntityGraph,
    members: list[int],
    rank: Sequence[float],
    level: int,
    parent: CommunityId | None,
) -> Community:
    ordered = sorted(members, key=lambda v: (-rank[v], graph.nodes[v].id))
    ids = tuple(graph.nodes[v].id for v in ordered)
    raw = "\x1f".join([scope.key, str(level), *sorted(ids)]).encode("utf-8")
    docs = {d for v in members for d in graph.nodes[v].documents}
    chunks = {c for v in members for c in graph.nodes[v].chunks}
    return Community(
        id=CommunityId("com_" + hashlib.sha256(raw).hexdigest()[:16]),
        tenant=scope.tenant,
        groups=scope.groups,
        level=level,
        parent=parent,
        name=community_name([graph.nodes[v].name for v in ordered]),
        entity_ids=ids,
        documents=len(docs),
        passages=len(chunks),
    )


def community_name(names: Sequence[str], shown: int = 3) -> str:
    """A community's name from its members' names, most central first."""
    unique = list(dict.fromkeys(names))
    head = ", ".join(unique[:shown])
    more = len(unique) - shown
    return f"{head} and {more} more" if more > 0 else head


def fact_weight(confidence: float, spans: int) -> float:
    """Edge weight a fact adds between its two entities (strength, dampened)."""
    return confidence * math.log1p(spans)


def edge_list(
    rows: Iterable[tuple[EntityId, EntityId, float, int]],
) -> tuple[tuple[EntityId, EntityId, float], ...]:
    """Undirected weighted edges from ``(subject, object, confidence, spans)`` fact rows."""
    summed: dict[tuple[EntityId, EntityId], float] = defaultdict(float)
    for a, b, confidence, spans in rows:
        if a != b:
            key = (a, b) if a < b else (b, a)
            summed[key] += fact_weight(confidence, spans)
    return tuple((a, b, w) for (a, b), w in sorted(summed.items()))


def nodes_from(
    names: Mapping[EntityId, str],
    mentions: Iterable[tuple[EntityId, DocumentId, ChunkId, int]],
) -> tuple[GraphNode, ...]:
    """Graph nodes from entity names and ``(entity, document, chunk, mentions)`` rows."""
    counts: dict[EntityId, int] = defaultdict(int)
    docs: dict[EntityId, set[DocumentId]] = defaultdict(set)
    chunks: dict[EntityId, set[ChunkId]] = defaultdict(set)
    for eid, did, cid, n in mentions:
        counts[eid] += n
        docs[eid].add(did)
        chunks[eid].add(cid)
    return tuple(
        GraphNode(
            id=e,
            name=names[e],
            mentions=counts[e],
            documents=tuple(sorted(docs[e])),
            chunks=tuple(sorted(chunks[e])),
        )
        for e in sorted(counts)
        if e in names
    )


def ordered(communities: Iterable[Community]) -> list[Community]:
    """Communities in the order every store returns them: by level, then most documents,
    most passages, most members, id."""
    return sorted(
        communities,
        key=lambda c: (c.level, -c.documents, -c.passages, -len(c.entity_ids), c.id),
    )


def check_scope(scope: CommunityScope, communities: Iterable[Community]) -> None:
    """Raise :class:`StoreError` unless every community belongs to ``scope``."""
    for c in communities:
        if c.tenant != scope.tenant or tuple(sorted(set(c.groups))) != scope.groups:
            raise StoreError(f"community {c.id} does not belong to the scope it is stored in")
