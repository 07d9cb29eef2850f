"""The embedded graph store: networkx in memory, made durable by SQLite in WAL mode.

SQLite is the source of truth. Every ``upsert``/``delete`` is one SQLite transaction; the
in-memory graph is changed only after it commits, and it is rebuilt from SQLite on open,
so a process killed mid-write leaves either the old state or the new one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import networkx as nx

from graph.errors import StoreCorruptedError, StoreError, StoreUnavailableError
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
    Section,
    Span,
    StoreStats,
)

__all__ = ["NetworkxGraphStore"]

_MentionRow = tuple[ChunkId, DocumentId, int, int]  # chunk, document, start, end
_EvidenceRow = tuple[ChunkId, int, int, float]  # chunk, start, end, confidence
_Fact = tuple[EntityId, str, EntityId, Any]  # subject, predicate, object, kind

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, version INTEGER NOT NULL,
    tenant TEXT NOT NULL, groups TEXT NOT NULL, content_hash TEXT NOT NULL,
    ingested_at TEXT NOT NULL, text TEXT NOT NULL, sections TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS documents_source ON documents (tenant, source);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, document_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, aliases TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mentions (
    entity_id TEXT NOT NULL, chunk_id TEXT NOT NULL, document_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    PRIMARY KEY (entity_id, chunk_id, start, "end"));
CREATE INDEX IF NOT EXISTS mentions_document ON mentions (document_id);
CREATE TABLE IF NOT EXISTS relations (
    id TEXT PRIMARY KEY, subject_id TEXT NOT NULL, predicate TEXT NOT NULL,
    object_id TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (
    relation_id TEXT NOT NULL, chunk_id TEXT NOT NULL, document_id TEXT NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, confidence REAL NOT NULL,
    PRIMARY KEY (relation_id, chunk_id, start, "end"));
CREATE INDEX IF NOT EXISTS evidence_document ON evidence (document_id);
"""


class NetworkxGraphStore:
    """Graph store for one process: networkx in memory, SQLite (WAL) on disk.

    Create it with :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._write_lock = asyncio.Lock()
        self._docs: dict[DocumentId, Document] = {}
        self._by_source: dict[str, set[DocumentId]] = defaultdict(set)
        self._by_title: dict[str, set[DocumentId]] = defaultdict(set)
        self._first_chunk: dict[DocumentId, ChunkId] = {}
        self._readable_cache: dict[Access, set[DocumentId]] = {}
        self._chunks: dict[ChunkId, Chunk] = {}
        self._doc_chunks: dict[DocumentId, list[ChunkId]] = defaultdict(list)
        self._entities: dict[EntityId, Entity] = {}
        self._by_key: dict[str, set[EntityId]] = defaultdict(set)
        self._keys: dict[EntityId, list[str]] = {}
        self._chunk_mentions: dict[ChunkId, list[tuple[EntityId, _MentionRow]]] = defaultdict(list)
        # Compact rows; pydantic objects are built only for what a read returns.
        self._mentions: dict[EntityId, list[_MentionRow]] = defaultdict(list)
        self._entity_docs: dict[EntityId, Counter[DocumentId]] = defaultdict(Counter)
        self._doc_entities: dict[DocumentId, set[EntityId]] = defaultdict(set)
        self._facts: dict[RelationId, _Fact] = {}
        # fact -> document -> evidence rows: the per-document support of a fact
        self._support: dict[RelationId, dict[DocumentId, list[_EvidenceRow]]] = {}
        self._doc_relations: dict[DocumentId, set[RelationId]] = defaultdict(set)
        self._graph: nx.MultiDiGraph = nx.MultiDiGraph()

    @classmethod
    async def open(cls, path: Path | str) -> Self:
        """Open (creating if needed) the store in the SQLite file at ``path``."""
        store = cls(Path(path))
        await asyncio.to_thread(store._open_sync)
        return store

    # ------------------------------------------------------------------ lifecycle

    def _open_sync(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(documents)")}
            if "sections" not in columns:  # stores written before documents had sections
                db.execute("ALTER TABLE documents ADD COLUMN sections TEXT NOT NULL DEFAULT '[]'")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreCorruptedError(
                    f"{self._path} has schema version {row[0]}, this Threadline reads "
                    f"version {SCHEMA_VERSION}; migrate or use a new data dir"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(
                f"cannot open the graph database {self._path}: {exc}; "
                "check that the file is a Threadline store and is not damaged"
            ) from exc
        self._db = db
        self._load()

    async def close(self) -> None:
        """Close the SQLite connection."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the graph store is closed; open it with NetworkxGraphStore.open")
        return self._db

    def _load(self) -> None:
        # Rows were validated when they were written; model_construct skips re-validation.
        db = self._conn()
        for row in db.execute(
            "SELECT id, source, title, version, tenant, groups, content_hash, ingested_at, "
            "text, sections FROM documents"
        ):
            doc = Document.model_construct(
                id=row[0],
                source=row[1],
                title=row[2],
                version=row[3],
                tenant=row[4],
                groups=tuple(json.loads(row[5])),
                content_hash=row[6],
                ingested_at=datetime.fromisoformat(row[7]),
                text=row[8],
                sections=tuple(Section.model_construct(**x) for x in json.loads(row[9])),
            )
            self._add_document(doc)
        for cid, did, idx, start, end in db.execute(
            'SELECT id, document_id, idx, start, "end" FROM chunks ORDER BY document_id, idx'
        ):
            text = self._docs[did].text[start:end]
            self._add_chunk(
                Chunk.model_construct(
                    id=cid, document_id=did, index=idx, start=start, end=end, text=text
                )
            )
        for eid, name, etype, aliases in db.execute("SELECT * FROM entities"):
            self._set_entity(
                Entity.model_construct(
                    id=eid, name=name, type=etype, aliases=tuple(json.loads(aliases))
                )
            )
        for eid, cid, did, start, end in db.execute("SELECT * FROM mentions"):
            if did not in self._docs:
                raise StoreCorruptedError(f"{self._path} refers to missing document {did}")
            self._add_mention(eid, (cid, did, start, end))
        support: dict[RelationId, dict[DocumentId, list[_EvidenceRow]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for rid, cid, did, start, end, conf in db.execute("SELECT * FROM evidence"):
            support[rid][did].append((cid, start, end, conf))
        for rid, subj, pred, obj, kind in db.execute("SELECT * FROM relations"):
            if rid not in support:
                raise StoreCorruptedError(f"fact {rid} in {self._path} has no evidence")
            self._set_fact(rid, (subj, pred, obj, kind), dict(support[rid]))

    def _span(self, cid: ChunkId, did: DocumentId, start: int, end: int) -> Span:
        doc = self._docs.get(did)
        if doc is None:
            raise StoreCorruptedError(f"{self._path} refers to missing document {did}")
        return Span.model_construct(
            chunk_id=cid, document_id=did, start=start, end=end, text=doc.text[start:end]
        )

    # ------------------------------------------------------------------ in-memory indexes

    def _add_document(self, doc: Document) -> None:
        self._readable_cache.clear()
        self._docs[doc.id] = doc
        self._by_source[doc.source].add(doc.id)
        self._by_title[title_key(doc.title)].add(doc.id)

    def _add_chunk(self, chunk: Chunk) -> None:
        self._chunks[chunk.id] = chunk
        self._doc_chunks[chunk.document_id].append(chunk.id)
        first = self._first_chunk.get(chunk.document_id)
        if first is None or chunk.index < self._chunks[first].index:
            self._first_chunk[chunk.document_id] = chunk.id

    def _set_entity(self, ent: Entity) -> None:
        old = self._entities.get(ent.id)
        if old is not None:
            self._unindex_entity(old)
        self._entities[ent.id] = ent
        keys = [normalize_name(name) for name in (ent.name, *ent.aliases)]
        self._keys[ent.id] = keys
        for key in keys:
            self._by_key[key].add(ent.id)

    def _unindex_entity(self, ent: Entity) -> None:
        for key in self._keys.pop(ent.id, ()):
            ids = self._by_key.get(key)
            if ids is not None:
                ids.discard(ent.id)
                if not ids:
                    del self._by_key[key]

    def _add_mention(self, eid: EntityId, row: _MentionRow) -> None:
        self._mentions[eid].append(row)
        self._chunk_mentions[row[0]].append((eid, row))
        self._entity_docs[eid][row[1]] += 1
        self._doc_entities[row[1]].add(eid)

    def _mention(self, eid: EntityId, row: _MentionRow) -> Mention:
        return Mention.model_construct(entity_id=eid, span=self._span(*row))

    def _set_fact(
        self, rid: RelationId, fact: _Fact, support: dict[DocumentId, list[_EvidenceRow]]
    ) -> None:
        self._facts[rid] = fact
        self._support[rid] = support
        for did in support:
            self._doc_relations[did].add(rid)
        if not self._graph.has_edge(fact[0], fact[2], key=rid):
            self._graph.add_edge(fact[0], fact[2], key=rid)

    def _relation(self, rid: RelationId, readable: set[DocumentId] | None) -> Relation | None:
        """The fact with only its readable evidence, or None when none is readable."""
        rows = sorted(
            (
                (did, row)
                for did, rows in self._support[rid].items()
                if readable is None or did in readable
                for row in rows
            ),
            key=lambda t: (t[0], t[1][1], t[1][2], t[1][0]),
        )
        if not rows:
            return None
        subject, predicate, obj, kind = self._facts[rid]
        # Built from validated parts (stored rows or validated input): skip re-validation.
        return Relation.model_construct(
            id=rid,
            subject_id=subject,
            predicate=predicate,
            object_id=obj,
            kind=kind,
            confidence=max(row[3] for _, row in rows),
            evidence=tuple(self._span(row[0], did, row[1], row[2]) for did, row in rows),
        )

    # ------------------------------------------------------------------ writes

    async def upsert(
        self, graphs: Sequence[DocumentGraph], *, replaces: Sequence[DocumentId] = ()
    ) -> None:
        """Write documents and their extractions in one SQLite transaction."""
        async with self._write_lock:
            await asyncio.to_thread(self._upsert_sync, list(graphs), list(replaces))

    def _upsert_sync(self, graphs: list[DocumentGraph], replaces: list[DocumentId]) -> None:
        with self._lock:
            graphs = [g for g in graphs if g.document.id not in self._docs]
            replaces = [d for d in replaces if d in self._docs]
            plan = self._delete_plan(replaces)
            merged = self._merged_entities(graphs, plan.entities)
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                self._delete_rows(db, replaces, plan)
                self._insert_rows(db, graphs, merged)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(f"writing to {self._path} failed: {exc}") from exc
            self._apply_delete(replaces, plan)
            self._apply_insert(graphs, merged)

    def _merged_entities(
        self, graphs: list[DocumentGraph], removed: set[EntityId]
    ) -> dict[EntityId, Entity]:
        merged: dict[EntityId, Entity] = {}
        for graph in graphs:
            for ent in graph.entities:
                base = merged.get(ent.id)
                if base is None and ent.id not in removed:
                    base = self._entities.get(ent.id)
                if base is None:
                    merged[ent.id] = ent
                    continue
                aliases = tuple(dict.fromkeys([*base.aliases, *ent.aliases]))
                merged[ent.id] = base.model_copy(update={"aliases": aliases})
        return merged

    def _insert_rows(
        self, db: sqlite3.Connection, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]
    ) -> None:
        db.executemany(
            "INSERT INTO documents (id, source, title, version, tenant, groups, content_hash, "
            "ingested_at, text, sections) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    d.id,
                    d.source,
                    d.title,
                    d.version,
                    d.tenant,
                    json.dumps(list(d.groups)),
                    d.content_hash,
                    d.ingested_at.isoformat(),
                    d.text,
                    json.dumps([x.model_dump() for x in d.sections]),
                )
                for d in (g.document for g in graphs)
            ],
        )
        db.executemany(
            "INSERT INTO chunks VALUES (?,?,?,?,?)",
            [(c.id, c.document_id, c.index, c.start, c.end) for g in graphs for c in g.chunks],
        )
        db.executemany(
            "INSERT INTO entities VALUES (?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET aliases=excluded.aliases",
            [(e.id, e.name, e.type, json.dumps(list(e.aliases))) for e in merged.values()],
        )
        db.executemany(
            "INSERT OR IGNORE INTO mentions VALUES (?,?,?,?,?)",
            [
                (m.entity_id, m.span.chunk_id, m.span.document_id, m.span.start, m.span.end)
                for g in graphs
                for m in g.mentions
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO relations VALUES (?,?,?,?,?)",
            [
                (r.id, r.subject_id, r.predicate, r.object_id, r.kind)
                for g in graphs
                for r in g.relations
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO evidence VALUES (?,?,?,?,?,?)",
            [
                (r.id, s.chunk_id, s.document_id, s.start, s.end, r.confidence)
                for g in graphs
                for r in g.relations
                for s in r.evidence
            ],
        )

    def _apply_insert(self, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]) -> None:
        for ent in merged.values():
            self._set_entity(ent)
        for graph in graphs:
            self._add_document(graph.document)
            for chunk in graph.chunks:
                self._add_chunk(chunk)
            seen: set[tuple[EntityId, ChunkId, int, int]] = set()
            for m in graph.mentions:
                key = (m.entity_id, m.span.chunk_id, m.span.start, m.span.end)
                if key not in seen:
                    seen.add(key)
                    self._add_mention(
                        m.entity_id, (m.span.chunk_id, m.span.document_id, m.span.start, m.span.end)
                    )
            for rel in graph.relations:
                support = {d: list(rows) for d, rows in self._support.get(rel.id, {}).items()}
                rows = support.setdefault(graph.document.id, [])
                known = {(r[0], r[1], r[2]) for r in rows}
                for span in rel.evidence:
                    if (span.chunk_id, span.start, span.end) not in known:
                        known.add((span.chunk_id, span.start, span.end))
                        rows.append((span.chunk_id, span.start, span.end, rel.confidence))
                fact = (rel.subject_id, rel.predicate, rel.object_id, rel.kind)
                self._set_fact(rel.id, fact, support)

    # ------------------------------------------------------------------ deletes

    class _DeletePlan:
        def __init__(self) -> None:
            self.relations_emptied: set[RelationId] = set()
            self.relations_touched: set[RelationId] = set()
            self.entities: set[EntityId] = set()
            self.mentions = 0
            self.chunks = 0

    def _delete_plan(self, doc_ids: list[DocumentId]) -> NetworkxGraphStore._DeletePlan:
        plan = self._DeletePlan()
        gone = set(doc_ids)
        for did in doc_ids:
            plan.chunks += len(self._doc_chunks.get(did, ()))
            for rid in self._doc_relations.get(did, ()):
                plan.relations_touched.add(rid)
                if set(self._support[rid]) <= gone:
                    plan.relations_emptied.add(rid)
            for eid in self._doc_entities.get(did, ()):
                plan.mentions += self._entity_docs[eid][did]
                if set(self._entity_docs[eid]) <= gone:
                    plan.entities.add(eid)
        return plan

    def _delete_rows(
        self, db: sqlite3.Connection, doc_ids: list[DocumentId], plan: _DeletePlan
    ) -> None:
        one = [(d,) for d in doc_ids]
        for table in ("evidence", "mentions", "chunks"):
            db.executemany(f"DELETE FROM {table} WHERE document_id=?", one)  # noqa: S608 - fixed table names
        db.executemany("DELETE FROM documents WHERE id=?", one)
        db.executemany("DELETE FROM relations WHERE id=?", [(r,) for r in plan.relations_emptied])
        db.executemany("DELETE FROM entities WHERE id=?", [(e,) for e in plan.entities])

    def _apply_delete(self, doc_ids: list[DocumentId], plan: _DeletePlan) -> None:
        gone = set(doc_ids)
        for rid in plan.relations_touched:
            support = {d: rows for d, rows in self._support[rid].items() if d not in gone}
            if support:
                self._set_fact(rid, self._facts[rid], support)
            else:
                subject, _, obj, _ = self._facts.pop(rid)
                del self._support[rid]
                self._graph.remove_edge(subject, obj, key=rid)
        for did in doc_ids:
            for cid in self._doc_chunks.pop(did, []):
                del self._chunks[cid]
                self._chunk_mentions.pop(cid, None)
            for eid in self._doc_entities.pop(did, set()):
                self._mentions[eid] = [m for m in self._mentions[eid] if m[1] != did]
                del self._entity_docs[eid][did]
            self._doc_relations.pop(did, None)
            doc = self._docs.pop(did)
            self._readable_cache.clear()
            self._by_source[doc.source].discard(did)
            if not self._by_source[doc.source]:
                del self._by_source[doc.source]
            key = title_key(doc.title)
            self._by_title[key].discard(did)
            if not self._by_title[key]:
                del self._by_title[key]
            self._first_chunk.pop(did, None)
        for eid in plan.entities:
            self._unindex_entity(self._entities.pop(eid))
            del self._mentions[eid], self._entity_docs[eid]
            if self._graph.has_node(eid):
                self._graph.remove_node(eid)

    async def delete(self, document_ids: Sequence[DocumentId]) -> DeleteReport:
        """Delete documents and everything only they support."""
        async with self._write_lock:
            return await asyncio.to_thread(self._delete_sync, list(dict.fromkeys(document_ids)))

    def _delete_sync(self, doc_ids: list[DocumentId]) -> DeleteReport:
        with self._lock:
            doc_ids = [d for d in doc_ids if d in self._docs]
            if not doc_ids:
                return DeleteReport()
            plan = self._delete_plan(doc_ids)
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                self._delete_rows(db, doc_ids, plan)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(f"deleting from {self._path} failed: {exc}") from exc
            self._apply_delete(doc_ids, plan)
            return DeleteReport(
                documents=len(doc_ids),
                chunks=plan.chunks,
                mentions=plan.mentions,
                relations=len(plan.relations_emptied),
                entities=len(plan.entities),
            )

    # ------------------------------------------------------------------ reads

    def _readable(self, access: Access) -> set[DocumentId] | None:
        """Readable document ids, or None when everything is readable (cached until a write)."""
        if access.is_admin:
            return None
        cached = self._readable_cache.get(access)
        if cached is None:
            if len(self._readable_cache) > 256:
                self._readable_cache.clear()
            cached = {d.id for d in self._docs.values() if access.can_read(d.tenant, d.groups)}
            self._readable_cache[access] = cached
        return cached

    @staticmethod
    def _ok(doc: DocumentId, readable: set[DocumentId] | None) -> bool:
        return readable is None or doc in readable

    def _entity_visible(self, eid: EntityId, readable: set[DocumentId] | None) -> bool:
        docs = self._entity_docs.get(eid)
        if not docs:
            return False
        return readable is None or not readable.isdisjoint(docs)

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
        with self._lock:
            if ids is None and source is not None:
                ids = list(self._by_source.get(source, ()))
            pool: Iterable[Document] = (
                self._docs.values()
                if ids is None
                else (self._docs[i] for i in ids if i in self._docs)
            )
            found = [
                d
                for d in pool
                if access.can_read(d.tenant, d.groups) and (source is None or d.source == source)
            ]
        found.sort(key=lambda d: (d.source, d.version, d.id))
        return found[offset : offset + limit]

    async def chunks(self, ids: Sequence[ChunkId], access: Access) -> list[Chunk]:
        """Readable chunks by id, in the order asked."""
        with self._lock:
            out = []
            for cid in ids:
                chunk = self._chunks.get(cid)
                if chunk is not None:
                    doc = self._docs[chunk.document_id]
                    if access.can_read(doc.tenant, doc.groups):
                        out.append(chunk)
            return out

    async def pages(self, names: Sequence[str], access: Access) -> dict[str, list[Chunk]]:
        """First chunks of the readable documents titled with each name."""
        out: dict[str, list[Chunk]] = {}
        with self._lock:
            for name in dict.fromkeys(names):
                exact = normalize_name(name)
                docs = [
                    self._docs[d]
                    for d in self._by_title.get(title_key(name), ())
                    if access.can_read(self._docs[d].tenant, self._docs[d].groups)
                    and d in self._first_chunk
                ]
                docs.sort(key=lambda d: (normalize_name(d.title) != exact, d.id))
                if docs:
                    out[name] = [self._chunks[self._first_chunk[d.id]] for d in docs]
        return out

    async def entities(self, ids: Sequence[EntityId], access: Access) -> list[Entity]:
        """Visible entities by id, in the order asked."""
        with self._lock:
            readable = self._readable(access)
            return [
                self._entities[e]
                for e in ids
                if e in self._entities and self._entity_visible(e, readable)
            ]

    async def search_entities(
        self, text: str, access: Access, *, types: Sequence[str] = (), limit: int = 20
    ) -> list[Entity]:
        """Visible entities whose name or an alias contains ``text``."""
        return await asyncio.to_thread(self._search_sync, text, access, tuple(types), limit)

    def _search_sync(
        self, text: str, access: Access, types: tuple[str, ...], limit: int
    ) -> list[Entity]:
        needle = normalize_name(text)
        with self._lock:
            readable = self._readable(access)
            scored: list[tuple[int, int, str, Entity]] = []
            for ent in self._entities.values():
                if types and ent.type not in types:
                    continue
                names = self._keys[ent.id]
                if needle in names:
                    rank = 0
                elif any(n.startswith(needle) for n in names):
                    rank = 1
                elif any(needle in n for n in names):
                    rank = 2
                else:
                    continue
                if not self._entity_visible(ent.id, readable):
                    continue
                support = sum(
                    c for d, c in self._entity_docs[ent.id].items() if self._ok(d, readable)
                )
                scored.append((rank, -support, ent.name, ent))
        scored.sort(key=lambda t: t[:3])
        return [t[3] for t in scored[:limit]]

    async def mentions(
        self, entity_ids: Sequence[EntityId], access: Access, *, limit: int = 100
    ) -> list[Mention]:
        """Readable mentions of the entities, in document order."""
        with self._lock:
            readable = self._readable(access)
            rows = [
                (row[1], row[2], e, row)
                for e in dict.fromkeys(entity_ids)
                for row in self._mentions.get(e, ())
                if self._ok(row[1], readable)
            ]
            rows.sort(key=lambda t: t[:3])
            return [self._mention(e, row) for _, _, e, row in rows[:limit]]

    async def match_entities(self, names: Sequence[str], access: Access) -> dict[str, list[Entity]]:
        """Readable entities named (or aliased) exactly like each name."""
        with self._lock:
            readable = self._readable(access)
            out: dict[str, list[Entity]] = {}
            for name in dict.fromkeys(names):
                found = [
                    self._entities[e]
                    for e in sorted(self._by_key.get(normalize_name(name), ()))
                    if self._entity_visible(e, readable)
                ]
                if found:
                    found.sort(
                        key=lambda e: (
                            -sum(
                                c
                                for d, c in self._entity_docs[e.id].items()
                                if self._ok(d, readable)
                            )
                        )
                    )
                    out[name] = found
            return out

    async def mention_edges(
        self, entity_ids: Sequence[EntityId], access: Access, *, per_entity: int = 200
    ) -> list[tuple[EntityId, ChunkId, int]]:
        """(entity, chunk, mention count) for readable chunks, at most ``per_entity`` each."""
        with self._lock:
            readable = self._readable(access)
            out: list[tuple[EntityId, ChunkId, int]] = []
            for eid in dict.fromkeys(entity_ids):
                counts: Counter[ChunkId] = Counter(
                    row[0] for row in self._mentions.get(eid, ()) if self._ok(row[1], readable)
                )
                # Most mentions first, ties by chunk id: the same order every store gives.
                ranked = sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:per_entity]
                out.extend((eid, cid, n) for cid, n in ranked)
            return out

    async def chunk_mentions(self, chunk_ids: Sequence[ChunkId], access: Access) -> list[Mention]:
        """Mentions inside readable chunks."""
        with self._lock:
            readable = self._readable(access)
            out: list[Mention] = []
            for cid in dict.fromkeys(chunk_ids):
                rows = sorted(self._chunk_mentions.get(cid, ()), key=lambda t: (t[1][2], t[0]))
                out.extend(self._mention(e, row) for e, row in rows if self._ok(row[1], readable))
            return out

    async def facts(self, ids: Sequence[RelationId], access: Access) -> list[Relation]:
        """Facts by id, with readable evidence only."""
        with self._lock:
            readable = self._readable(access)
            found = [self._relation(r, readable) for r in dict.fromkeys(ids) if r in self._facts]
            return [r for r in found if r is not None]

    async def relations(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        predicates: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Relation]:
        """Facts touching the entities, strongest first."""
        with self._lock:
            readable = self._readable(access)
            rids = self._touching(list(dict.fromkeys(entity_ids)), readable, set(predicates))
            return self._built(rids[:limit], readable)

    def _touching(
        self, entity_ids: list[EntityId], readable: set[DocumentId] | None, predicates: set[str]
    ) -> list[RelationId]:
        """Readable facts touching the entities, strongest first (no objects built)."""
        rids: dict[RelationId, None] = {}
        for eid in entity_ids:
            if not self._graph.has_node(eid):
                continue
            for _, _, rid in self._graph.out_edges(eid, keys=True):
                rids[rid] = None
            for _, _, rid in self._graph.in_edges(eid, keys=True):
                rids[rid] = None
        scored: list[tuple[float, int, RelationId]] = []
        for rid in rids:
            if predicates and self._facts[rid][1] not in predicates:
                continue
            rows = [
                row[3]
                for did, rows in self._support[rid].items()
                if readable is None or did in readable
                for row in rows
            ]
            if rows:
                scored.append((max(rows) * len(rows), len(rows), rid))
        scored.sort(reverse=True)
        return [rid for _, _, rid in scored]

    def _built(
        self, rids: Iterable[RelationId], readable: set[DocumentId] | None
    ) -> list[Relation]:
        found = (self._relation(rid, readable) for rid in rids)
        return [r for r in found if r is not None]

    async def neighbors(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        depth: int = 1,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> Neighborhood:
        """Breadth-first readable subgraph, strongest facts expanded first."""
        return await asyncio.to_thread(
            self._neighbors_sync, list(entity_ids), access, depth, set(predicates), limit
        )

    def _neighbors_sync(
        self,
        entity_ids: list[EntityId],
        access: Access,
        depth: int,
        predicates: set[str],
        limit: int,
    ) -> Neighborhood:
        with self._lock:
            readable = self._readable(access)
            seeds = [e for e in dict.fromkeys(entity_ids) if self._entity_visible(e, readable)]
            kept: dict[EntityId, None] = dict.fromkeys(seeds[:limit])
            rels: dict[RelationId, None] = {}
            truncated = len(seeds) > limit
            frontier = list(kept)
            for _ in range(depth):
                nxt: list[EntityId] = []
                for rid in self._touching(frontier, readable, predicates):
                    subject, _, obj, _ = self._facts[rid]
                    for end in (subject, obj):
                        if end not in kept:
                            if len(kept) >= limit:
                                truncated = True
                                continue
                            kept[end] = None
                            nxt.append(end)
                    if subject in kept and obj in kept:
                        rels[rid] = None
                frontier = nxt
                if not frontier:
                    break
            return Neighborhood(
                entities=tuple(self._entities[e] for e in kept),
                relations=tuple(self._built(rels, readable)),
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
        """Shortest readable fact chains, by breadth-first search over readable facts."""
        return await asyncio.to_thread(self._paths_sync, source, target, access, max_hops, limit)

    def _paths_sync(
        self, source: EntityId, target: EntityId, access: Access, max_hops: int, limit: int
    ) -> list[GraphPath]:
        with self._lock:
            readable = self._readable(access)
            if source == target or not all(
                self._graph.has_node(e) and self._entity_visible(e, readable)
                for e in (source, target)
            ):
                return []

            def edge_ok(u: EntityId, v: EntityId, rid: RelationId) -> bool:
                return any(readable is None or d in readable for d in self._support[rid])

            view = nx.subgraph_view(self._graph, filter_edge=edge_ok).to_undirected(as_view=True)
            found: list[tuple[EntityId, ...]] = []
            try:
                for nodes in nx.all_shortest_paths(view, source, target):
                    if len(nodes) - 1 > max_hops or len(found) >= limit * 10:
                        break
                    found.append(tuple(nodes))
            except nx.NetworkXNoPath:
                return []
            return [
                GraphPath(
                    entity_ids=nodes,
                    relations=tuple(
                        self._strongest(view, a, b, readable) for a, b in itertools.pairwise(nodes)
                    ),
                )
                for nodes in sorted(found)[:limit]
            ]

    def _strongest(
        self, view: Any, a: EntityId, b: EntityId, readable: set[DocumentId] | None
    ) -> Relation:
        rids = list(view.get_edge_data(a, b, default={}))
        best = self._touching([a], readable, set())
        ranked = [r for r in best if r in rids]
        relation = self._relation(ranked[0], readable)
        if relation is None:  # pragma: no cover - the view holds readable facts only
            raise StoreError(f"fact between {a} and {b} vanished during the search")
        return relation

    async def export(self, document_ids: Sequence[DocumentId]) -> list[DocumentGraph]:
        """The stored graph of each document, with only that document's evidence."""
        with self._lock:
            return [self._export(d) for d in dict.fromkeys(document_ids) if d in self._docs]

    def _export(self, did: DocumentId) -> DocumentGraph:
        mentions = [
            self._mention(eid, row)
            for cid in self._doc_chunks.get(did, ())
            for eid, row in sorted(self._chunk_mentions.get(cid, ()), key=lambda t: (t[1][2], t[0]))
        ]
        relations = []
        for rid in sorted(self._doc_relations.get(did, ())):
            rows = self._support[rid].get(did)
            if not rows:
                continue
            subject, predicate, obj, kind = self._facts[rid]
            relations.append(
                Relation.model_construct(
                    id=rid,
                    subject_id=subject,
                    predicate=predicate,
                    object_id=obj,
                    kind=kind,
                    confidence=max(row[3] for row in rows),
                    evidence=tuple(self._span(row[0], did, row[1], row[2]) for row in rows),
                )
            )
        ids = dict.fromkeys(
            [m.entity_id for m in mentions]
            + [e for r in relations for e in (r.subject_id, r.object_id)]
        )
        return DocumentGraph.model_construct(
            document=self._docs[did],
            chunks=tuple(self._chunks[c] for c in self._doc_chunks.get(did, ())),
            entities=tuple(self._entities[e] for e in ids if e in self._entities),
            mentions=tuple(mentions),
            relations=tuple(relations),
        )

    async def stats(self, access: Access) -> StoreStats:
        """Counts of what ``access`` can see."""
        with self._lock:
            readable = self._readable(access)
            if readable is None:
                return StoreStats(
                    documents=len(self._docs),
                    chunks=len(self._chunks),
                    entities=len(self._entities),
                    mentions=sum(len(m) for m in self._mentions.values()),
                    relations=len(self._facts),
                )
            return StoreStats(
                documents=len(readable),
                chunks=sum(len(self._doc_chunks.get(d, ())) for d in readable),
                entities=sum(1 for e in self._entities if self._entity_visible(e, readable)),
                mentions=sum(
                    c
                    for docs in self._entity_docs.values()
                    for d, c in docs.items()
                    if d in readable
                ),
                relations=sum(
                    1 for support in self._support.values() if not readable.isdisjoint(support)
                ),
            )
