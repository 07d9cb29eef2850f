"""The embedded vector index: Qdrant Edge, Qdrant's in-process engine, in the data dir."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

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
    point_payload,
    point_vectors,
    read_matches,
    stored_hit,
    stored_sentences,
)
from graph.errors import StoreError, StoreUnavailableError
from graph.ids import ChunkId, DocumentId, point_uuid
from graph.models import Access
from graph.protocols import SentenceVector, SparseVector, VectorHit, VectorPoint

__all__ = ["QdrantEdgeVectorIndex"]

_FORMAT = 3  # bumped when the shard layout changes
_READABLE_FORMATS = (2, 3)  # 2 has no sentence vectors; queries embed those sentences
_META_FILE = "threadline-index.json"


class QdrantEdgeVectorIndex:
    """Chunk vectors in a Qdrant Edge shard (HNSW + keyword payload indexes).

    Create it with :meth:`open`; the constructor does no I/O.
    """

    def __init__(self, path: Path, *, dimension: int) -> None:
        self._path = path
        self._dimension = dimension
        self._shard: Any = None
        self._lock = threading.Lock()
        self._layout = _FORMAT
        self._errors = QdrantErrors(str(path))

    @classmethod
    async def open(cls, path: Path | str, *, dimension: int) -> Self:
        """Open the shard at ``path``, creating it (with payload indexes) if it is new."""
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
        """Vector size of the shard."""
        return self._dimension

    def _open_sync(self) -> None:
        meta = self._path / _META_FILE
        with self._errors("open", opening=True):
            stored = _stored(self._path)
            if stored is not None:
                existing, self._layout = stored
                if existing != self._dimension:
                    raise StoreUnavailableError(
                        f"the vector index at {self._path} holds {existing}-d vectors but the "
                        f"embedder makes {self._dimension}-d ones; use the embedder it was built "
                        "with or a new data dir"
                    )
                shard = qe.EdgeShard.load(str(self._path))
            else:
                # No metadata file: creation never finished, so nothing in here is data.
                if self._path.exists():
                    shutil.rmtree(self._path)
                self._path.mkdir(parents=True)
                config = qe.EdgeConfig(
                    vectors={
                        VECTOR: qe.EdgeVectorParams(
                            size=self._dimension, distance=qe.Distance.Cosine
                        ),
                        # Read by id only, never searched: no HNSW graph for them.
                        SENTENCES: qe.EdgeVectorParams(
                            size=self._dimension,
                            distance=qe.Distance.Cosine,
                            multivector_config=qe.MultiVectorConfig(
                                qe.MultiVectorComparator.MaxSim
                            ),
                            hnsw_config=qe.HnswIndexConfig(
                                m=0, ef_construct=100, full_scan_threshold=10_000
                            ),
                        ),
                    },
                    sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                )
                shard = qe.EdgeShard.create(str(self._path), config)
                for field in KEYWORD_FIELDS:
                    shard.update(
                        qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                    )
                shard.flush()
                # Written last: a shard without this file was never fully created.
                meta.write_text(
                    json.dumps({"dimension": self._dimension, "format": _FORMAT}), encoding="utf-8"
                )
        self._shard = shard

    def _require(self) -> Any:
        if self._shard is None:
            raise StoreError("the vector index is closed; open it with QdrantEdgeVectorIndex.open")
        return self._shard

    def _run(self, action: str, fn: Any, *args: Any) -> Any:
        with self._lock:
            shard = self._require()
            with self._errors(action):
                return fn(shard, *args)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points, keyed by chunk id."""
        for point in points:
            point.check_dimension(self._dimension)
        keep = self._layout >= 3
        batch = [
            qe.Point(
                point_uuid(p.chunk_id),
                point_vectors(p, sentences=keep, sparse=qe.SparseVector),
                point_payload(p, sentences=keep),
            )
            for p in points
        ]
        if batch:
            await asyncio.to_thread(
                self._run, "upsert", lambda s: s.update(qe.UpdateOperation.upsert_points(batch))
            )

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
        return await self._query(request)

    async def search_sparse(
        self,
        sparse: SparseVector,
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Best readable chunks by BM25 score, filtered inside the shard query."""
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
        return await self._query(request)

    async def _query(self, request: Any) -> list[VectorHit]:
        found = await asyncio.to_thread(self._run, "search", lambda s: s.query(request))
        return [stored_hit(p.payload, p.score) for p in found]

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks (none in a layout-2 index)."""
        if not chunk_ids or self._layout < 3:
            return {}
        ids = [point_uuid(c) for c in dict.fromkeys(chunk_ids)]
        records = await asyncio.to_thread(
            self._run, "retrieve", lambda s: s.retrieve(ids, True, [SENTENCES])
        )
        return stored_sentences(((r.payload, r.vector) for r in records), access)

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents."""
        if not document_ids:
            return
        flt = _filter([document_match(document_ids)])
        await asyncio.to_thread(
            self._run, "delete", lambda s: s.update(qe.UpdateOperation.delete_points_by_filter(flt))
        )

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        request = qe.CountRequest(exact=True, filter=_filter(read_matches(access)))
        return int(await asyncio.to_thread(self._run, "count", lambda s: s.count(request)))

    async def close(self) -> None:
        """Flush to disk and release the shard."""
        if self._shard is None:
            return

        def _close() -> None:
            with self._lock, self._errors("close"):
                shard, self._shard = self._shard, None
                shard.flush()
                shard.close()

        await asyncio.to_thread(_close)


def _stored(path: Path) -> tuple[int, int] | None:
    """(dimension, layout) of an existing index at ``path`` (None when there is none yet)."""
    meta = path / _META_FILE
    if not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        dimension, layout = int(info["dimension"]), int(info.get("format", 1))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreUnavailableError(f"unreadable index metadata {meta}: {exc}") from exc
    if layout not in _READABLE_FORMATS:
        raise StoreUnavailableError(
            f"the vector index at {path} was built by another Threadline version (layout "
            f"{layout}, this one reads {', '.join(map(str, _READABLE_FORMATS))}); ingest "
            "into a new data dir"
        )
    return dimension, layout


def _filter(matches: Sequence[FieldMatch]) -> Any:
    """The Edge filter requiring every match (None when there is none)."""
    if not matches:
        return None
    return qe.Filter(
        must=[qe.FieldCondition(m.key, match=qe.MatchAny(list(m.values))) for m in matches]
    )
