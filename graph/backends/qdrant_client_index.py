"""Vector index on a Qdrant server (or cluster) through ``qdrant-client``.

``location=":memory:"`` or ``path=...`` run qdrant-client's local mode, which speaks the
same API as the server (brute force, for tests and small corpora).

Each tenant's points live in a collection of their own, named ``<collection>-t-<key>``
(see ``partition_key``), made on the tenant's first write, so that the sparse vectors' IDF
is computed over that tenant's documents only. A collection named ``<collection>`` itself
is the layout of earlier versions (every tenant in one collection): opening the index
copies each of its points into its tenant's collection and deletes it last, so an
interrupted migration is simply run again by the next open.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
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

__all__ = ["QdrantClientVectorIndex"]

_SCROLL_BATCH = 256

_log = logging.getLogger(__name__)


class QdrantClientVectorIndex:
    """Chunk vectors in one Qdrant collection per tenant, with keyword payload indexes.

    A tenant's reads touch only its own collection; admin access reads every one of this
    index's collections and merges. Create it with :meth:`open`; the constructor does no I/O.
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
        self._partition_name = re.compile(re.escape(collection) + r"-t-[0-9a-f]{32}")
        self._known: set[str] = set()  # partition collections seen to exist
        self._creating = asyncio.Lock()

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
        """Connect, check this index's collections and migrate a shared one."""
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
        """Vector size of the index."""
        return self._dimension

    async def _start(self) -> None:
        client: AsyncQdrantClient | None = None
        try:
            with self._errors("open", opening=True):
                # Local mode reads and locks its directory here already.
                client = AsyncQdrantClient(
                    **{k: v for k, v in self._client_args.items() if v is not None}
                )
                self._client = client
                for name in await self._partitions():
                    self._check(name, await client.get_collection(name))
                if await client.collection_exists(self._collection):
                    await self._migrate(client)
        except BaseException:
            self._client = None
            if client is not None:
                await client.close()
            raise
        self._client = client

    def _check(self, name: str, info: models.CollectionInfo) -> None:
        """Refuse a collection this index cannot use."""
        vectors = info.config.params.vectors
        size = vectors[VECTOR].size if isinstance(vectors, dict) and VECTOR in vectors else None
        sparse = info.config.params.sparse_vectors or {}
        if SPARSE not in sparse:
            raise StoreUnavailableError(
                f"Qdrant collection {name!r} at {self._where} has no "
                f"{SPARSE!r} sparse vectors (made by another Threadline version); "
                "use another collection name"
            )
        if size != self._dimension:
            raise StoreUnavailableError(
                f"Qdrant collection {name!r} at {self._where} has vector "
                f"size {size}, the embedder makes {self._dimension}; use another "
                "collection name"
            )

    async def _partitions(self) -> list[str]:
        """Names of this index's tenant collections, as the server lists them now."""
        client = self._require()
        listed = await client.get_collections()
        names = sorted(c.name for c in listed.collections if self._partition_name.fullmatch(c.name))
        self._known.update(names)
        return names

    def _name(self, tenant: str) -> str:
        return f"{self._collection}-t-{partition_key(tenant)}"

    async def _migrate(self, client: AsyncQdrantClient) -> None:
        """Copy every point of the shared collection into its tenant's, then drop it."""
        self._check(self._collection, await client.get_collection(self._collection))
        _log.info(
            "moving the points of Qdrant collection %r at %s into one collection per tenant",
            self._collection,
            self._where,
        )
        offset: Any = None
        while True:
            records, offset = await client.scroll(
                self._collection,
                limit=_SCROLL_BATCH,
                offset=offset,
                with_payload=True,
                with_vectors=True,
            )
            by_tenant: dict[str, list[models.PointStruct]] = defaultdict(list)
            for record in records:
                vectors = record.vector if isinstance(record.vector, dict) else {}
                by_tenant[tenant_of(record.payload)].append(
                    models.PointStruct(id=record.id, vector=vectors, payload=record.payload)
                )
            for tenant, batch in by_tenant.items():
                name = await self._ensure(tenant)
                await client.upsert(name, batch, wait=True)
            if offset is None:
                break
        # Last: until this succeeds, the next open runs the (idempotent) copy again.
        await client.delete_collection(self._collection)

    async def _ensure(self, tenant: str) -> str:
        """The collection of ``tenant``, made (with its payload indexes) if missing."""
        name = self._name(tenant)
        if name in self._known:
            return name
        client = self._require()
        async with self._creating:
            if name not in self._known and not await client.collection_exists(name):
                try:
                    await self._create(client, name)
                except Exception:
                    # Another process sharing the server may have made it first.
                    if not await client.collection_exists(name):
                        raise
            self._known.add(name)
        return name

    async def _create(self, client: AsyncQdrantClient, name: str) -> None:
        await client.create_collection(
            name,
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
            await client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)

    def _require(self) -> AsyncQdrantClient:
        if self._client is None:
            raise StoreError(
                "the vector index is closed; open it with QdrantClientVectorIndex.open"
            )
        return self._client

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points, keyed by chunk id, in batches, each in its tenant's
        collection."""
        client = self._require()
        for point in points:
            point.check_dimension(self._dimension)
        by_tenant: dict[str, list[models.PointStruct]] = defaultdict(list)
        for p in points:
            by_tenant[p.tenant].append(
                models.PointStruct(
                    id=point_uuid(p.chunk_id),
                    vector=point_vectors(p, sentences=True, sparse=_sparse),
                    payload=point_payload(p, sentences=True),
                )
            )
        with self._errors("upsert"):
            for tenant, structs in by_tenant.items():
                name = await self._ensure(tenant)
                for i in range(0, len(structs), self._batch_size):
                    await client.upsert(name, structs[i : i + self._batch_size], wait=True)

    async def _readable(self, access: Access) -> list[str]:
        """The collections ``access`` reads: its tenant's (if made yet), or every one."""
        if access.is_admin:
            return await self._partitions()
        name = self._name(access.tenant or "")
        if name not in self._known:
            if not await self._require().collection_exists(name):
                return []
            self._known.add(name)
        return [name]

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
        """Best readable chunks by BM25 score, IDF over the tenant's own collection."""
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
        found: list[list[VectorHit]] = []
        with self._errors("search"):
            for name in await self._readable(access):
                response = await client.query_points(
                    name,
                    query=query,
                    using=using,
                    query_filter=_filter(read_matches(access, document_ids)),
                    limit=limit,
                    with_payload=HIT_FIELDS,
                )
                found.append([stored_hit(p.payload, p.score) for p in response.points])
        return merge_hits(found, limit)

    async def sentences(
        self, chunk_ids: Sequence[ChunkId], access: Access
    ) -> dict[ChunkId, list[SentenceVector]]:
        """Stored sentence vectors of readable chunks, read by point id."""
        if not chunk_ids:
            return {}
        client = self._require()
        ids = [point_uuid(c) for c in dict.fromkeys(chunk_ids)]
        records: list[models.Record] = []
        with self._errors("retrieve"):
            for name in await self._readable(access):
                records += await client.retrieve(
                    name, ids, with_payload=True, with_vectors=[SENTENCES]
                )
        return stored_sentences(((r.payload, r.vector) for r in records), access)

    async def delete_documents(self, document_ids: Sequence[DocumentId]) -> None:
        """Remove every point of these documents, whichever tenant's collection holds them."""
        if not document_ids:
            return
        client = self._require()
        selector = models.FilterSelector(filter=_filter([document_match(document_ids)]))
        with self._errors("delete"):
            for name in await self._partitions():
                await client.delete(name, points_selector=selector, wait=True)

    async def count(self, access: Access) -> int:
        """Number of readable points."""
        client = self._require()
        total = 0
        with self._errors("count"):
            for name in await self._readable(access):
                result = await client.count(
                    name, count_filter=_filter(read_matches(access)), exact=True
                )
                total += int(result.count)
        return total

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
