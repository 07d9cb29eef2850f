"""The ingestion pipeline: source documents to graph facts and chunk vectors.

A batch of planned documents goes through two halves:

- the worker stage, :class:`BatchStage`: one pure function of the batch that chunks it,
  extracts with spaCy (with the chunk tags: personal data, text aimed at a model), embeds
  the chunks and each page's opening sentences, and encodes BM25 vectors. A
  :class:`BatchRunner` runs it: :class:`LocalRunner` in worker threads of this process
  (the default), :class:`engine.cluster.RayRunner` on the workers of a Ray cluster;
- the driver, here: model extraction when configured, entity resolution (in batch order,
  since each batch resolves against the names of every earlier one) and the journalled
  writes. Batches are consumed in order whatever ran them, so the result does not depend
  on where the stage ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from engine.allocator import trim
from engine.journal import IngestJournal
from engine.readers import SourceDocument
from extractors import (
    Bm25Encoder,
    Embedder,
    EntityResolver,
    SentenceChunker,
    SentenceTransformerEmbedder,
    SpacyEntityExtractor,
    SpanEmbedder,
    packaged_minilm_path,
    spans_embedded_alone,
    split_sentences,
)
from extractors.model_extractor import ExtractionStats, ModelExtractor
from extractors.privacy import PiiDetector
from extractors.types import ChunkExtraction
from graph import (
    PUBLIC_GROUP,
    Access,
    Document,
    DocumentGraph,
    DocumentId,
    GraphStore,
    InputError,
    SentenceVector,
    VectorIndex,
    VectorPoint,
    content_hash,
    document_id,
)

if TYPE_CHECKING:
    from engine.settings import Settings

__all__ = [
    "BatchRunner",
    "BatchStage",
    "BatchWork",
    "IngestReport",
    "Ingestor",
    "LocalRunner",
    "Progress",
    "embedder_for",
    "extractor_for",
    "pii_detector_for",
    "stage_for",
]

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


class BatchWork(BaseModel):
    """What the worker stage made of one batch, in the batch's order: per document, each
    chunk's spaCy extraction (the chunk carries its tags); per chunk, its vector point."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    extractions: tuple[tuple[ChunkExtraction, ...], ...]
    points: tuple[VectorPoint, ...]


@dataclass(frozen=True, slots=True)
class BatchStage:
    """The per-batch worker stage: chunking, spaCy extraction with tags, dense embeddings
    of the chunks and of each page's opening sentences, BM25 vectors.

    A pure function of the batch (given the models): the same documents give the same
    :class:`BatchWork` in any process, so it runs in a thread here or on a Ray worker.
    """

    chunker: SentenceChunker
    extractor: SpacyEntityExtractor
    embedder: Embedder
    sparse: Bm25Encoder
    opening_sentences: int = 3
    pooled_sentences: bool = False

    def __call__(self, documents: Sequence[Document]) -> BatchWork:
        """The whole stage for one batch (CPU-bound; call from a worker thread)."""
        return self.embed(documents, self.extract(documents))

    def load(self) -> None:
        """Load the spaCy pipeline and the embedder (once per process)."""
        self.extractor.load()
        self.embedder.embed_sync(["warm-up"])

    def extract(self, documents: Sequence[Document]) -> list[list[ChunkExtraction]]:
        """Chunks and spaCy extractions (with tags), per document."""
        chunked = [self.chunker.chunk(d.id, d.text) for d in documents]
        flat = [c for chunks in chunked for c in chunks]
        titles = {d.id: d.title for d in documents}
        found = self.extractor.extract(flat, [titles[c.document_id] for c in flat])
        return _regroup(found, [len(chunks) for chunks in chunked])

    def embed(
        self, documents: Sequence[Document], extractions: Sequence[Sequence[ChunkExtraction]]
    ) -> BatchWork:
        """Vector points of the extracted chunks, with each page's opening sentences (first
        chunk of each document): embedded with the chunks in one call, or, with
        ``pooled_sentences``, pooled from the chunk's own forward pass where the embedder
        can."""
        chunks = [
            (doc, e.chunk) for doc, exts in zip(documents, extractions, strict=True) for e in exts
        ]
        texts = [c.text for _, c in chunks]
        spans = [
            list(split_sentences(c.text))[: self.opening_sentences]
            if c.index == 0 and self.opening_sentences
            else []
            for _, c in chunks
        ]
        if self.pooled_sentences and isinstance(self.embedder, SpanEmbedder):
            matrix, per_chunk = self.embedder.embed_with_spans(texts, spans)
        else:
            matrix, per_chunk = spans_embedded_alone(self.embedder, texts, spans)
        points = [
            VectorPoint(
                chunk_id=chunk.id,
                document_id=doc.id,
                tenant=doc.tenant,
                groups=doc.groups,
                vector=tuple(matrix[row].tolist()),
                sparse=self.sparse.encode_document(chunk.text),
                sentences=tuple(
                    SentenceVector(start=a, end=b, vector=tuple(v.tolist()))
                    for (a, b), v in zip(spans[row], per_chunk[row], strict=True)
                ),
            )
            for row, (doc, chunk) in enumerate(chunks)
        ]
        return BatchWork(
            extractions=tuple(tuple(exts) for exts in extractions), points=tuple(points)
        )


class BatchRunner(Protocol):
    """Runs :class:`BatchStage` on batches; the ingestor awaits the results in order."""

    @property
    def window(self) -> int:
        """How many batches may be submitted and not yet written (at least 1)."""
        ...

    def submit(self, documents: Sequence[Document]) -> Awaitable[BatchWork]:
        """Start the stage on one batch now; the result is awaited later, once."""
        ...


class LocalRunner:
    """Runs the stage in this process: chunking and spaCy in one worker thread and the
    embedder in another, so extraction of the next batches overlaps embedding, resolving
    and writing this one."""

    # The batch being written, the next being embedded and resolved, and the one after
    # it in spaCy: two lanes and the driver each have work at every moment.
    window = 3

    def __init__(self, stage: BatchStage) -> None:
        self._stage = stage
        self._extract_lane = asyncio.Lock()
        self._embed_lane = asyncio.Lock()

    def submit(self, documents: Sequence[Document]) -> Awaitable[BatchWork]:
        """Schedule the batch on the two lanes (each lane keeps submission order)."""
        return asyncio.ensure_future(self._run(list(documents)))

    async def _run(self, documents: list[Document]) -> BatchWork:
        async with self._extract_lane:
            extractions = await asyncio.to_thread(self._stage.extract, documents)
        async with self._embed_lane:
            return await asyncio.to_thread(self._stage.embed, documents, extractions)


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
        stage: BatchStage,
        resolver: EntityResolver,
        batch_documents: int = 32,
        model_extractor: ModelExtractor | None = None,
        id_key: bytes | None = None,
    ) -> None:
        self._graph = graph
        self._id_key = id_key
        self._vectors = vectors
        self._journal = journal
        self._stage = stage
        self._resolver = resolver
        self._batch = batch_documents
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
        runner: BatchRunner | None = None,
    ) -> IngestReport:
        """Ingest documents for a tenant; unchanged ones are skipped, changed ones replaced.

        ``runner`` runs the worker stage (default: :class:`LocalRunner`, this process).
        """
        started = time.perf_counter()
        before = dataclasses.replace(self._model.stats) if self._model else None
        stored_groups = _stored_groups(groups)
        async with self._lock:
            plan, unchanged, ids = await self._plan(sources, tenant, stored_groups)
            totals = {"chunks": 0, "mentions": 0, "relations": 0, "vectors": 0}
            if plan:
                await self._learn([p.document for p in plan])
            if progress:
                progress(0, len(plan))
            batches = [plan[i : i + self._batch] for i in range(0, len(plan), self._batch)]
            try:
                await self._run(batches, runner or LocalRunner(self._stage), totals, progress)
            finally:
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

    async def _run(
        self,
        batches: list[list[_Planned]],
        runner: BatchRunner,
        totals: dict[str, int],
        progress: Progress | None,
    ) -> None:
        """Stage every batch through ``runner`` (up to its window ahead), then resolve and
        write them in order; resolving the next batch overlaps writing this one."""
        pending: deque[tuple[list[_Planned], asyncio.Future[BatchWork]]] = deque()
        submitted = 0

        def top_up(written: int) -> None:
            nonlocal submitted
            while submitted < len(batches) and submitted - written < max(runner.window, 1):
                batch = batches[submitted]
                work = asyncio.ensure_future(runner.submit([p.document for p in batch]))
                pending.append((batch, work))
                submitted += 1

        top_up(0)
        upcoming = self._start_prepare(pending)
        done, total = 0, sum(len(b) for b in batches)
        try:
            for index in range(len(batches)):
                if upcoming is None:  # pragma: no cover - one prepared batch per batch
                    raise RuntimeError("the ingest pipeline lost a batch")
                batch, graphs, work = await upcoming
                top_up(index)
                upcoming = self._start_prepare(pending)
                counts = await self._write_batch(graphs, work, batch)
                trim()  # the batch's parses, tensors and rows were freed: give them back
                for key, value in counts.items():
                    totals[key] += value
                done += len(batch)
                if progress:
                    progress(done, total)
        finally:
            unfinished = [w for _, w in pending] + ([upcoming] if upcoming is not None else [])
            for future in unfinished:
                future.cancel()
            # Their outcome no longer matters: the ingest already failed or was cancelled.
            await asyncio.gather(*unfinished, return_exceptions=True)

    def _start_prepare(
        self, pending: deque[tuple[list[_Planned], asyncio.Future[BatchWork]]]
    ) -> asyncio.Future[tuple[list[_Planned], list[DocumentGraph], BatchWork]] | None:
        if not pending:
            return None
        batch, work = pending.popleft()
        return asyncio.ensure_future(self._prepare(batch, work))

    async def _prepare(
        self, batch: list[_Planned], staged: asyncio.Future[BatchWork]
    ) -> tuple[list[_Planned], list[DocumentGraph], BatchWork]:
        """A staged batch's model items when configured (async, cached), then entity
        resolution (worker thread)."""
        work = await staged
        if self._model is not None:
            flat = await self._model.extend([e for exts in work.extractions for e in exts])
            extractions: list[Sequence[ChunkExtraction]] = list(
                _regroup(flat, [len(exts) for exts in work.extractions])
            )
        else:
            extractions = list(work.extractions)
        items = [(p.document, exts) for p, exts in zip(batch, extractions, strict=True)]
        graphs = await asyncio.to_thread(self._resolver.resolve_batch, items)
        return batch, graphs, work

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

    async def _write_batch(
        self, graphs: list[DocumentGraph], work: BatchWork, batch: list[_Planned]
    ) -> dict[str, int]:
        new_ids = [g.document.id for g in graphs]
        replaced = [old for p in batch for old in p.replaces]
        await self._journal.add([*new_ids, *replaced])
        await self._vectors.upsert(work.points)
        await self._graph.upsert(graphs, replaces=replaced)
        await self._vectors.delete_documents(replaced)
        await self._journal.clear([*new_ids, *replaced])
        return {
            "chunks": sum(len(g.chunks) for g in graphs),
            "mentions": sum(len(g.mentions) for g in graphs),
            "relations": sum(len(g.relations) for g in graphs),
            "vectors": len(work.points),
        }


def _regroup(flat: Sequence[ChunkExtraction], sizes: Sequence[int]) -> list[list[ChunkExtraction]]:
    """``flat`` cut back into consecutive groups of ``sizes`` (one per document)."""
    grouped, pos = [], 0
    for size in sizes:
        grouped.append(list(flat[pos : pos + size]))
        pos += size
    return grouped


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


# ---------------------------------------------------------------------- from settings


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings describe (not loaded yet)."""
    emb = settings.embedding
    if emb.base_url and emb.model:
        from engine.llm import OpenAIEmbedder  # noqa: PLC0415 - only with a remote embedder

        return OpenAIEmbedder(
            base_url=emb.base_url,
            model=emb.model,
            api_key=emb.api_key.get_secret_value() if emb.api_key else None,
            batch_size=emb.batch_size,
        )
    return SentenceTransformerEmbedder(
        model_path=emb.model_path or packaged_minilm_path(),
        batch_size=emb.batch_size,
        precision=emb.precision,
    )


def extractor_for(settings: Settings) -> SpacyEntityExtractor:
    """The spaCy extractor the settings describe, with the personal-data detector the
    privacy settings ask for (not loaded yet)."""
    ext = settings.extraction
    return SpacyEntityExtractor(
        pipeline=ext.spacy_pipeline,
        batch_size=ext.batch_size,
        n_process=ext.n_process,
        proper_noun_phrases=ext.proper_noun_phrases,
        pii=pii_detector_for(settings),
    )


def pii_detector_for(settings: Settings) -> PiiDetector | None:
    """The ingest-time personal-data detector the privacy settings ask for (None: off)."""
    privacy = settings.privacy
    if not privacy.pii_detection or not privacy.pii_types:
        return None
    # The types were checked when the settings were read.
    return PiiDetector(privacy.pii_types, threshold=privacy.pii_threshold)


def stage_for(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    extractor: SpacyEntityExtractor | None = None,
) -> BatchStage:
    """The worker stage the settings describe; a Ray worker builds its own this way, the
    engine passes the embedder and extractor it already holds."""
    ext = settings.extraction
    return BatchStage(
        chunker=SentenceChunker(max_chars=ext.chunk_chars, overlap=ext.chunk_overlap),
        extractor=extractor or extractor_for(settings),
        embedder=embedder or embedder_for(settings),
        sparse=Bm25Encoder(),
        opening_sentences=settings.ingest.opening_sentences,
        pooled_sentences=settings.ingest.pooled_sentences,
    )
