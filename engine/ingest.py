"""The ingestion pipeline: source documents to graph facts and chunk vectors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from engine.journal import IngestJournal
from engine.readers import SourceDocument
from extractors import (
    Bm25Encoder,
    Embedder,
    EntityResolver,
    SentenceChunker,
    SpacyEntityExtractor,
    split_sentences,
)
from extractors.model_extractor import ExtractionStats, ModelExtractor
from extractors.types import ChunkExtraction
from graph import (
    PUBLIC_GROUP,
    Access,
    Chunk,
    Document,
    DocumentGraph,
    DocumentId,
    GraphStore,
    InputError,
    SentenceVector,
    ThreadlineError,
    VectorIndex,
    VectorPoint,
    content_hash,
    document_id,
)

__all__ = ["IngestReport", "Ingestor", "Progress"]

logger = logging.getLogger(__name__)

#: Called with (documents done, documents to do).
Progress = Callable[[int, int], None]


class IngestReport(BaseModel):
    """What one ingest call did."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    documents_read: int
    added: int
    replaced: int
    unchanged: int
    chunks: int
    mentions: int
    relations: int
    vectors: int
    seconds: float
    document_ids: tuple[DocumentId, ...]
    model_chunks: int = 0
    model_cache_hits: int = 0
    model_dropped: int = 0
    model_failed: int = 0


@dataclass(frozen=True, slots=True)
class _Planned:
    document: Document
    replaces: tuple[DocumentId, ...]


class Ingestor:
    """Chunks, extracts, resolves, embeds and writes documents in batches.

    Each batch is written vectors-first, graph-second, under the journal, so a crash
    leaves no half-document visible (see :mod:`engine.journal`).
    """

    def __init__(
        self,
        *,
        graph: GraphStore,
        vectors: VectorIndex,
        journal: IngestJournal,
        chunker: SentenceChunker,
        extractor: SpacyEntityExtractor,
        resolver: EntityResolver,
        embedder: Embedder,
        sparse: Bm25Encoder,
        batch_documents: int = 32,
        opening_sentences: int = 3,
        model_extractor: ModelExtractor | None = None,
        id_key: bytes | None = None,
    ) -> None:
        self._graph = graph
        self._id_key = id_key
        self._vectors = vectors
        self._journal = journal
        self._chunker = chunker
        self._extractor = extractor
        self._resolver = resolver
        self._embedder = embedder
        self._sparse = sparse
        self._batch = batch_documents
        self._opening = opening_sentences
        self._model = model_extractor
        # Scopes whose learned names went stale (deletes) while an ingest held the lock.
        self._stale: set[str] = set()
        self._lock = asyncio.Lock()

    async def ingest(
        self,
        sources: Sequence[SourceDocument],
        *,
        tenant: str,
        groups: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest documents for a tenant; unchanged ones are skipped, changed ones replaced."""
        started = time.perf_counter()
        before = dataclasses.replace(self._model.stats) if self._model else None
        stored_groups = _stored_groups(groups)
        async with self._lock:
            plan, unchanged, ids = await self._plan(sources, tenant, stored_groups)
            totals = {"chunks": 0, "mentions": 0, "relations": 0, "vectors": 0}
            if plan:
                await self._learn([p.document for p in plan])
            done = 0
            if progress:
                progress(0, len(plan))
            batches = [plan[i : i + self._batch] for i in range(0, len(plan), self._batch)]
            # Extraction of the next batch (spaCy, one core) overlaps with embedding and
            # writing the current one.
            upcoming = self._start_extract(batches, 0)
            try:
                for index, batch in enumerate(batches):
                    graphs = await upcoming if upcoming is not None else []
                    upcoming = self._start_extract(batches, index + 1)
                    counts = await self._write_batch(graphs, batch)
                    for key, value in counts.items():
                        totals[key] += value
                    done += len(batch)
                    if progress:
                        progress(done, len(plan))
            finally:
                if upcoming is not None:
                    upcoming.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ThreadlineError):
                        await upcoming
                if any(p.replaces for p in plan):
                    # Replaced versions took their names with them: relearn next time.
                    self._resolver.forget()
                for scope in self._stale:
                    self._resolver.forget(scope)
                self._stale.clear()
        return IngestReport(
            documents_read=len(sources),
            added=sum(1 for p in plan if not p.replaces),
            replaced=sum(1 for p in plan if p.replaces),
            unchanged=unchanged,
            seconds=round(time.perf_counter() - started, 3),
            document_ids=tuple(ids),
            **totals,
            **self._model_counts(before),
        )

    def _model_counts(self, before: ExtractionStats | None) -> dict[str, int]:
        if self._model is None or before is None:
            return {}
        now = self._model.stats
        return {
            "model_chunks": now.chunks - before.chunks,
            "model_cache_hits": now.cache_hits - before.cache_hits,
            "model_dropped": now.dropped - before.dropped,
            "model_failed": now.failed - before.failed,
        }

    async def _plan(
        self, sources: Sequence[SourceDocument], tenant: str, groups: tuple[str, ...]
    ) -> tuple[list[_Planned], int, list[DocumentId]]:
        latest: dict[str, SourceDocument] = {}
        for src in sources:
            if len(src.source) > 2000:
                raise InputError(
                    "the document id is longer than 2000 characters", source=src.origin
                )
            latest[src.source] = src  # the last record of a source wins
        plan: list[_Planned] = []
        unchanged = 0
        ids: list[DocumentId] = []
        # Reading as the scope itself keeps the lookup inside the tenant (and small).
        scope = Access(tenant=tenant, groups=frozenset(g for g in groups if g != PUBLIC_GROUP))
        for src in latest.values():
            digest = content_hash(src.text, self._id_key)
            doc_id = document_id(tenant, src.source, digest + "|" + ",".join(groups))
            ids.append(doc_id)
            # The same source is a document of the same tenant with the same access list:
            # a write never replaces, nor reveals the versions of, one in another scope.
            existing = [
                d
                for d in await self._graph.documents(scope, source=src.source)
                if d.tenant == tenant and set(d.groups) == set(groups)
            ]
            if any(d.id == doc_id for d in existing):
                unchanged += 1
                continue
            version = max((d.version for d in existing), default=0) + 1
            doc = Document(
                id=doc_id,
                source=src.source,
                title=src.title or src.source,
                version=version,
                tenant=tenant,
                groups=groups,
                content_hash=digest,
                text=src.text,
                sections=src.sections,
            )
            plan.append(_Planned(doc, tuple(d.id for d in existing)))
        return plan, unchanged, ids

    def forget(self, documents: Sequence[Document]) -> None:
        """Drop the learned names of these documents' scopes (after they were deleted).

        The scopes are relearned from the store on the next ingest into them, so names
        only the deleted documents stated are not kept in memory.
        """
        scopes = {EntityResolver.scope_of(d) for d in documents}
        if self._lock.locked():
            self._stale |= scopes
            return
        for scope in scopes:
            self._resolver.forget(scope)

    async def _learn(self, documents: Sequence[Document]) -> None:
        """Load the stored entities of each document's scope (and of no other)."""
        for doc in documents:
            scope = EntityResolver.scope_of(doc)
            if scope in self._stale:
                self._resolver.forget(scope)
                self._stale.discard(scope)
            if self._resolver.knows(scope):
                continue
            # Exactly the documents of this scope's readers; ``learn`` keeps only the
            # entities whose id belongs to the scope itself.
            access = Access(tenant=doc.tenant, groups=frozenset(doc.access_groups))
            known = await self._graph.search_entities("", access, limit=10_000_000)
            self._resolver.learn(scope, known)

    def _start_extract(
        self, batches: list[list[_Planned]], index: int
    ) -> asyncio.Future[list[DocumentGraph]] | None:
        if index >= len(batches):
            return None
        return asyncio.ensure_future(self._extract(batches[index]))

    async def _write_batch(
        self, graphs: list[DocumentGraph], batch: list[_Planned]
    ) -> dict[str, int]:
        texts = [c.text for g in graphs for c in g.chunks]
        # A page's opening sentences (first chunk of each document) share the embedding
        # call with the chunks.
        openings = {
            c.id: list(split_sentences(c.text))[: self._opening]
            for g in graphs
            for c in g.chunks
            if c.index == 0 and self._opening
        }
        texts += [c.text[a:b] for g in graphs for c in g.chunks for a, b in openings.get(c.id, [])]
        matrix = await self._embedder.embed(texts)
        points: list[VectorPoint] = []
        row, sentence_row = 0, sum(len(g.chunks) for g in graphs)
        for graph in graphs:
            doc = graph.document
            for chunk in graph.chunks:
                sentences = []
                for a, b in openings.get(chunk.id, []):
                    vector = tuple(float(x) for x in matrix[sentence_row])
                    sentences.append(SentenceVector(start=a, end=b, vector=vector))
                    sentence_row += 1
                points.append(
                    VectorPoint(
                        chunk_id=chunk.id,
                        document_id=doc.id,
                        tenant=doc.tenant,
                        groups=doc.groups,
                        vector=tuple(float(x) for x in matrix[row]),
                        sparse=self._sparse.encode_document(chunk.text),
                        sentences=tuple(sentences),
                    )
                )
                row += 1
        new_ids = [g.document.id for g in graphs]
        replaced = [old for p in batch for old in p.replaces]
        await self._journal.add([*new_ids, *replaced])
        await self._vectors.upsert(points)
        await self._graph.upsert(graphs, replaces=replaced)
        await self._vectors.delete_documents(replaced)
        await self._journal.clear([*new_ids, *replaced])
        return {
            "chunks": sum(len(g.chunks) for g in graphs),
            "mentions": sum(len(g.mentions) for g in graphs),
            "relations": sum(len(g.relations) for g in graphs),
            "vectors": len(points),
        }

    async def _extract(self, batch: list[_Planned]) -> list[DocumentGraph]:
        """A batch's extraction: chunking and spaCy (worker thread), the model's items
        when configured (async, cached), then entity resolution (worker thread)."""
        chunked, extractions = await asyncio.to_thread(self._spacy, batch)
        if self._model is not None:
            extractions = await self._model.extend(extractions)
        items = []
        pos = 0
        for doc, chunks in chunked:
            items.append((doc, extractions[pos : pos + len(chunks)]))
            pos += len(chunks)
        return await asyncio.to_thread(self._resolver.resolve_batch, items)

    def _spacy(
        self, batch: list[_Planned]
    ) -> tuple[list[tuple[Document, list[Chunk]]], list[ChunkExtraction]]:
        chunked = [(p.document, self._chunker.chunk(p.document.id, p.document.text)) for p in batch]
        flat = [c for _, chunks in chunked for c in chunks]
        titles = {doc.id: doc.title for doc, _ in chunked}
        return chunked, self._extractor.extract(flat, [titles[c.document_id] for c in flat])


def _stored_groups(groups: Sequence[str]) -> tuple[str, ...]:
    cleaned = sorted({g.strip() for g in groups})
    for g in cleaned:
        if not g or g == PUBLIC_GROUP or any(ch.isspace() for ch in g):
            raise InputError(f"invalid access group {g!r}: use names without spaces, not '*'")
    return tuple(cleaned) or (PUBLIC_GROUP,)


async def repair(journal: IngestJournal, graph: GraphStore, vectors: VectorIndex) -> int:
    """Finish what an interrupted write left: drop vectors of documents the graph lacks."""
    pending = await journal.pending()
    if not pending:
        return 0
    present = {d.id for d in await graph.documents(Access.admin(), ids=pending, limit=len(pending))}
    orphans = [d for d in pending if d not in present]
    await vectors.delete_documents(orphans)
    await journal.clear(pending)
    logger.warning("repaired an interrupted write: %s document(s) rolled back", len(orphans))
    return len(orphans)
