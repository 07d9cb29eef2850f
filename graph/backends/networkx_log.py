"""The durable half of the embedded graph store: SQLite in WAL mode, the source of truth.

Every write is one SQLite transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); the in-memory
index is rebuilt from these tables on open, so a process killed mid-write leaves either
the old state or the new one. The log is used from one thread at a time (the store's
writer thread).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from graph.backends import networkx_communities as communities
from graph.backends.networkx_index import DeletePlan, NetworkxIndex, SupportRow, intern_id
from graph.communities import Community, CommunityScope
from graph.errors import StoreCorruptedError, StoreError, StoreUnavailableError
from graph.ids import DocumentId, EntityId, RelationId
from graph.models import Document, DocumentGraph, Entity, Section, Tag
from graph.scoping import ENTITY_IDS

__all__ = ["SCHEMA_VERSION", "SqliteLog", "TextReads"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, version INTEGER NOT NULL,
    tenant TEXT NOT NULL, groups TEXT NOT NULL, content_hash TEXT NOT NULL,
    ingested_at TEXT NOT NULL, text TEXT NOT NULL, sections TEXT NOT NULL DEFAULT '[]',
    about TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS documents_source ON documents (tenant, source);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY, document_id TEXT NOT NULL, idx INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT '[]');
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


class SqliteLog:
    """The store's SQLite file. Create it with :meth:`open` (from a worker thread)."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = db

    @classmethod
    def open(cls, path: Path) -> SqliteLog:
        """Open (creating if needed) the file, create the schema and check its version."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A deleted document's text is overwritten in the file, not only unlinked.
            db.execute("PRAGMA secure_delete=ON")
            db.executescript(_SCHEMA)
            db.executescript(communities.SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(documents)")}
            if "sections" not in columns:  # stores written before documents had sections
                db.execute("ALTER TABLE documents ADD COLUMN sections TEXT NOT NULL DEFAULT '[]'")
            if "about" not in columns:  # stores written before documents had subjects
                db.execute("ALTER TABLE documents ADD COLUMN about TEXT NOT NULL DEFAULT '[]'")
            chunk_columns = {row[1] for row in db.execute("PRAGMA table_info(chunks)")}
            if "tags" not in chunk_columns:  # stores written before chunks had tags
                db.execute("ALTER TABLE chunks ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreCorruptedError(
                    f"{path} has schema version {row[0]}, this Threadline reads "
                    f"version {SCHEMA_VERSION}; migrate or use a new data dir"
                )
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(
                f"cannot open the graph database {path}: {exc}; "
                "check that the file is a Threadline store and is not damaged"
            ) from exc
        return cls(path, db)

    def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            db, self._db = self._db, None
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the graph store is closed; open it with NetworkxGraphStore.open")
        return self._db

    # ------------------------------------------------------------------ load

    def load(self, index: NetworkxIndex) -> None:
        """Fill an empty index with every committed row."""
        # Rows were validated when they were written; model_construct skips re-validation.
        db = self._conn()
        intern = intern_id
        texts: dict[DocumentId, str] = {}  # only while loading: personal-data tags cut them
        for row in db.execute(
            "SELECT id, source, title, version, tenant, groups, content_hash, ingested_at, "
            "text, sections, about FROM documents"
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
                about=tuple(json.loads(row[10])),
            )
            index.add_document(doc)
            texts[doc.id] = doc.text
        for cid, did, idx, start, end, tags in db.execute(
            'SELECT id, document_id, idx, start, "end", tags FROM chunks ORDER BY document_id, idx'
        ):
            found = json.loads(tags)
            index.add_chunk(
                cid,
                did,
                idx,
                start,
                end,
                tuple(Tag.model_construct(**t) for t in found) if found else (),
                texts[did],
            )
        del texts
        for eid, name, etype, aliases in db.execute("SELECT * FROM entities"):
            index.set_entity_row(eid, (name, etype, tuple(json.loads(aliases))))
        for eid, cid, did, start, end in db.execute("SELECT * FROM mentions"):
            if did not in index.docs:
                raise StoreCorruptedError(f"{self._path} refers to missing document {did}")
            index.add_mention(eid, (cid, did, start, end))
        # Documents and chunks are interned already: rows share those strings.
        support: dict[RelationId, list[SupportRow]] = defaultdict(list)
        for rid, cid, did, start, end, conf in db.execute("SELECT * FROM evidence"):
            support[intern(rid)].append((intern(did), intern(cid), start, end, conf))
        for rid, subj, pred, obj, kind in db.execute("SELECT * FROM relations"):
            rows = support.pop(rid, None)
            if rows is None:
                raise StoreCorruptedError(f"fact {rid} in {self._path} has no evidence")
            index.set_fact(rid, (subj, pred, obj, kind), rows)

    def texts(self) -> TextReads:
        """A reader of committed document texts, on connections of its own."""
        return TextReads(self._path)

    # ------------------------------------------------------------------ entity ids

    def entities_scoped(self) -> bool:
        """Whether entity ids are scoped by tenant and access list (marks an empty store so)."""
        db = self._conn()
        row = db.execute("SELECT value FROM meta WHERE key='entity_ids'").fetchone()
        if row is not None:
            if row[0] != ENTITY_IDS:
                raise StoreCorruptedError(
                    f"{self._path} has entity ids of layout {row[0]}, this Threadline reads "
                    f"{ENTITY_IDS}; open it with the Threadline that wrote it"
                )
            return True
        if db.execute("SELECT 1 FROM entities LIMIT 1").fetchone() is None:
            db.execute("INSERT INTO meta VALUES ('entity_ids', ?)", (ENTITY_IDS,))
            return True
        return False

    def replace_entities(self, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]) -> None:
        """Swap every entity, mention and fact for those of ``graphs`` in one transaction,
        and mark the entity ids scoped (documents and chunks stay as they are)."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            for table in ("evidence", "relations", "mentions", "entities"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            _insert_extractions(db, graphs, merged)
            db.execute(
                "INSERT INTO meta VALUES ('entity_ids', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (ENTITY_IDS,),
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"rewriting entity ids in {self._path} failed: {exc}") from exc

    # ------------------------------------------------------------------ writes

    def commit(
        self,
        *,
        graphs: list[DocumentGraph],
        merged: dict[EntityId, Entity],
        deleted: list[DocumentId],
        plan: DeletePlan,
        dropped_scopes: list[str] | None = None,
    ) -> None:
        """Delete ``deleted`` (as planned) and insert ``graphs`` in one transaction; the
        communities of ``dropped_scopes`` go in the same transaction."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            if dropped_scopes:
                communities.drop_rows(db, dropped_scopes)
            if deleted:
                _delete_rows(db, deleted, plan)
            if graphs:
                _insert_rows(db, graphs, merged)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"writing to {self._path} failed: {exc}") from exc
        if deleted:
            # The write-ahead log still holds the deleted rows' earlier page images.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ communities

    def load_communities(self) -> communities.Stored:
        """Every scope's stored communities."""
        return communities.load_rows(self._conn())

    def put_communities(self, scope: CommunityScope, found: list[Community]) -> None:
        """Replace one scope's communities in one transaction."""
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            communities.put_rows(db, scope, found)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StoreError(f"writing communities to {self._path} failed: {exc}") from exc


class TextReads:
    """Reads committed document texts, one query per call, on a read-only connection per
    calling thread (never the writer's, so a read never sees a transaction half done)."""

    def __init__(self, path: Path) -> None:
        self._uri = path.resolve().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False

    def __call__(self, ids: Collection[DocumentId]) -> dict[DocumentId, str]:
        """The texts of the stored documents among ``ids``."""
        try:
            rows = self._connection().execute(
                "SELECT id, text FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(ids)),),
            )
            return dict(rows.fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"reading texts from {self._uri} failed: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._guard:
                if self._closed:
                    raise StoreError(
                        "the graph store is closed; open it with NetworkxGraphStore.open"
                    )
                db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
                self._open.append(db)
            self._local.db = db
        return db

    def close(self) -> None:
        """Close every connection (the store's threads have stopped reading)."""
        with self._guard:
            self._closed = True
            found, self._open = self._open, []
        for db in found:
            db.close()


def _insert_rows(
    db: sqlite3.Connection, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]
) -> None:
    db.executemany(
        "INSERT INTO documents (id, source, title, version, tenant, groups, content_hash, "
        "ingested_at, text, sections, about) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
                json.dumps(list(d.about)),
            )
            for d in (g.document for g in graphs)
        ],
    )
    db.executemany(
        'INSERT INTO chunks (id, document_id, idx, start, "end", tags) VALUES (?,?,?,?,?,?)',
        [
            (
                c.id,
                c.document_id,
                c.index,
                c.start,
                c.end,
                json.dumps([t.model_dump() for t in c.tags]),
            )
            for g in graphs
            for c in g.chunks
        ],
    )
    _insert_extractions(db, graphs, merged)


def _insert_extractions(
    db: sqlite3.Connection, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]
) -> None:
    db.executemany(
        "INSERT INTO entities VALUES (?,?,?,?) "
        "ON CONFLICT(id) DO UPDATE SET name=excluded.name, aliases=excluded.aliases",
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


def _delete_rows(db: sqlite3.Connection, doc_ids: list[DocumentId], plan: DeletePlan) -> None:
    one = [(d,) for d in doc_ids]
    for table in ("evidence", "mentions", "chunks"):
        db.executemany(f"DELETE FROM {table} WHERE document_id=?", one)  # noqa: S608 - fixed table names
    db.executemany("DELETE FROM documents WHERE id=?", one)
    db.executemany("DELETE FROM relations WHERE id=?", [(r,) for r in plan.relations_emptied])
    db.executemany("DELETE FROM entities WHERE id=?", [(e,) for e in plan.entities])
    db.executemany(
        "UPDATE entities SET name=?, aliases=? WHERE id=?",
        [(e.name, json.dumps(list(e.aliases)), e.id) for e in plan.renamed.values()],
    )
