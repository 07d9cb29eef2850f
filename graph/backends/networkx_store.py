"""The embedded graph store: an in-memory index, made durable by SQLite in WAL mode.

SQLite (:mod:`graph.backends.networkx_log`) is the source of truth; the in-memory index
(:mod:`graph.backends.networkx_index`) answers reads. A write is planned from the index
and committed to SQLite in the store's writer thread without blocking any reader; only
then is the committed change applied to the index, holding its lock exclusively for that
apply alone. Reads run in the store's reader threads holding the lock shared, so they never
block the event loop, never wait for a commit, and see a whole write or none of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from graph.algorithms import (
    bounded_neighborhood,
    name_match,
    rank_entities,
    shortest_paths,
)
from graph.backends import networkx_communities as communities
from graph.backends.networkx_index import (
    DeletePlan,
    DocRow,
    FactEdge,
    MentionRow,
    NetworkxIndex,
)
from graph.backends.networkx_log import SqliteLog, TextReads
from graph.communities import (
    Community,
    CommunityId,
    CommunityScope,
    EntityGraph,
    check_scope,
    ordered,
)
from graph.errors import StoreError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId, normalize_name, title_key
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
from graph.scoping import rescope

__all__ = ["NetworkxGraphStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Reader threads: reads are CPU-bound Python, so more than a few buys nothing.
READ_THREADS = 4


class NetworkxGraphStore:
    """Graph store for one process: ids, adjacency and names in memory, SQLite (WAL) on disk
    (texts are read from it when a read returns them).

    Create it with :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._index = NetworkxIndex(path)
        self._log: SqliteLog | None = None
        self._texts: TextReads | None = None
        self._communities: communities.Stored = {}
        self._write_lock = asyncio.Lock()
        # One writer thread keeps every SQLite call on one connection in order; the reader
        # pool is the store's own, so reads never queue behind other work in the loop's pool.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="threadline-graph-write")
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="threadline-graph-read")
        self._closed = False

    @classmethod
    async def open(cls, path: Path | str) -> Self:
        """Open (creating if needed) the store in the SQLite file at ``path``."""
        store = cls(Path(path))
        try:
            await store._in_writer(store._open_sync)
        except BaseException:
            store._shutdown()
            raise
        return store

    def _open_sync(self) -> None:
        log = SqliteLog.open(self._path)
        self._texts = log.texts()
        self._index.texts_from = self._texts
        try:
            log.load(self._index)
            if not log.entities_scoped():
                self._rescope(log)
        except BaseException:
            log.close()
            self._texts.close()
            raise
        self._communities = log.load_communities()
        self._log = log

    def _rescope(self, log: SqliteLog) -> None:
        """Give a store written with shared entity ids one entity per scope, then reload."""
        logger.warning("%s: rescoping entity ids by tenant and access list", self._path)
        graphs, merged = rescope([self._export(d) for d in list(self._index.docs)])
        log.replace_entities(graphs, merged)
        self._index = NetworkxIndex(self._path, self._index.texts_from)
        log.load(self._index)

    async def close(self) -> None:
        """Close the SQLite connection and stop the store's threads."""
        if self._closed:
            return
        self._closed = True
        log, self._log = self._log, None
        if log is not None:
            await self._in_writer(log.close)
        self._shutdown()
        if self._texts is not None:
            self._texts.close()

    def _shutdown(self) -> None:
        self._closed = True
        self._writer.shutdown(wait=False)
        self._readers.shutdown(wait=False)

    # ------------------------------------------------------------------ threads

    async def _in_writer(self, fn: Callable[..., T], /, *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, *args))

    async def _read(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run ``fn`` in a reader thread holding the index lock shared."""
        if self._closed:
            raise StoreError("the graph store is closed; open it with NetworkxGraphStore.open")

        def shared() -> T:
            with self._index.lock.shared():
                return fn(*args)

        return await asyncio.get_running_loop().run_in_executor(self._readers, shared)

    def _committed_log(self) -> SqliteLog:
        if self._log is None:
            raise StoreError("the graph store is closed; open it with NetworkxGraphStore.open")
        return self._log

    # ------------------------------------------------------------------ writes

    async def upsert(
        self, graphs: Sequence[DocumentGraph], *, replaces: Sequence[DocumentId] = ()
    ) -> None:
        """Write documents and their extractions in one SQLite transaction."""
        async with self._write_lock:
            await self._in_writer(self._upsert_sync, list(graphs), list(replaces))

    def _upsert_sync(self, graphs: list[DocumentGraph], replaces: list[DocumentId]) -> None:
        # Only this thread changes the index, so planning reads it without the lock.
        index = self._index
        graphs = [g for g in graphs if g.document.id not in index.docs]
        replaces = [d for d in dict.fromkeys(replaces) if d in index.docs]
        if not graphs and not replaces:
            return
        plan = index.delete_plan(replaces, graphs)
        merged = index.merged_entities(graphs, plan.entities, plan.renamed)
        dropped = communities.scope_keys(index.docs[d] for d in replaces)
        # Reads of the index as it stands still cut the replaced texts until it drops them.
        index.retiring = index.texts(replaces)
        try:
            self._committed_log().commit(
                graphs=graphs, merged=merged, deleted=replaces, plan=plan, dropped_scopes=dropped
            )
            with index.lock.exclusive():
                index.apply_delete(replaces, plan)
                index.apply_insert(graphs, merged)
                self._drop_communities(dropped)
        finally:
            index.retiring = {}

    async def delete(self, document_ids: Sequence[DocumentId]) -> DeleteReport:
        """Delete documents and everything only they support."""
        async with self._write_lock:
            return await self._in_writer(self._delete_sync, list(dict.fromkeys(document_ids)))

    def _delete_sync(self, doc_ids: list[DocumentId]) -> DeleteReport:
        index = self._index
        doc_ids = [d for d in doc_ids if d in index.docs]
        if not doc_ids:
            return DeleteReport()
        plan: DeletePlan = index.delete_plan(doc_ids)
        dropped = communities.scope_keys(index.docs[d] for d in doc_ids)
        index.retiring = index.texts(doc_ids)
        try:
            self._committed_log().commit(
                graphs=[], merged={}, deleted=doc_ids, plan=plan, dropped_scopes=dropped
            )
            with index.lock.exclusive():
                index.apply_delete(doc_ids, plan)
                self._drop_communities(dropped)
        finally:
            index.retiring = {}
        return DeleteReport(
            documents=len(doc_ids),
            chunks=plan.chunks,
            mentions=plan.mentions,
            relations=len(plan.relations_emptied),
            entities=len(plan.entities),
        )

    # ------------------------------------------------------------------ reads

    async def documents(
        self,
        access: Access,
        *,
        ids: Sequence[DocumentId] | None = None,
        source: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Document]:
        """Readable documents, ordered by source then version."""
        ids = None if ids is None else list(ids)
        return await self._read(self._documents, access, ids, source, limit, offset)

    def _documents(
        self,
        access: Access,
        ids: list[DocumentId] | None,
        source: str | None,
        limit: int,
        offset: int,
    ) -> list[Document]:
        index = self._index
        if ids is None and source is not None:
            ids = list(index.by_source.get(source, ()))
        pool: Iterable[DocRow] = (
            index.docs.values() if ids is None else (index.docs[i] for i in ids if i in index.docs)
        )
        found = [
            d
            for d in pool
            if access.can_read(d.tenant, d.groups) and (source is None or d.source == source)
        ]
        found.sort(key=lambda d: (d.source, d.version, d.id))
        page = found[offset : offset + limit]
        texts = index.texts(d.id for d in page)
        return [d.model(texts[d.id]) for d in page]

    async def chunks(self, ids: Sequence[ChunkId], access: Access) -> list[Chunk]:
        """Readable chunks by id, in the order asked."""
        return await self._read(self._chunks, list(ids), access)

    def _chunks(self, ids: list[ChunkId], access: Access) -> list[Chunk]:
        index = self._index
        found = []
        for cid in ids:
            chunk = index.chunks.get(cid)
            if chunk is not None:
                doc = index.docs[chunk[0]]
                if access.can_read(doc.tenant, doc.groups):
                    found.append(cid)
        return self._built_chunks(found)

    def _built_chunks(self, ids: list[ChunkId]) -> list[Chunk]:
        """Chunk models, their texts read in one query."""
        index = self._index
        texts = index.texts(index.chunks[c][0] for c in ids)
        return [index.chunk(c, texts) for c in ids]

    async def chunks_overlapping(
        self, ranges: Sequence[tuple[DocumentId, int, int]], access: Access
    ) -> list[Chunk]:
        """Readable chunks overlapping the document ranges, by document, start and index."""
        return await self._read(self._chunks_overlapping, list(ranges), access)

    def _chunks_overlapping(
        self, ranges: list[tuple[DocumentId, int, int]], access: Access
    ) -> list[Chunk]:
        index = self._index
        found: dict[ChunkId, tuple[DocumentId, int, int]] = {}
        for did, start, end in ranges:
            doc = index.docs.get(did)
            if doc is None or not access.can_read(doc.tenant, doc.groups):
                continue
            for cid in index.doc_chunks.get(did, ()):
                _, idx, c_start, c_end, _ = index.chunks[cid]
                if c_start < end and start < c_end:
                    found[cid] = (did, c_start, idx)
        return self._built_chunks(sorted(found, key=found.__getitem__))

    async def pages(self, names: Sequence[str], access: Access) -> dict[str, list[Chunk]]:
        """First chunks of the readable documents titled with each name or about it."""
        return await self._read(self._pages, list(names), access)

    def _pages(self, names: list[str], access: Access) -> dict[str, list[Chunk]]:
        index = self._index
        found: dict[str, list[ChunkId]] = {}
        for name in dict.fromkeys(names):
            exact = normalize_name(name)
            docs = [
                index.docs[d]
                for d in index.by_page_key.get(title_key(name), ())
                if access.can_read(index.docs[d].tenant, index.docs[d].groups)
                and d in index.first_chunk
            ]
            docs.sort(
                key=lambda d: (normalize_name(d.title) != exact, exact not in d.about_keys(), d.id)
            )
            if docs:
                found[name] = [index.first_chunk[d.id] for d in docs]
        texts = index.texts(index.chunks[c][0] for cids in found.values() for c in cids)
        return {name: [index.chunk(c, texts) for c in cids] for name, cids in found.items()}

    async def entities(self, ids: Sequence[EntityId], access: Access) -> list[Entity]:
        """Visible entities by id, in the order asked."""
        return await self._read(self._entities, list(ids), access)

    def _entities(self, ids: list[EntityId], access: Access) -> list[Entity]:
        index = self._index
        readable = index.readable(access)
        return [index.entity(e) for e in ids if e in index.entities and index.visible(e, readable)]

    async def search_entities(
        self, text: str, access: Access, *, types: Sequence[str] = (), limit: int = 20
    ) -> list[Entity]:
        """Visible entities whose name or an alias contains ``text``."""
        return await self._read(self._search, text, access, tuple(types), limit)

    def _search(
        self, text: str, access: Access, types: tuple[str, ...], limit: int
    ) -> list[Entity]:
        index = self._index
        needle = normalize_name(text)
        readable = index.readable(access)
        scored: list[tuple[Entity, int, int]] = []
        for eid, (_, etype, _) in index.entities.items():
            # Readability first: a name or alias of an unreadable entity is never compared.
            if not index.visible(eid, readable) or (types and etype not in types):
                continue
            match = name_match(needle, index.keys[eid])
            if match is None:
                continue
            scored.append((index.entity(eid), match, index.support_count(eid, readable)))
        return rank_entities(scored, limit)

    async def mentions(
        self, entity_ids: Sequence[EntityId], access: Access, *, limit: int = 100
    ) -> list[Mention]:
        """Readable mentions of the entities, in document order."""
        return await self._read(self._mentions, list(entity_ids), access, limit)

    def _mentions(self, entity_ids: list[EntityId], access: Access, limit: int) -> list[Mention]:
        index = self._index
        readable = index.readable(access)
        rows = [
            (row[1], row[2], e, row)
            for e in dict.fromkeys(entity_ids)
            for row in index.mentions.get(e, ())
            if index.ok(row[1], readable)
        ]
        rows.sort(key=lambda t: t[:3])
        return index.mentions_built((e, row) for _, _, e, row in rows[:limit])

    async def match_entities(self, names: Sequence[str], access: Access) -> dict[str, list[Entity]]:
        """Readable entities named (or aliased) exactly like each name."""
        return await self._read(self._match, list(names), access)

    def _match(self, names: list[str], access: Access) -> dict[str, list[Entity]]:
        index = self._index
        readable = index.readable(access)
        out: dict[str, list[Entity]] = {}
        for name in dict.fromkeys(names):
            found = [
                (index.entity(e), 0, index.support_count(e, readable))
                for e in index.by_key.get(normalize_name(name), ())
                if index.visible(e, readable)
            ]
            if found:
                out[name] = rank_entities(found, len(found))
        return out

    async def mention_edges(
        self, entity_ids: Sequence[EntityId], access: Access, *, per_entity: int = 200
    ) -> list[tuple[EntityId, ChunkId, int]]:
        """(entity, chunk, mention count) for readable chunks, at most ``per_entity`` each."""
        return await self._read(self._mention_edges, list(entity_ids), access, per_entity)

    def _mention_edges(
        self, entity_ids: list[EntityId], access: Access, per_entity: int
    ) -> list[tuple[EntityId, ChunkId, int]]:
        index = self._index
        readable = index.readable(access)
        out: list[tuple[EntityId, ChunkId, int]] = []
        for eid in dict.fromkeys(entity_ids):
            counts: Counter[ChunkId] = Counter(
                row[0] for row in index.mentions.get(eid, ()) if index.ok(row[1], readable)
            )
            # Most mentions first, ties by chunk id: the same order every store gives.
            ranked = sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:per_entity]
            out.extend((eid, cid, n) for cid, n in ranked)
        return out

    async def chunk_mentions(self, chunk_ids: Sequence[ChunkId], access: Access) -> list[Mention]:
        """Mentions inside readable chunks."""
        return await self._read(self._chunk_mentions, list(chunk_ids), access)

    def _chunk_mentions(self, chunk_ids: list[ChunkId], access: Access) -> list[Mention]:
        index = self._index
        readable = index.readable(access)
        found: list[tuple[EntityId, MentionRow]] = []
        for cid in dict.fromkeys(chunk_ids):
            rows = sorted(index.chunk_mentions.get(cid, ()), key=lambda t: (t[1][2], t[0]))
            found.extend((e, row) for e, row in rows if index.ok(row[1], readable))
        return index.mentions_built(found)

    async def facts(self, ids: Sequence[RelationId], access: Access) -> list[Relation]:
        """Facts by id, with readable evidence only."""
        return await self._read(self._facts, list(ids), access)

    def _facts(self, ids: list[RelationId], access: Access) -> list[Relation]:
        index = self._index
        return index.built(
            (r for r in dict.fromkeys(ids) if r in index.facts), index.readable(access)
        )

    async def relations(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        predicates: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Relation]:
        """Facts touching the entities, strongest first."""
        return await self._read(self._relations, list(entity_ids), access, set(predicates), limit)

    def _relations(
        self, entity_ids: list[EntityId], access: Access, predicates: set[str], limit: int
    ) -> list[Relation]:
        index = self._index
        readable = index.readable(access)
        rids = index.touching(dict.fromkeys(entity_ids), readable, predicates)
        return index.built(rids[: max(limit, 0)], readable)

    async def neighbors(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        depth: int = 1,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> Neighborhood:
        """The readable subgraph around the entities (:func:`graph.bounded_neighborhood`).

        The whole expansion runs in one reader thread, so it sees one version of the graph.
        """
        return await self._read(
            self._neighbors, list(entity_ids), access, depth, set(predicates), limit
        )

    def _neighbors(
        self,
        entity_ids: list[EntityId],
        access: Access,
        depth: int,
        predicates: set[str],
        limit: int,
    ) -> Neighborhood:
        index = self._index
        readable = index.readable(access)

        async def expand(frontier: Sequence[EntityId], cap: int) -> list[FactEdge]:
            return [index.edge(r) for r in index.touching(frontier, readable, predicates)[:cap]]

        seeds = [e for e in dict.fromkeys(entity_ids) if index.visible(e, readable)]
        kept, edges, truncated = _run(bounded_neighborhood(seeds, expand, depth=depth, limit=limit))
        return Neighborhood(
            entities=tuple(self._entities(kept, access)),
            relations=tuple(index.built((e.id for e in edges), readable)),
            truncated=truncated,
        )

    async def paths(
        self,
        source: EntityId,
        target: EntityId,
        access: Access,
        *,
        max_hops: int = 4,
        limit: int = 10,
    ) -> list[GraphPath]:
        """Shortest readable fact chains (:func:`graph.shortest_paths`)."""
        return await self._read(self._paths, source, target, access, max_hops, limit)

    def _paths(
        self, source: EntityId, target: EntityId, access: Access, max_hops: int, limit: int
    ) -> list[GraphPath]:
        index = self._index
        readable = index.readable(access)
        if not all(index.has_node(e) and index.visible(e, readable) for e in (source, target)):
            return []

        async def neighbours(
            frontier: Sequence[EntityId], cap: int
        ) -> list[tuple[EntityId, EntityId]]:
            pairs: list[tuple[EntityId, EntityId]] = []
            for a in frontier:
                ends = {
                    index.facts[rid][2] if index.facts[rid][0] == a else index.facts[rid][0]
                    for rid in index.fact_ids([a])
                    if index.fact_readable(rid, readable)
                }
                pairs.extend((a, b) for b in sorted(ends))
            return sorted(pairs)[:cap]

        async def between(pairs: Sequence[tuple[EntityId, EntityId]]) -> list[Relation]:
            rids: dict[RelationId, None] = {}
            for a, b in pairs:
                for u, v in ((a, b), (b, a)):
                    rids.update(dict.fromkeys(index.between(u, v)))
            return index.built(rids, readable)

        return _run(
            shortest_paths(source, target, neighbours, between, max_hops=max_hops, limit=limit)
        )

    async def export(self, document_ids: Sequence[DocumentId]) -> list[DocumentGraph]:
        """The stored graph of each document, with only that document's evidence."""
        return await self._read(self._export_all, list(document_ids))

    def _export_all(self, document_ids: list[DocumentId]) -> list[DocumentGraph]:
        return [self._export(d) for d in dict.fromkeys(document_ids) if d in self._index.docs]

    def _export(self, did: DocumentId) -> DocumentGraph:
        index = self._index
        texts = index.texts([did])
        mentions = [
            Mention.model_construct(entity_id=eid, span=index.span(texts, *row))
            for cid in index.doc_chunks.get(did, ())
            for eid, row in sorted(index.chunk_mentions.get(cid, ()), key=lambda t: (t[1][2], t[0]))
        ]
        relations = []
        for rid in sorted(index.doc_relations.get(did, ())):
            rows = [
                (did, c, start, end, conf) for c, start, end, conf in index.doc_support(rid, did)
            ]
            if rows:
                relations.append(index.relation(rid, rows, texts))
        ids = dict.fromkeys(
            [m.entity_id for m in mentions]
            + [e for r in relations for e in (r.subject_id, r.object_id)]
        )
        return DocumentGraph.model_construct(
            document=index.document(did, texts),
            chunks=tuple(index.chunk(c, texts) for c in index.doc_chunks.get(did, ())),
            entities=tuple(index.entity(e) for e in ids if e in index.entities),
            mentions=tuple(mentions),
            relations=tuple(relations),
        )

    async def pii_values(self, access: Access, types: frozenset[str]) -> list[tuple[str, str]]:
        """Distinct (text, type) of the readable chunks' personal-data tags of ``types``."""
        return await self._read(self._pii_values, access, frozenset(types))

    def _pii_values(self, access: Access, types: frozenset[str]) -> list[tuple[str, str]]:
        index = self._index
        readable = index.readable(access)
        found = {
            pair
            for did, pairs in index.pii.items()
            if index.ok(did, readable)
            for pair in pairs
            if pair[1] in types
        }
        return sorted(found)

    # ------------------------------------------------------------------ communities

    def _drop_communities(self, keys: list[str]) -> None:
        self._communities = {k: v for k, v in self._communities.items() if k not in keys}

    async def community_scopes(self, access: Access) -> list[CommunityScope]:
        """Readable scopes with their document fingerprints."""
        return await self._read(communities.scopes, self._index, access, self._communities)

    async def entity_graph(self, scope: CommunityScope) -> EntityGraph:
        """The scope's entity graph, read from the index."""
        return await self._read(communities.entity_graph, self._index, scope)

    async def put_communities(self, scope: CommunityScope, found: Sequence[Community]) -> None:
        """Replace a scope's communities (SQLite first, then memory)."""
        rows = list(found)
        check_scope(scope, rows)
        async with self._write_lock:
            await self._in_writer(self._committed_log().put_communities, scope, rows)
            self._communities = {**self._communities, scope.key: (scope.fingerprint, tuple(rows))}

    async def communities(
        self,
        access: Access,
        *,
        level: int | None = None,
        ids: Sequence[CommunityId] | None = None,
    ) -> list[Community]:
        """Readable stored communities."""
        found = communities.readable(self._communities, access, level, ids)
        return ordered(found)

    async def stats(self, access: Access) -> StoreStats:
        """Counts of what ``access`` can see."""
        return await self._read(self._stats, access)

    def _stats(self, access: Access) -> StoreStats:
        index = self._index
        readable = index.readable(access)
        if readable is None:
            return StoreStats(
                documents=len(index.docs),
                chunks=len(index.chunks),
                entities=len(index.entities),
                mentions=sum(len(m) for m in index.mentions.values()),
                relations=len(index.facts),
            )
        return StoreStats(
            documents=len(readable),
            chunks=sum(len(index.doc_chunks.get(d, ())) for d in readable),
            entities=sum(1 for e in index.entities if index.visible(e, readable)),
            mentions=sum(
                c for docs in index.entity_docs.values() for d, c in docs.items() if d in readable
            ),
            relations=sum(
                1
                for support in index.support.values()
                if not readable.isdisjoint(row[0] for row in support)
            ),
        )


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a shared graph algorithm to its end in the calling reader thread.

    The algorithms are async so that Neo4j can await one query per level; here every
    callback is an in-memory lookup that returns without suspending, so the whole
    coroutine completes on its first step and needs no event loop.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise StoreError("an in-memory graph expansion waited on I/O")
