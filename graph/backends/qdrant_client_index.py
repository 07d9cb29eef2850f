"""Vector index on a Qdrant server (or cluster) through ``qdrant-client``.

``location=":memory:"`` or ``path=...`` run qdrant-client's local mode, which speaks the
same API as the server (brute force, for tests and small corpora).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from qdrant_client import AsyncQdrantClient, models

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

__all__ = ["QdrantClientVectorIndex"]


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
        self._errors = QdrantErrors(self._where, remote=url is not None)
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
        client: AsyncQdrantClient | None = None
        try:
            with self._errors("open", opening=True):
                # Local mode reads and locks its directory here already.
                client = AsyncQdrantClient(
                    **{k: v for k, v in self._client_args.items() if v is not None}
                )
                if await client.collection_exists(self._collection):
                    self._check(await client.get_collection(self._collection))
                else:
                    await self._create(client)
        except BaseException:
            if client is not None:
                await client.close()
            raise
        self._client = client

    def _check(self, info: models.CollectionInfo) -> None:
        """Refuse a collection this index cannot use; note whether it stores sentences."""
        vectors = info.config.params.vectors
        size = vectors[VECTOR].size if isinstance(vectors, dict) and VECTOR in vectors else None
        self._has_sentences = isinstance(vectors, dict) and SENTENCES in vectors
        sparse = info.config.params.sparse_vectors or {}
        if SPARSE not in sparse:
            raise StoreUnavailableError(
                f"Qdrant collection {self._collection!r} at {self._where} has no "
                f"{SPARSE!r} sparse vectors (made by another Threadline version); "
                "use another collection name"
            )
        if size != self._dimension:
            raise StoreUnavailableError(
                f"Qdrant collection {self._collection!r} at {self._where} has vector "
                f"size {size}, the embedder makes {self._dimension}; use another "
                "collection name"
            )

    async def _create(self, client: AsyncQdrantClient) -> None:
        await client.create_collection(
            self._collection,
            vectors_config={
                VECTOR: models.VectorParams(size=self._dimension, distance=models.Distance.COSINE),
                # Read by id only, never searched: no HNSW graph for them.
                SENTENCES: models.VectorParams(
                    size=self._dimension,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    hnsw_config=models.HnswConfigDiff(m=0),
                ),
            },
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        # Local mode filters without indexes (and warns about them); servers need them.
        for field in KEYWORD_FIELDS if self._client_args["url"] else ():
            await client.create_payload_index(
                self._collection, field, models.PayloadSchemaType.KEYWORD
            )

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
                vector=point_vectors(p, sentences=keep, sparse=_sparse),
                payload=point_payload(p, sentences=keep),
            )
            for p in points
        ]
        with self._errors("upsert"):
            for i in range(0, len(structs), self._batch_size):
                await client.upsert(self._collection, structs[i : i + self._batch_size], wait=True)

    async def search(
        self,
        vector: Sequence[float],
        access: Access,
        *,
        limit: int = 10,
        document_ids: Sequence[DocumentId] | None = None,
    ) -> list[VectorHit]:
        """Nearest readable chunks, filtered inside the Qdrant query."""
        return await self._query(list(vector), VECTOR, access, limit, document_ids)

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
        query = _sparse(list(sparse.indices), list(sparse.values))
        return await self._query(query, SPARSE, access, limit, document_ids)

    async def _query(
        self,
        query: list[float] | models.SparseVector,
        using: str,
        access: Access,
        limit: int,
        document_ids: Sequence[DocumentId] | None,
    ) -> list[VectorHit]:
        client = self._require()
        with self._errors("search"):
            response = await client.query_points(
                self._collection,
                query=query,
                using=using,
                query_filter=_filter(read_matches(access, document_ids)),
                limit=limit,
                with_payload=HIT_FIELDS,
            )
        return [stored_hit(p.payload, p.score) for p in response.points]

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks, read by point id."""
        if not chunk_ids or not self._has_sentences:
            return {}
        client = self._require()
        with self._errors("retrieve"):
            records = await client.retrieve(
                self._collection,
                [point_uuid(c) for c in dict.fromkeys(chunk_ids)],
                with_payload=True,
                with_vectors=[SENTENCES],
            )
        return stored_sentences(((r.payload, r.vector) for r in records), access)

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents."""
        if not document_ids:
            return
        client = self._require()
        selector = models.FilterSelector(filter=_filter([document_match(document_ids)]))
        with self._errors("delete"):
            await client.delete(self._collection, points_selector=selector, wait=True)

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        client = self._require()
        with self._errors("count"):
            result = await client.count(
                self._collection, count_filter=_filter(read_matches(access)), exact=True
            )
        return int(result.count)

    async def close(self) -> None:
        """Close the client."""
        if self._client is not None:
            client, self._client = self._client, None
            with self._errors("close"):
                await client.close()


def _sparse(indices: list[int], values: list[float]) -> models.SparseVector:
    return models.SparseVector(indices=indices, values=values)


def _filter(matches: Sequence[FieldMatch]) -> models.Filter | None:
    """The qdrant-client filter requiring every match (None when there is none)."""
    if not matches:
        return None
    return models.Filter(
        must=[
            models.FieldCondition(key=m.key, match=models.MatchAny(any=list(m.values)))
            for m in matches
        ]
    )
