"""The embedded vector index: Qdrant Edge, Qdrant's in-process engine, in the data dir.

Layout of the index directory (format 4)::

    threadline-index.json     dimension and format; written last when the index is made
    .lock                     held while a process has the index open
    tenants/<key>/            one Qdrant Edge shard per tenant (see ``partition_key``),
                              made on the tenant's first write; ``partition.json`` in it
                              is written last, so a shard without it is discarded

One shard per tenant keeps each tenant's keyword statistics (the sparse vectors' IDF) its
own. Indexes of formats 2 and 3 hold every tenant in one shard at the top of the directory;
opening one moves each point into its tenant's shard, then switches the format in one
atomic rename. A crash before that rename leaves the old shard whole, and the next open
starts over; a crash after it leaves old files that the next open removes.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Self

import qdrant_edge as qe

from graph.backends.qdrant_common import (
    HIT_FIELDS,
    KEYWORD_FIELDS,
    SENTENCES,
    SPARSE,
    VECTOR,
    FieldMatch,
    QdrantErrors,
    document_match,
    merge_hits,
    partition_key,
    point_payload,
    point_vectors,
    read_matches,
    stored_hit,
    stored_sentences,
    tenant_of,
)
from graph.errors import StoreError, StoreUnavailableError
from graph.ids import ChunkId, DocumentId, point_uuid
from graph.models import Access
from graph.protocols import SentenceVector, SparseVector, VectorHit, VectorPoint

__all__ = ["QdrantEdgeVectorIndex"]

_log = logging.getLogger(__name__)

_FORMAT = 4  # bumped when the layout changes
_SHARED_FORMATS = (2, 3)  # one shard for every tenant; migrated on open
_META_FILE = "threadline-index.json"
_LOCK_FILE = ".lock"
_TENANTS = "tenants"
_PARTITION_FILE = "partition.json"
_KEEP = frozenset({_META_FILE, _LOCK_FILE, _TENANTS})
_SCROLL_BATCH = 256


class QdrantEdgeVectorIndex:
    """Chunk vectors in Qdrant Edge shards, one per tenant (HNSW + keyword payload indexes).

    A tenant's reads touch only its own shard; admin access reads every shard and merges.
    Create it with :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path, *, dimension: int) -> None:
        self._path = path
        self._dimension = dimension
        self._shards: dict[str, Any] = {}  # partition key -> open shard
        self._lock = threading.Lock()
        self._held: IO[bytes] | None = None
        self._errors = QdrantErrors(str(path))

    @classmethod
    async def open(cls, path: Path | str, *, dimension: int) -> Self:
        """Open the index at ``path``, creating it if new and migrating an older layout."""
        index = cls(Path(path), dimension=dimension)
        await asyncio.to_thread(index._open_sync)
        return index

    @staticmethod
    def stored_dimension(path: Path | str) -> int | None:
        """Vector size of an existing index at ``path`` (None when there is none yet)."""
        stored = _stored(Path(path))
        return stored[0] if stored else None

    @property
    def dimension(self) -> int:
        """Vector size of the index."""
        return self._dimension

    # ------------------------------------------------------------------ opening

    def _open_sync(self) -> None:
        with self._errors("open", opening=True):
            stored = _stored(self._path)
            if stored is None:
                # No metadata file: creation never finished, so nothing in here is data.
                if self._path.exists():
                    shutil.rmtree(self._path)
                (self._path / _TENANTS).mkdir(parents=True)
            self._hold()
            try:
                if stored is None:
                    _write_meta(self._path, self._dimension)
                else:
                    existing, layout = stored
                    if existing != self._dimension:
                        raise StoreUnavailableError(
                            f"the vector index at {self._path} holds {existing}-d vectors but "
                            f"the embedder makes {self._dimension}-d ones; use the embedder it "
                            "was built with or a new data dir"
                        )
                    if layout in _SHARED_FORMATS:
                        self._migrate()
                    self._tidy()
                self._load_partitions()
            except BaseException:
                self._close_sync()
                raise

    def _hold(self) -> None:
        """Take the directory's lock, so that no second process opens it."""
        handle = (self._path / _LOCK_FILE).open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise
        self._held = handle

    def _tidy(self) -> None:
        """Remove what a finished migration or an unfinished shard creation left behind."""
        for entry in self._path.iterdir():
            if entry.name not in _KEEP:
                _remove(entry)
        tenants = self._path / _TENANTS
        tenants.mkdir(exist_ok=True)
        for entry in tenants.iterdir():
            if not (entry / _PARTITION_FILE).exists():
                _remove(entry)

    def _load_partitions(self) -> None:
        for entry in sorted((self._path / _TENANTS).iterdir()):
            self._shards[entry.name] = qe.EdgeShard.load(str(entry))

    def _migrate(self) -> None:
        """Move every point of the shared shard into its tenant's shard, then commit."""
        _log.info("splitting the vector index at %s into one shard per tenant", self._path)
        tenants = self._path / _TENANTS
        if tenants.exists():  # an earlier migration stopped half way: start over
            shutil.rmtree(tenants)
        tenants.mkdir()
        old = qe.EdgeShard.load(str(self._path))
        try:
            offset: Any = None
            while True:
                records, offset = old.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=_SCROLL_BATCH, with_payload=True, with_vector=True
                    )
                )
                by_tenant: dict[str, list[Any]] = defaultdict(list)
                for record in records:
                    # Every shard here has named vectors, so a record's are a mapping.
                    vectors = record.vector if isinstance(record.vector, dict) else {}
                    by_tenant[tenant_of(record.payload)].append(
                        qe.Point(record.id, vectors, record.payload)
                    )
                for tenant, batch in by_tenant.items():
                    shard = self._partition(tenant, create=True)
                    shard.update(qe.UpdateOperation.upsert_points(batch))
                if offset is None:
                    break
        finally:
            old.close()
        for shard in self._shards.values():
            shard.flush()
            shard.close()
        self._shards.clear()
        _write_meta(self._path, self._dimension)  # the commit: one atomic rename

    def _partition(self, tenant: str, *, create: bool) -> Any:
        """The open shard of ``tenant`` (None if it has none and ``create`` is false)."""
        key = partition_key(tenant)
        shard = self._shards.get(key)
        if shard is not None or not create:
            return shard
        where = self._path / _TENANTS / key
        if where.exists():  # a creation that never finished
            shutil.rmtree(where)
        shard = qe.EdgeShard.create(str(where), self._config())
        for field in KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        shard.flush()
        # Written last: a shard without this file was never fully created.
        (where / _PARTITION_FILE).write_text(json.dumps({"tenant": tenant}), encoding="utf-8")
        self._shards[key] = shard
        return shard

    def _config(self) -> Any:
        return qe.EdgeConfig(
            vectors={
                VECTOR: qe.EdgeVectorParams(size=self._dimension, distance=qe.Distance.Cosine),
                # Read by id only, never searched: no HNSW graph for them.
                SENTENCES: qe.EdgeVectorParams(
                    size=self._dimension,
                    distance=qe.Distance.Cosine,
                    multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
                    hnsw_config=qe.HnswIndexConfig(
                        m=0, ef_construct=100, full_scan_threshold=10_000
                    ),
                ),
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    # ------------------------------------------------------------------ running

    def _require(self) -> None:
        if self._held is None:
            raise StoreError("the vector index is closed; open it with QdrantEdgeVectorIndex.open")

    def _each(self, action: str, access: Access, fn: Callable[[Any], Any]) -> list[Any]:
        """``fn`` applied to every shard ``access`` may read: its tenant's, or all for admin."""
        with self._lock:
            self._require()
            if access.is_admin:
                shards = [self._shards[k] for k in sorted(self._shards)]
            else:
                shard = self._partition(access.tenant or "", create=False)
                shards = [] if shard is None else [shard]
            with self._errors(action):
                return [fn(shard) for shard in shards]

    def _upsert_sync(self, batches: dict[str, list[Any]]) -> None:
        with self._lock:
            self._require()
            with self._errors("upsert"):
                for tenant, batch in batches.items():
                    shard = self._partition(tenant, create=True)
                    shard.update(qe.UpdateOperation.upsert_points(batch))

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points, keyed by chunk id, each in its tenant's shard."""
        for point in points:
            point.check_dimension(self._dimension)
        batches: dict[str, list[Any]] = defaultdict(list)
        for p in points:
            batches[p.tenant].append(
                qe.Point(
                    point_uuid(p.chunk_id),
                    point_vectors(p, sentences=True, sparse=qe.SparseVector),
                    point_payload(p, sentences=True),
                )
            )
        if batches:
            await asyncio.to_thread(self._upsert_sync, dict(batches))

    async def search(
        self,
        vector: Sequence[float],
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Nearest readable chunks, filtered inside the shard query."""
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(list(vector), using=VECTOR),
            with_payload=HIT_FIELDS,
            filter=_filter(read_matches(access, document_ids)),
        )
        return await self._query(request, access, limit)

    async def search_sparse(
        self,
        sparse: SparseVector,
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Best readable chunks by BM25 score, IDF over the tenant's own shard."""
        if not sparse.indices:
            return []
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(
                qe.SparseVector(list(sparse.indices), list(sparse.values)), using=SPARSE
            ),
            with_payload=HIT_FIELDS,
            filter=_filter(read_matches(access, document_ids)),
        )
        return await self._query(request, access, limit)

    async def _query(self, request: Any, access: Access, limit: int) -> list[VectorHit]:
        found = await asyncio.to_thread(self._each, "search", access, lambda s: s.query(request))
        return merge_hits(([stored_hit(p.payload, p.score) for p in part] for part in found), limit)

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks (none for points migrated without)."""
        if not chunk_ids:
            return {}
        ids = [point_uuid(c) for c in dict.fromkeys(chunk_ids)]
        found = await asyncio.to_thread(
            self._each, "retrieve", access, lambda s: s.retrieve(ids, True, [SENTENCES])
        )
        return stored_sentences(((r.payload, r.vector) for part in found for r in part), access)

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents, whichever tenant's shard holds them."""
        if not document_ids:
            return
        flt = _filter([document_match(document_ids)])
        await asyncio.to_thread(
            self._each,
            "delete",
            Access.admin(),
            lambda s: s.update(qe.UpdateOperation.delete_points_by_filter(flt)),
        )

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        request = qe.CountRequest(exact=True, filter=_filter(read_matches(access)))
        found = await asyncio.to_thread(self._each, "count", access, lambda s: s.count(request))
        return sum(int(n) for n in found)

    async def close(self) -> None:
        """Flush every shard to disk and release the directory."""
        if self._held is None:
            return

        def _close() -> None:
            with self._lock, self._errors("close"):
                self._close_sync()

        await asyncio.to_thread(_close)

    def _close_sync(self) -> None:
        shards, self._shards = self._shards, {}
        try:
            for shard in shards.values():
                shard.flush()
                shard.close()
        finally:
            held, self._held = self._held, None
            if held is not None:
                fcntl.flock(held.fileno(), fcntl.LOCK_UN)
                held.close()


def _stored(path: Path) -> tuple[int, int] | None:
    """(dimension, format) of an existing index at ``path`` (None when there is none yet)."""
    meta = path / _META_FILE
    if not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        dimension, layout = int(info["dimension"]), int(info.get("format", 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreUnavailableError(f"unreadable index metadata {meta}: {exc}") from exc
    if layout != _FORMAT and layout not in _SHARED_FORMATS:
        readable = ", ".join(map(str, (*_SHARED_FORMATS, _FORMAT)))
        raise StoreUnavailableError(
            f"the vector index at {path} was built by another Threadline version (layout "
            f"{layout}, this one reads {readable}); ingest into a new data dir"
        )
    return dimension, layout


def _write_meta(path: Path, dimension: int) -> None:
    """Write the metadata file atomically (a temporary file renamed over it)."""
    meta = path / _META_FILE
    staged = path / f".{_META_FILE}.new"
    with staged.open("w", encoding="utf-8") as handle:
        json.dump({"dimension": dimension, "format": _FORMAT}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    staged.replace(meta)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _filter(matches: Sequence[FieldMatch]) -> Any:
    """The Edge filter requiring every match (None when there is none)."""
    if not matches:
        return None
    return qe.Filter(
        must=[qe.FieldCondition(m.key, match=qe.MatchAny(list(m.values))) for m in matches]
    )
