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

from graph.errors import StoreError, StoreUnavailableError
from graph.ids import ChunkId, DocumentId, point_uuid
from graph.models import Access
from graph.protocols import SentenceVector, SparseVector, VectorHit, VectorPoint

__all__ = ["QdrantEdgeVectorIndex"]

_VECTOR = "chunk"
_SPARSE = "bm25"
_SENTENCES = "sentences"  # multivector: the chunk's stored sentence vectors
_FORMAT = 3  # bumped when the shard layout changes
_READABLE_FORMATS = (2, 3)  # 2 has no sentence vectors; queries embed those sentences
_KEYWORD_FIELDS = ("tenant", "groups", "document_id")
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
        try:
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
                        _VECTOR: qe.EdgeVectorParams(
                            size=self._dimension, distance=qe.Distance.Cosine
                        ),
                        # Read by id only, never searched: no HNSW graph for them.
                        _SENTENCES: qe.EdgeVectorParams(
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
                    sparse_vectors={_SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                )
                shard = qe.EdgeShard.create(str(self._path), config)
                for field in _KEYWORD_FIELDS:
                    shard.update(
                        qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                    )
                shard.flush()
                # Written last: a shard without this file was never fully created.
                meta.write_text(
                    json.dumps({"dimension": self._dimension, "format": _FORMAT}), encoding="utf-8"
                )
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot open the Qdrant Edge index at {self._path}: {exc}. "
                "Another Threadline process may be using this data dir."
            ) from exc
        self._shard = shard

    def _require(self) -> Any:
        if self._shard is None:
            raise StoreError("the vector index is closed; open it with QdrantEdgeVectorIndex.open")
        return self._shard

    def _run(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            shard = self._require()
            try:
                return fn(shard, *args)
            except Exception as exc:
                raise StoreError(f"Qdrant Edge at {self._path} failed: {exc}") from exc

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points, keyed by chunk id."""
        for point in points:
            point.check_dimension(self._dimension)
        keep = self._layout >= 3
        batch = [
            qe.Point(
                point_uuid(p.chunk_id),
                _vectors(p, sentences=keep),
                {
                    "chunk_id": p.chunk_id,
                    "document_id": p.document_id,
                    "tenant": p.tenant,
                    "groups": list(p.groups),
                    **({"sentence_spans": _spans(p)} if keep and p.sentences else {}),
                },
            )
            for p in points
        ]
        if batch:
            await asyncio.to_thread(
                self._run, lambda s: s.update(qe.UpdateOperation.upsert_points(batch))
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
            query=qe.Query.Nearest(list(vector), using=_VECTOR),
            with_payload=["chunk_id", "document_id"],
            filter=_filter(access, document_ids),
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
                qe.SparseVector(list(sparse.indices), list(sparse.values)), using=_SPARSE
            ),
            with_payload=["chunk_id", "document_id"],
            filter=_filter(access, document_ids),
        )
        return await self._query(request)

    async def _query(self, request: Any) -> list[VectorHit]:
        found = await asyncio.to_thread(self._run, lambda s: s.query(request))
        return [
            VectorHit(
                chunk_id=p.payload["chunk_id"],
                document_id=p.payload["document_id"],
                score=float(p.score),
            )
            for p in found
        ]

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks (none in a layout-2 index)."""
        if not chunk_ids or self._layout < 3:
            return {}
        ids = [point_uuid(c) for c in dict.fromkeys(chunk_ids)]
        records = await asyncio.to_thread(self._run, lambda s: s.retrieve(ids, True, [_SENTENCES]))
        found: dict[ChunkId, list[SentenceVector]] = {}
        for record in records:
            payload = record.payload or {}
            if not access.can_read(payload.get("tenant", ""), payload.get("groups", [])):
                continue
            vectors = (record.vector or {}).get(_SENTENCES) or []
            spans = payload.get("sentence_spans") or []
            if vectors and len(vectors) == len(spans):
                found[ChunkId(payload["chunk_id"])] = [
                    SentenceVector(start=a, end=b, vector=tuple(v))
                    for (a, b), v in zip(spans, vectors, strict=True)
                ]
        return found

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents."""
        if not document_ids:
            return
        flt = qe.Filter(
            must=[
                qe.FieldCondition("document_id", match=qe.MatchAny([str(d) for d in document_ids]))
            ]
        )
        await asyncio.to_thread(
            self._run, lambda s: s.update(qe.UpdateOperation.delete_points_by_filter(flt))
        )

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        request = qe.CountRequest(exact=True, filter=_filter(access, None))
        return int(await asyncio.to_thread(self._run, lambda s: s.count(request)))

    async def close(self) -> None:
        """Flush to disk and release the shard."""
        if self._shard is None:
            return

        def _close() -> None:
            with self._lock:
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


def _vectors(point: VectorPoint, *, sentences: bool) -> dict[str, Any]:
    vectors: dict[str, Any] = {_VECTOR: list(point.vector)}
    if point.sparse is not None and point.sparse.indices:
        vectors[_SPARSE] = qe.SparseVector(list(point.sparse.indices), list(point.sparse.values))
    if sentences and point.sentences:
        vectors[_SENTENCES] = [list(s.vector) for s in point.sentences]
    return vectors


def _spans(point: VectorPoint) -> list[list[int]]:
    return [[s.start, s.end] for s in point.sentences]


def _filter(access: Access, document_ids: Sequence[DocumentId] | None) -> Any:
    must: list[Any] = []
    if not access.is_admin:
        must.append(qe.FieldCondition("tenant", match=qe.MatchValue(access.tenant or "")))
        must.append(qe.FieldCondition("groups", match=qe.MatchAny(access.readable_groups())))
    if document_ids is not None:
        must.append(
            qe.FieldCondition("document_id", match=qe.MatchAny([str(d) for d in document_ids]))
        )
    return qe.Filter(must=must) if must else None
