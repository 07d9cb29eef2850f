"""The browse layer: every read of the graph a surface makes, for one caller.

The HTTP API, the CLI, the agent tools, the MCP server and the notebooks read the graph
through :class:`GraphBrowser` and show its typed views (:mod:`graph.views`); none of
them reads the store directly or names facts on its own. The caller's access is
required: a browser never defaults to seeing everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from agents.communities import CommunityBuilder, RefreshReport
from engine.community_views import community_views
from engine.views import DocumentPrivacy, Subgraph, document_privacy
from graph import (
    Access,
    Chunk,
    ChunkId,
    Document,
    DocumentId,
    Entity,
    EntityId,
    GraphStore,
    Mention,
    NotFoundError,
    Relation,
    StoreStats,
)
from graph.communities import Community, CommunityId
from graph.provenance import Evidence
from graph.views import (
    CommunityView,
    EntityDetail,
    FactView,
    NeighborhoodView,
    PathView,
    Source,
)

__all__ = ["GraphBrowser"]


class GraphBrowser:
    """Reads of one graph store as one caller (``access``)."""

    def __init__(
        self, graph: GraphStore, access: Access, *, communities: CommunityBuilder | None = None
    ) -> None:
        self._graph = graph
        self.access = access
        self._builder = communities

    # ------------------------------------------------------------------ documents

    async def stats(self) -> StoreStats:
        """Counts of what the caller can see."""
        return await self._graph.stats(self.access)

    async def documents(self, *, limit: int = 100, offset: int = 0) -> list[Document]:
        """Readable documents, by source."""
        return await self._graph.documents(self.access, limit=limit, offset=offset)

    async def document(self, document_id: str) -> Document:
        """One readable document (:class:`NotFoundError` when it is missing or hidden)."""
        found = await self._graph.documents(self.access, ids=[DocumentId(document_id)], limit=1)
        if not found:
            raise NotFoundError(f"no document {document_id} you can see")
        return found[0]

    async def privacy(self, documents: Sequence[Document]) -> dict[DocumentId, DocumentPrivacy]:
        """Each readable document's personal-data counts and injection flags, from the tags
        of its chunks (one read for all of them)."""
        if not documents:
            return {}
        chunks = await self._graph.chunks_overlapping(
            [(d.id, 0, max(len(d.text), 1)) for d in documents], self.access
        )
        by_doc: dict[DocumentId, list[Chunk]] = {d.id: [] for d in documents}
        for chunk in chunks:
            if chunk.document_id in by_doc:
                by_doc[chunk.document_id].append(chunk)
        return {did: document_privacy(did, found) for did, found in by_doc.items()}

    async def sources(self, evidence: Sequence[Evidence]) -> list[Source]:
        """Each evidence item with its chunk and document, in order; items whose chunk or
        document is gone (deleted since retrieval) or unreadable are left out."""
        chunks = {
            c.id: c for c in await self._graph.chunks([e.chunk_id for e in evidence], self.access)
        }
        ids = list({e.document_id for e in evidence})
        docs = {
            d.id: d for d in await self._graph.documents(self.access, ids=ids, limit=len(ids) or 1)
        }
        found = []
        for item in evidence:
            chunk, doc = chunks.get(item.chunk_id), docs.get(item.document_id)
            if chunk is not None and doc is not None:
                found.append(Source(evidence=item, chunk=chunk, document=doc))
        return found

    async def chunks(self, ids: Sequence[str]) -> list[Chunk]:
        """Readable chunks by id."""
        return await self._graph.chunks([ChunkId(i) for i in ids], self.access)

    # ------------------------------------------------------------------ entities

    async def entities(
        self, search: str = "", *, types: Sequence[str] = (), limit: int = 50
    ) -> list[Entity]:
        """Readable entities whose name or alias contains ``search``: exact matches first,
        then the most mentioned."""
        return await self._graph.search_entities(search, self.access, types=types, limit=limit)

    async def entity(self, key: str) -> Entity:
        """One entity by id (``ent_...``), exact name or alias (the most mentioned wins)."""
        if key.startswith("ent_"):
            found = await self._graph.entities([EntityId(key)], self.access)
            if found:
                return found[0]
        candidates = await self._graph.search_entities(key, self.access, limit=5)
        if not candidates:
            raise NotFoundError(f"no entity named {key!r} you can see; search the entities first")
        return candidates[0]

    async def mentions(self, key: str, *, limit: int = 20) -> list[Mention]:
        """Where an entity is mentioned in readable documents, in document order."""
        entity = await self.entity(key)
        return await self._graph.mentions([entity.id], self.access, limit=limit)

    async def detail(self, key: str, *, mentions: int = 20, facts: int = 20) -> EntityDetail:
        """An entity with its mentions and the facts touching it (strongest first)."""
        entity = await self.entity(key)
        found = (
            await self._graph.mentions([entity.id], self.access, limit=mentions) if mentions else []
        )
        rels = await self._graph.relations([entity.id], self.access, limit=facts) if facts else []
        return EntityDetail(
            entity=entity,
            mentions=tuple(m.span for m in found),
            facts=tuple(await self._named(rels)),
        )

    async def facts(
        self,
        key: str,
        *,
        predicates: Sequence[str] = (),
        limit: int = 50,
        cooccurrence: bool = False,
    ) -> list[FactView]:
        """The facts touching an entity, strongest first, each with the sentences that
        state it (co-occurrence links only when asked for)."""
        entity = await self.entity(key)
        rels = await self._graph.relations(
            [entity.id], self.access, predicates=predicates, limit=limit
        )
        return await self._named(r for r in rels if cooccurrence or r.kind != "cooccurrence")

    # ------------------------------------------------------------------ graph

    async def neighborhood(
        self,
        keys: str | Sequence[str],
        *,
        depth: int = 1,
        limit: int = 25,
        predicates: Sequence[str] = (),
    ) -> NeighborhoodView:
        """The readable subgraph within ``depth`` hops of one or more entities, at most
        ``limit`` entities."""
        centres = await self._centres(keys)
        hood = await self._graph.neighbors(
            [e.id for e in centres], self.access, depth=depth, predicates=predicates, limit=limit
        )
        names = {e.id: e.name for e in (*hood.entities, *centres)}
        return NeighborhoodView(
            centres=tuple(centres),
            entities=hood.entities,
            facts=tuple(FactView.of(r, names) for r in hood.relations),
            truncated=hood.truncated,
        )

    async def subgraph(
        self,
        keys: str | Sequence[str],
        *,
        depth: int = 1,
        limit: int = 25,
        cooccurrence: bool = False,
    ) -> Subgraph:
        """The neighbourhood of one or more entities as a drawable :class:`Subgraph` (a
        networkx ``MultiDiGraph``; co-occurrence links only when asked for)."""
        centres = await self._centres(keys)
        hood = await self._graph.neighbors(
            [e.id for e in centres], self.access, depth=depth, limit=limit
        )
        return Subgraph.from_neighborhood(
            hood, centres=[e.id for e in centres], cooccurrence=cooccurrence
        )

    async def paths(
        self, source: str, target: str, *, max_hops: int = 4, limit: int = 5
    ) -> list[PathView]:
        """Shortest chains of readable facts between two entities (ids or names)."""
        a, b = await self.entity(source), await self.entity(target)
        found = await self._graph.paths(a.id, b.id, self.access, max_hops=max_hops, limit=limit)
        ids = list({e for p in found for e in p.entity_ids})
        entities = {e.id: e for e in await self._graph.entities(ids, self.access)}
        names = {i: e.name for i, e in entities.items()}
        return [
            PathView(
                entities=tuple(entities[e] for e in p.entity_ids if e in entities),
                facts=tuple(FactView.of(r, names) for r in p.relations),
            )
            for p in found
        ]

    # ------------------------------------------------------------------ communities

    async def refresh_communities(self) -> RefreshReport:
        """Rebuild the communities of the caller's scopes whose documents changed since
        they were built (nothing to do without a builder, or when none changed)."""
        if self._builder is None:
            return RefreshReport()
        return await self._builder.refresh(await self._graph.community_scopes(self.access))

    async def communities(
        self, *, level: int | None = None, limit: int = 100
    ) -> list[CommunityView]:
        """Communities built from documents the caller may read, up to date: by level
        (0 is the coarsest), then most documents, then most members."""
        await self.refresh_communities()
        every = await self._graph.communities(self.access)
        shown = [c for c in every if level is None or c.level == level][: max(limit, 0)]
        return await community_views(self._graph, self.access, shown, children=_children(every))

    async def community(self, community_id: str) -> CommunityView:
        """One readable community (:class:`NotFoundError` when missing or hidden)."""
        await self.refresh_communities()
        found = await self._graph.communities(self.access, ids=[CommunityId(community_id)])
        if not found:
            raise NotFoundError(
                f"no community {community_id} you can see; list them with `threadline communities`"
            )
        below = await self._graph.communities(self.access, level=found[0].level + 1)
        views = await community_views(self._graph, self.access, found, children=_children(below))
        return views[0]

    # ------------------------------------------------------------------ helpers

    async def _centres(self, keys: str | Sequence[str]) -> list[Entity]:
        names = [keys] if isinstance(keys, str) else list(keys)
        return [await self.entity(k) for k in names]

    async def _named(self, facts: Iterable[Relation]) -> list[FactView]:
        rels = list(facts)
        ids = list({e for r in rels for e in (r.subject_id, r.object_id)})
        names = {e.id: e.name for e in await self._graph.entities(ids, self.access)}
        return [FactView.of(r, names) for r in rels]


def _children(found: Iterable[Community]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in found:
        if c.parent is not None:
            out.setdefault(c.parent, []).append(c.id)
    return out
