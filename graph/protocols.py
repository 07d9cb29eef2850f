"""Storage protocols. Every backend passes the contract suite in ``tests/contract``.

Both protocols are async and batch-first so that the same calls map onto one Cypher
``UNWIND $rows`` statement or one Qdrant request. Every read takes the caller's
:class:`~graph.models.Access` and filters inside the store query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph.communities import Community, CommunityId, CommunityScope, EntityGraph
from graph.errors import StoreError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId
from graph.models import (
    Access,
    Chunk,
    DeleteReport,
    Document,
    DocumentGraph,
    Entity,
    GraphPath,
    Mention,
    Neighborhood,
    Relation,
    StoreStats,
)

__all__ = [
    "GraphStore",
    "SentenceVector",
    "SparseVector",
    "VectorHit",
    "VectorIndex",
    "VectorPoint",
]


@runtime_checkable
class GraphStore(Protocol):
    """The knowledge graph: documents, chunks, entities, mentions and facts."""

    async def upsert(
        self, graphs: Sequence[DocumentGraph], *, replaces: Sequence[DocumentId] = ()
    ) -> None:
        """Write documents with everything extracted from them, in one transaction.

        Documents listed in ``replaces`` (older versions) are deleted in the same
        transaction, so readers see either the old versions or the new ones.
        """
        ...

    async def delete(self, document_ids: Sequence[DocumentId]) -> DeleteReport:
        """Delete documents, their chunks, and every mention, fact and entity no other
        document supports."""
        ...

    async def documents(
        self,
        access: Access,
        *,
        ids: Sequence[DocumentId] | None = None,
        source: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Document]:
        """Readable documents, optionally restricted to ids or to one source, by source."""
        ...

    async def chunks(self, ids: Sequence[ChunkId], access: Access) -> list[Chunk]:
        """Readable chunks by id (unknown or unreadable ids are left out)."""
        ...

    async def chunks_overlapping(
        self, ranges: Sequence[tuple[DocumentId, int, int]], access: Access
    ) -> list[Chunk]:
        """Readable chunks that overlap any ``(document id, start, end)`` range of document
        offsets (``chunk.start < end`` and ``start < chunk.end``), each once, by document id
        then start then index. Unknown or unreadable documents give none.
        """
        ...

    async def pages(self, names: Sequence[str], access: Access) -> dict[str, list[Chunk]]:
        """Each name's pages: the first chunk of every readable document titled with it or
        about it (``Document.about``: what its opening sentence is about).

        Names compare by :func:`~graph.ids.title_key` (case-folded, a trailing
        parenthesis ignored: "Brand (play)" is a page of "Brand"). Pages whose full title
        equals the name come first, then those about exactly that name, then by document
        id; names without a page are left out.
        """
        ...

    async def entities(self, ids: Sequence[EntityId], access: Access) -> list[Entity]:
        """Entities by id that are mentioned in at least one readable document."""
        ...

    async def search_entities(
        self, text: str, access: Access, *, types: Sequence[str] = (), limit: int = 20
    ) -> list[Entity]:
        """Readable entities whose name or alias contains ``text`` (case-insensitive).

        Ranked by :func:`graph.algorithms.rank_entities`: a name or alias equal to the
        text first, then one starting with it, then one containing it; within each, most
        readable mentions first, ties by id.
        """
        ...

    async def match_entities(self, names: Sequence[str], access: Access) -> dict[str, list[Entity]]:
        """Readable entities whose normalised name or an alias equals each name exactly,
        most readable mentions first (ties by id).

        Names without a match are left out of the result.
        """
        ...

    async def mentions(
        self, entity_ids: Sequence[EntityId], access: Access, *, limit: int = 100
    ) -> list[Mention]:
        """Mentions of the entities in readable documents, in document order."""
        ...

    async def mention_edges(
        self, entity_ids: Sequence[EntityId], access: Access, *, per_entity: int = 200
    ) -> list[tuple[EntityId, ChunkId, int]]:
        """The entity-chunk graph around the entities: (entity, chunk, mention count) for
        readable chunks, at most ``per_entity`` chunks per entity (most mentions first, ties
        by chunk id)."""
        ...

    async def chunk_mentions(self, chunk_ids: Sequence[ChunkId], access: Access) -> list[Mention]:
        """Every mention inside the readable chunks, in chunk then text order."""
        ...

    async def facts(self, ids: Sequence[RelationId], access: Access) -> list[Relation]:
        """Facts by id with only their readable evidence (unknown or unreadable ids left out)."""
        ...

    async def relations(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        predicates: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Relation]:
        """Facts touching the entities, with only their readable evidence, strongest first.

        Strength (:func:`graph.algorithms.fact_rank`) is the best readable confidence times
        the number of readable evidence spans; ties go to more spans, then to the larger id.
        """
        ...

    async def neighbors(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        depth: int = 1,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> Neighborhood:
        """The readable subgraph within ``depth`` hops, at most ``limit`` entities.

        Expanded breadth-first, strongest facts first (:func:`graph.bounded_neighborhood`);
        a fact is included when both its ends are. ``truncated`` is true exactly when the
        limit left out an entity or fact that the same expansion without a limit would
        have returned.
        """
        ...

    async def paths(
        self,
        source: EntityId,
        target: EntityId,
        access: Access,
        *,
        max_hops: int = 4,
        limit: int = 10,
    ) -> list[GraphPath]:
        """Shortest chains of readable facts between two entities (at most ``max_hops``
        facts long, at most ``limit`` paths, in entity-id order); only chains of the
        shortest length are returned, and each hop carries its strongest fact in either
        direction (:func:`graph.shortest_paths`)."""
        ...

    async def export(self, document_ids: Sequence[DocumentId]) -> list[DocumentGraph]:
        """Everything stored for these documents, as the graphs that would re-create them
        (for migrations between stores; unrestricted, so operators only)."""
        ...

    async def stats(self, access: Access) -> StoreStats:
        """Counts of what ``access`` can see."""
        ...

    async def pii_values(self, access: Access, types: frozenset[str]) -> list[tuple[str, str]]:
        """The distinct ``(text, type)`` pairs that stored ``pii`` tags of ``types`` cover,
        in the chunks ``access`` may read only (so masking never reveals another scope's
        values), sorted."""
        ...

    async def community_scopes(self, access: Access) -> list[CommunityScope]:
        """The access scopes ``access`` may read that hold documents, each with the
        fingerprint of its documents now and of those its stored communities were built
        from (see :mod:`graph.communities`)."""
        ...

    async def entity_graph(self, scope: CommunityScope) -> EntityGraph:
        """The scope's entity graph: every entity its documents mention (with mention
        counts and documents) and every fact between them as a weighted undirected edge
        (:func:`graph.communities.edge_list`). Only the scope's own documents are read."""
        ...

    async def put_communities(
        self, scope: CommunityScope, communities: Sequence[Community]
    ) -> None:
        """Replace the scope's communities, recording ``scope.fingerprint`` as what they
        were built from. Every community must belong to the scope."""
        ...

    async def communities(
        self,
        access: Access,
        *,
        level: int | None = None,
        ids: Sequence[CommunityId] | None = None,
    ) -> list[Community]:
        """Stored communities of the scopes ``access`` may read (optionally one level or
        some ids), by level, then most documents, most members, id."""
        ...

    async def close(self) -> None:
        """Release connections and files."""
        ...


class SparseVector(BaseModel):
    """Term weights by term index (BM25 for chunks); indices are unique and sorted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indices: tuple[int, ...]
    values: tuple[float, ...]


class SentenceVector(BaseModel):
    """One sentence of a chunk (offsets into the chunk's text) with its own embedding.

    Computed at ingest for a page's opening sentences, so that a query that reads them
    embeds only itself.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0)
    end: int
    vector: tuple[float, ...]

    @model_validator(mode="after")
    def _ordered(self) -> SentenceVector:
        if self.end <= self.start:
            raise ValueError("a sentence span must not be empty")
        return self


class VectorPoint(BaseModel):
    """A chunk's dense embedding and keyword vector with the payload every search filters on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_id: ChunkId
    document_id: DocumentId
    tenant: str
    groups: tuple[str, ...]
    vector: tuple[float, ...]
    sparse: SparseVector | None = None
    sentences: tuple[SentenceVector, ...] = ()

    def check_dimension(self, dimension: int) -> None:
        """Raise :class:`StoreError` unless every vector of the point has ``dimension``."""
        if len(self.vector) != dimension:
            raise StoreError(
                f"vector for chunk {self.chunk_id} has {len(self.vector)} dimensions, "
                f"the index expects {dimension}"
            )
        for sentence in self.sentences:
            if len(sentence.vector) != dimension:
                raise StoreError(
                    f"a sentence vector of chunk {self.chunk_id} has "
                    f"{len(sentence.vector)} dimensions, the index expects {dimension}"
                )


class VectorHit(BaseModel):
    """One search result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_id: ChunkId
    document_id: DocumentId
    score: float


@runtime_checkable
class VectorIndex(Protocol):
    """Chunk embeddings with tenant and access-group payloads.

    Whatever ranks is private to a tenant: keyword statistics (the IDF of the sparse
    vectors) are computed over the tenant's own points, so no other tenant's writes can
    move a tenant's scores or rankings. A tenant's reads see only its points; admin access
    (no tenant) sees every tenant's, merged by score.
    """

    @property
    def dimension(self) -> int:
        """Vector size the index was created for."""
        ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points (keyed by chunk id)."""
        ...

    async def search(
        self,
        vector: Sequence[float],
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Nearest readable chunks by cosine similarity, best first."""
        ...

    async def search_sparse(
        self,
        sparse: SparseVector,
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Best readable chunks by keyword score (IDF-weighted dot product), best first.

        The IDF is the reading tenant's own; admin reads merge tenants' scores as they are.
        """
        ...

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """The stored sentence vectors of readable chunks, in text order (chunks without
        any, unknown or unreadable are left out)."""
        ...

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents, whichever tenant they belong to."""
        ...

    async def count(self, access: Access) -> int:
        """Number of points ``access`` can see."""
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...
