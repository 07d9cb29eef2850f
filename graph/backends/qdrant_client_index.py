"""Vector index on a Qdrant server (or cluster) through ``qdrant-client``.

``location=":memory:"`` or ``path=...`` run qdrant-client's local mode, which speaks the
same API as the server (brute force, for tests and small corpora).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from graph.errors import StoreError, StoreUnavailableError
from graph.ids import ChunkId, DocumentId, point_uuid
from graph.models import Access
from graph.protocols import SentenceVector, SparseVector, VectorHit, VectorPoint

__all__ = ["QdrantClientVectorIndex"]

_VECTOR = "chunk"
_SPARSE = "bm25"
_SENTENCES = "sentences"  # multivector: the chunk's stored sentence vectors
_KEYWORD_FIELDS = ("tenant", "groups", "document_id")
_CLIENT_ERRORS = (UnexpectedResponse, ResponseHandlingException, OSError, ValueError)


class QdrantClientVectorIndex:
    """Chunk vectors in one Qdrant collection, with keyword payload indexes.

    Create it with :meth:`open`; the constructor does no I/O.
    """

    def __init__(
        self,
        *,
        collection: str,
        dimension: int,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        location: str | None = None,
        batch_size: int = 256,
    ) -> None:
        self._collection = collection
        self._dimension = dimension
        self._where = url or path or location or ":memory:"
        self._client_args: dict[str, Any] = {
            "url": url,
            "api_key": api_key,
            "path": path,
            "location": location if (url is None and path is None) else None,
        }
        if url is None and path is None and location is None:
            self._client_args["location"] = ":memory:"
        self._batch_size = batch_size
        self._client: AsyncQdrantClient | None = None
        # Collections made before sentence vectors existed work without them.
        self._has_sentences = True

    @classmethod
    async def open(
        cls,
        *,
        collection: str,
        dimension: int,
        url: str | None = None,
        api_key: str | None = None,
        path: str | None = None,
        location: str | None = None,
    ) -> Self:
        """Connect and create the collection and its payload indexes if missing."""
        index = cls(
            collection=collection,
            dimension=dimension,
            url=url,
            api_key=api_key,
            path=path,
            location=location,
        )
        await index._start()
        return index

    @property
    def dimension(self) -> int:
        """Vector size of the collection."""
        return self._dimension

    async def _start(self) -> None:
        client = AsyncQdrantClient(**{k: v for k, v in self._client_args.items() if v is not None})
        try:
            if await client.collection_exists(self._collection):
                info = await client.get_collection(self._collection)
                vectors = info.config.params.vectors
                size = vectors[_VECTOR].size if isinstance(vectors, dict) else None
                self._has_sentences = isinstance(vectors, dict) and _SENTENCES in vectors
                sparse = info.config.params.sparse_vectors or {}
                if _SPARSE not in sparse:
                    raise StoreUnavailableError(
                        f"Qdrant collection {self._collection!r} at {self._where} has no "
                        f"{_SPARSE!r} sparse vectors (made by another Threadline version); "
                        "use another collection name"
                    )
                if size != self._dimension:
                    raise StoreUnavailableError(
                        f"Qdrant collection {self._collection!r} at {self._where} has vector "
                        f"size {size}, the embedder makes {self._dimension}; use another "
                        "collection name"
                    )
            else:
                await client.create_collection(
                    self._collection,
                    vectors_config={
                        _VECTOR: models.VectorParams(
                            size=self._dimension, distance=models.Distance.COSINE
                        ),
                        # Read by id only, never searched: no HNSW graph for them.
                        _SENTENCES: models.VectorParams(
                            size=self._dimension,
                            distance=models.Distance.COSINE,
                            multivector_config=models.MultiVectorConfig(
                                comparator=models.MultiVectorComparator.MAX_SIM
                            ),
                            hnsw_config=models.HnswConfigDiff(m=0),
                        ),
                    },
                    sparse_vectors_config={
                        _SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
                # Local mode filters without indexes (and warns about them); servers need them.
                for field in _KEYWORD_FIELDS if self._client_args["url"] else ():
                    await client.create_payload_index(
                        self._collection, field, models.PayloadSchemaType.KEYWORD
                    )
        except _CLIENT_ERRORS as exc:
            await client.close()
            raise StoreUnavailableError(
                f"cannot reach Qdrant at {self._where}: {exc}; check the URL and API key"
            ) from exc
        except StoreUnavailableError:
            await client.close()
            raise
        self._client = client

    def _require(self) -> AsyncQdrantClient:
        if self._client is None:
            raise StoreError(
                "the vector index is closed; open it with QdrantClientVectorIndex.open"
            )
        return self._client

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points, keyed by chunk id, in batches."""
        client = self._require()
        for point in points:
            point.check_dimension(self._dimension)
        keep = self._has_sentences
        structs = [
            models.PointStruct(
                id=point_uuid(p.chunk_id),
                vector=_vectors(p, sentences=keep),
                payload={
                    "chunk_id": p.chunk_id,
                    "document_id": p.document_id,
                    "tenant": p.tenant,
                    "groups": list(p.groups),
                    **(
                        {"sentence_spans": [[x.start, x.end] for x in p.sentences]}
                        if keep and p.sentences
                        else {}
                    ),
                },
            )
            for p in points
        ]
        try:
            for i in range(0, len(structs), self._batch_size):
                await client.upsert(self._collection, structs[i : i + self._batch_size], wait=True)
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"Qdrant upsert at {self._where} failed: {exc}") from exc

    async def search(
        self,
        vector: Sequence[float],
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Nearest readable chunks, filtered inside the Qdrant query."""
        return await self._query(list(vector), _VECTOR, access, limit, document_ids)

    async def search_sparse(
        self,
        sparse: SparseVector,
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Best readable chunks by BM25 score, filtered inside the Qdrant query."""
        if not sparse.indices:
            return []
        query = models.SparseVector(indices=list(sparse.indices), values=list(sparse.values))
        return await self._query(query, _SPARSE, access, limit, document_ids)

    async def _query(
        self,
        query: list[float] | models.SparseVector,
        using: str,
        access: Access,
        limit: int,
        document_ids: Sequence[DocumentId] | None,
    ) -> list[VectorHit]:
        client = self._require()
        try:
            response = await client.query_points(
                self._collection,
                query=query,
                using=using,
                query_filter=_filter(access, document_ids),
                limit=limit,
                with_payload=["chunk_id", "document_id"],
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"Qdrant search at {self._where} failed: {exc}") from exc
        return [
            VectorHit(
                chunk_id=(p.payload or {})["chunk_id"],
                document_id=(p.payload or {})["document_id"],
                score=float(p.score),
            )
            for p in response.points
        ]

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks, read by point id."""
        if not chunk_ids or not self._has_sentences:
            return {}
        client = self._require()
        try:
            records = await client.retrieve(
                self._collection,
                [point_uuid(c) for c in dict.fromkeys(chunk_ids)],
                with_payload=True,
                with_vectors=[_SENTENCES],
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"Qdrant retrieve at {self._where} failed: {exc}") from exc
        found: dict[ChunkId, list[SentenceVector]] = {}
        for record in records:
            payload = record.payload or {}
            if not access.can_read(payload.get("tenant", ""), payload.get("groups", [])):
                continue
            vectors = record.vector.get(_SENTENCES) if isinstance(record.vector, dict) else None
            spans = payload.get("sentence_spans") or []
            if isinstance(vectors, list) and vectors and len(vectors) == len(spans):
                found[ChunkId(payload["chunk_id"])] = [
                    SentenceVector(start=a, end=b, vector=tuple(v))  # type: ignore[arg-type]
                    for (a, b), v in zip(spans, vectors, strict=True)
                ]
        return found

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents."""
        if not document_ids:
            return
        client = self._require()
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="document_id", match=models.MatchAny(any=list(document_ids))
                    )
                ]
            )
        )
        try:
            await client.delete(self._collection, points_selector=selector, wait=True)
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"Qdrant delete at {self._where} failed: {exc}") from exc

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        client = self._require()
        try:
            result = await client.count(
                self._collection, count_filter=_filter(access, None), exact=True
            )
        except _CLIENT_ERRORS as exc:
            raise StoreError(f"Qdrant count at {self._where} failed: {exc}") from exc
        return int(result.count)

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _vectors(point: VectorPoint, *, sentences: bool) -> dict[str, Any]:
    vectors: dict[str, Any] = {_VECTOR: list(point.vector)}
    if point.sparse is not None and point.sparse.indices:
        vectors[_SPARSE] = models.SparseVector(
            indices=list(point.sparse.indices), values=list(point.sparse.values)
        )
    if sentences and point.sentences:
        vectors[_SENTENCES] = [list(s.vector) for s in point.sentences]
    return vectors


def _filter(access: Access, document_ids: Sequence[DocumentId] | None) -> models.Filter | None:
    must: list[models.Condition] = []
    if not access.is_admin:
        must.append(
            models.FieldCondition(key="tenant", match=models.MatchValue(value=access.tenant or ""))
        )
        must.append(
            models.FieldCondition(key="groups", match=models.MatchAny(any=access.readable_groups()))
        )
    if document_ids is not None:
        must.append(
            models.FieldCondition(key="document_id", match=models.MatchAny(any=list(document_ids)))
        )
    return models.Filter(must=must) if must else None
