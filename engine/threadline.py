"""The Threadline facade: opens a data dir (or configured stores) and wires the pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from agents import (
    AnswerChecker,
    Answerer,
    ExtractiveAnswerer,
    FallbackAnswerer,
    FallbackPlanner,
    HybridRetriever,
    Mode,
    ModelSynthesizer,
    ProvenanceValidator,
    Retrieval,
    RulePlanner,
)
from agents.communities import CommunityBuilder
from agents.global_answer import GlobalAnswerer
from agents.model_planner import ModelPlanner
from agents.parsing import cached_parser
from engine.browse import GraphBrowser
from engine.cache import AnswerCache, CacheStats, MeteredAsks, QueryEmbeddingCache
from engine.control import open_usage
from engine.global_query import GlobalQueryPipeline
from engine.ingest import (
    BatchRunner,
    Ingestor,
    IngestReport,
    Progress,
    embedder_for,
    extractor_for,
    repair,
    stage_for,
)
from engine.journal import DataDirLock, IngestJournal
from engine.llm import OpenAIChatClient
from engine.metering import MeteredChatModel, acting_as, caller_for
from engine.query import AskEvent, QueryPipeline, checked_question
from engine.readers import SourceDocument, read_paths
from engine.settings import Settings
from engine.usage import UsageLedger
from engine.verify import Verifier, VerifyItem, VerifyResult
from extractors import (
    Bm25Encoder,
    Embedder,
    EntityResolver,
    SpacyEntityExtractor,
)
from extractors.chat import ChatModel
from extractors.model_extractor import ExtractionCache, ModelExtractor
from extractors.prompts import PLAN, SUPPORT, SYNTHESIZE
from graph import (
    PUBLIC_GROUP,
    Access,
    ConfigError,
    DeleteReport,
    DocumentGraph,
    DocumentId,
    GraphStore,
    InputError,
    NotFoundError,
    StoreStats,
    StoreUnavailableError,
    VectorIndex,
)
from graph.backends.networkx_store import NetworkxGraphStore
from graph.communities import CommunityId
from graph.provenance import Answer

__all__ = ["AskEvent", "Stats", "Threadline", "open_graph_store"]

logger = logging.getLogger(__name__)


class Stats(StoreStats):
    """Graph counts plus the number of chunk vectors."""

    vectors: int


async def open_graph_store(
    settings: Settings, backend: Literal["networkx", "neo4j"] | None = None
) -> GraphStore:
    """The graph store ``settings`` describe (or the given backend with those settings)."""
    cfg = settings.graph
    if (backend or cfg.backend) == "networkx":
        return await NetworkxGraphStore.open(settings.data_dir / "graph.sqlite")
    if cfg.password is None:
        raise ConfigError(
            "the neo4j graph store needs THREADLINE_GRAPH__PASSWORD "
            "(and THREADLINE_GRAPH__URI, THREADLINE_GRAPH__USER unless the defaults fit)"
        )
    from graph.backends.neo4j_store import Neo4jGraphStore  # noqa: PLC0415 - optional backend

    return await Neo4jGraphStore.open(
        cfg.uri,
        user=cfg.user,
        password=cfg.password.get_secret_value(),
        database=cfg.database,
        http_url=cfg.http_url,
        connection_timeout=cfg.connection_timeout,
        max_pool_size=cfg.max_pool_size,
    )


class Threadline:
    """One Threadline knowledge base. Use ``async with await Threadline.open(settings)``.

    The constructor does no I/O; :meth:`open` takes the data-dir lock, opens the stores
    and repairs any interrupted write.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = DataDirLock(settings.data_dir)
        # Built the way a Ray worker builds its own (engine.ingest.stage_for).
        self._embedder: Embedder = embedder_for(settings)
        self._extractor: SpacyEntityExtractor = extractor_for(settings)
        self._sparse = Bm25Encoder()
        self._graph: GraphStore | None = None
        self._vectors: VectorIndex | None = None
        self._journal: IngestJournal | None = None
        self._ingestor: Ingestor | None = None
        self._retriever: HybridRetriever | None = None
        self._pipelines: dict[tuple[bool, bool, str], GlobalQueryPipeline] = {}
        self._communities: CommunityBuilder | None = None
        self._model: MeteredChatModel | None = None
        self._cache: ExtractionCache | None = None
        self._id_key: bytes | None = None
        # Usage, quotas and caches (engine.usage, engine.cache): the ledger opens in open().
        self.usage: UsageLedger | None = None
        self._queries = QueryEmbeddingCache(
            self._embedder, max_entries=settings.cache.embedding_entries
        )
        answers = settings.cache
        self._asks = MeteredAsks(
            AnswerCache(max_entries=answers.answer_entries) if answers.answers else None
        )
        cfg = settings.model
        if cfg.base_url is not None:
            client = OpenAIChatClient(
                base_url=cfg.base_url,
                model=cfg.model,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                timeout_s=cfg.timeout_s,
                connect_timeout_s=cfg.connect_timeout_s,
                concurrency=cfg.concurrency,
                max_tokens=cfg.max_tokens,
                retries=cfg.retries,
            )
            self._model = MeteredChatModel(client)

    @classmethod
    async def open(cls, settings: Settings | None = None) -> Self:
        """Open the knowledge base described by ``settings`` (default: from the environment)."""
        tl = cls(settings or Settings())
        try:
            await tl._start()
        except BaseException:
            await tl.close()
            raise
        return tl

    async def _start(self) -> None:
        data_dir = self.settings.data_dir
        self._lock.acquire()
        self._journal = await IngestJournal.open(data_dir / "journal.sqlite")
        self._graph = await open_graph_store(self.settings)
        self._vectors = await self._open_vectors()
        await repair(self._journal, self._graph, self._vectors)
        self._id_key = await _id_key(self.settings, self._graph)
        self.usage = await open_usage(self.settings)  # data dir, or shared PostgreSQL
        self._asks.ledger = self.usage
        if self._model is not None:
            self._model.ledger = self.usage

    async def _open_vectors(self) -> VectorIndex:
        cfg = self.settings.vector
        if cfg.backend == "qdrant":
            dimension = await _dimension(self._embedder)
            from graph.backends.qdrant_client_index import (  # noqa: PLC0415 - optional backend
                QdrantClientVectorIndex,
            )

            return await QdrantClientVectorIndex.open(
                collection=cfg.collection,
                dimension=dimension,
                url=cfg.url,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                path=str(cfg.path) if cfg.path and not cfg.url else None,
            )
        from graph.backends.qdrant_edge_index import QdrantEdgeVectorIndex  # noqa: PLC0415

        path = self.settings.data_dir / "vectors"
        # An existing index knows its size, so read-only commands never load the embedder;
        # an embedder of another size is refused at the first write.
        dimension = QdrantEdgeVectorIndex.stored_dimension(path) or await _dimension(self._embedder)
        return await QdrantEdgeVectorIndex.open(path, dimension=dimension)

    async def close(self) -> None:
        """Close the stores and release the data dir."""
        for closable in (self._vectors, self._graph, self._journal, self._model, self.usage):
            if closable is not None:
                await closable.close()
        if self._cache is not None:
            self._cache.close()
        self._vectors = self._graph = self._journal = self._model = self._cache = None
        self.usage = None
        self._lock.release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ parts

    @property
    def graph(self) -> GraphStore:
        """The graph store."""
        if self._graph is None:
            raise StoreUnavailableError("Threadline is closed; open it with Threadline.open")
        return self._graph

    @property
    def extractor(self) -> SpacyEntityExtractor:
        """The spaCy pipeline ingest and queries share (loaded on first use)."""
        return self._extractor

    @property
    def vectors(self) -> VectorIndex:
        """The vector index."""
        if self._vectors is None:
            raise StoreUnavailableError("Threadline is closed; open it with Threadline.open")
        return self._vectors

    @property
    def model(self) -> MeteredChatModel:
        """The model client (``THREADLINE_MODEL__BASE_URL``); its calls are checked against
        the caller's quotas and counted in :attr:`usage`."""
        if self._model is None:
            raise ConfigError(
                "no model server is configured: set THREADLINE_MODEL__BASE_URL (vLLM or any "
                "OpenAI-compatible server; `threadline serve-model-local` starts a local one)"
            )
        return self._model

    def _get_ingestor(self) -> Ingestor:
        if self._ingestor is None:
            ext = self.settings.extraction
            extractor = None
            if self.settings.model.extraction:
                self._cache = self._cache or ExtractionCache(self._cache_path)
                extractor = ModelExtractor(
                    self.model, cache=self._cache, injection=self.settings.privacy.injection
                )
            if self._journal is None:
                raise StoreUnavailableError("Threadline is closed; open it with Threadline.open")
            self._ingestor = Ingestor(
                graph=self.graph,
                vectors=self.vectors,
                journal=self._journal,
                stage=stage_for(self.settings, embedder=self._embedder, extractor=self._extractor),
                resolver=EntityResolver(
                    embed=self._embedder.embed_sync, threshold=ext.resolution_threshold
                ),
                batch_documents=self.settings.ingest.batch_documents,
                model_extractor=extractor,
                id_key=self._id_key,
            )
        return self._ingestor

    @property
    def communities(self) -> CommunityBuilder:
        """Builds the communities of scopes whose documents changed (on read)."""
        if self._communities is None:
            self._communities = CommunityBuilder(graph=self.graph, embedder=self._embedder)
        return self._communities

    def browse(self, access: Access) -> GraphBrowser:
        """The graph as ``access`` may read it: entities, facts, neighbourhoods, paths,
        communities."""
        return GraphBrowser(self.graph, access, communities=self.communities)

    # ------------------------------------------------------------------ operations

    def read(
        self, paths: Sequence[Path], *, reader: Literal["builtin", "llamaindex"] = "builtin"
    ) -> list[SourceDocument]:
        """Read and validate files before anything is stored (errors name file and line).

        ``reader="llamaindex"`` reads through LlamaIndex's file readers, which keep PDF
        and DOCX page numbers and Markdown/HTML headings (``threadline[llamaindex]``).
        """
        limit = self.settings.ingest.max_document_bytes
        if reader == "llamaindex":
            try:
                from engine.llamaindex_readers import read_with_llamaindex  # noqa: PLC0415
            except ImportError as exc:
                raise ConfigError(
                    "the LlamaIndex readers are not installed: pip install 'threadline[llamaindex]'"
                ) from exc
            return list(read_with_llamaindex(paths, max_bytes=limit))
        return list(read_paths(paths, max_bytes=limit))

    async def ingest(
        self,
        sources: Sequence[SourceDocument],
        *,
        tenant: str | None = None,
        groups: Sequence[str] = (),
        progress: Progress | None = None,
        runner: BatchRunner | None = None,
    ) -> IngestReport:
        """Ingest documents already read (see :meth:`read`).

        ``runner``: where chunking, spaCy and embedding run, e.g. a
        :class:`~engine.cluster.RayRunner` on a Ray cluster (default: this process).
        """
        owner = tenant or self.settings.tenant
        try:
            with acting_as(caller_for(Access(tenant=owner))):
                report = await self._get_ingestor().ingest(
                    sources, tenant=owner, groups=groups, progress=progress, runner=runner
                )
        finally:
            self._asks.changed([owner])
        if self.settings.ingest.communities:
            await self._refresh_communities(owner, groups)
        return report

    async def _refresh_communities(self, tenant: str, groups: Sequence[str]) -> None:
        """Rebuild the communities of the scopes a write touched (``ingest.communities``)."""
        access = Access(tenant=tenant, groups=frozenset(g for g in groups if g != PUBLIC_GROUP))
        await self.communities.refresh(await self.graph.community_scopes(access))

    async def delete(self, document_ids: Sequence[DocumentId], access: Access) -> DeleteReport:
        """Delete documents with their chunks, vectors and unsupported facts and entities.

        Only documents ``access`` may read are deleted; when any id is missing or hidden
        from it, nothing is deleted (:class:`NotFoundError`). Operators pass
        ``Access.admin()``.
        """
        if self._journal is None:
            raise StoreUnavailableError("Threadline is closed; open it with Threadline.open")
        found = await self.graph.documents(access, ids=document_ids, limit=len(document_ids))
        missing = sorted(set(document_ids) - {d.id for d in found})
        if missing:
            raise NotFoundError(
                f"no document with id {', '.join(missing)} that you can read; "
                "see `threadline documents`"
            )
        ids = [d.id for d in found]
        stated = await self.graph.export(ids)
        await self._journal.add(ids)
        self._asks.changed({d.tenant for d in found})
        try:
            report = await self.graph.delete(ids)
        finally:
            self._asks.changed({d.tenant for d in found})
        if self._ingestor is not None:
            self._ingestor.forget(found)
        await self.vectors.delete_documents(ids)
        await self._journal.clear(ids)
        await self._purge_model_cache(stated)
        if self.settings.ingest.communities:
            for tenant, groups in sorted({(d.tenant, d.groups) for d in found}):
                await self._refresh_communities(tenant, groups)
        return report

    @property
    def _cache_path(self) -> Path:
        return self.settings.data_dir / "model_cache.sqlite"

    async def _purge_model_cache(self, deleted: Sequence[DocumentGraph]) -> None:
        """Drop cached model extractions of the deleted chunks, unless a stored chunk of
        another version or copy of the same source has the same text."""
        if self._cache is None:
            if not self._cache_path.exists():
                return
            self._cache = await asyncio.to_thread(ExtractionCache, self._cache_path)
        texts = {c.text for g in deleted for c in g.chunks}
        sources = {g.document.source for g in deleted}
        others = [
            d.id
            for source in sorted(sources)
            for d in await self.graph.documents(Access.admin(), source=source, limit=1000)
        ]
        if others:
            texts -= {c.text for g in await self.graph.export(others) for c in g.chunks}
        removed = await asyncio.to_thread(self._cache.purge, texts)
        logger.debug("purged %s cached model extractions", removed)

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever; its ``planner`` and ``executor.limits`` can be tuned."""
        if self._retriever is None:
            self._retriever = HybridRetriever(
                graph=self.graph,
                vectors=self.vectors,
                embedder=self._queries,
                extractor=self._extractor,
                sparse=self._sparse,
                planner=self._planner(),
            )
        return self._retriever

    def _planner(self) -> RulePlanner | FallbackPlanner:
        rules = RulePlanner(self._extractor)
        if not self.settings.model.planner:
            return rules
        return FallbackPlanner(
            ModelPlanner(self.model), rules, timeout_s=self.settings.model.planner_timeout_s
        )

    def validator(self, *, judge: ChatModel | None = None) -> ProvenanceValidator:
        """The provenance validator over this engine's graph and parser; ``judge``: a model
        that may withhold support the rules grant (never grant it)."""
        return ProvenanceValidator(graph=self.graph, extractor=self._extractor, judge=judge)

    def pipeline(self, *, llm: bool | None = None) -> QueryPipeline:
        """The query pipeline: the model writes answers when ``llm`` (default: the
        ``THREADLINE_MODEL__SYNTHESIS`` setting), with the extractive answerer behind it
        for unusable replies; otherwise the extractive answerer alone."""
        use_model = self.settings.model.synthesis if llm is None else llm
        checker = AnswerChecker(extractor=self._extractor)
        extractive = ExtractiveAnswerer(
            graph=self.graph, extractor=self._extractor, embedder=self._embedder, checker=checker
        )
        answerer: Answerer = extractive
        judge = None
        if use_model:
            answerer = FallbackAnswerer(
                ModelSynthesizer(
                    graph=self.graph, model=self.model, injection=self.settings.privacy.injection
                ),
                extractive,
            )
            judge = self.model if self.settings.model.entailment else None
        return QueryPipeline(
            retriever=self.retriever,
            answerer=answerer,
            validator=self.validator(judge=judge),
            checker=checker,
            injection=self.settings.privacy.injection,
            graph=self.graph,
        )

    def global_pipeline(self, *, llm: bool | None = None) -> GlobalQueryPipeline:
        """:meth:`pipeline` with corpus-wide questions ("what are the main themes?")
        answered from the caller's communities (see :mod:`engine.global_query`)."""
        base = self.pipeline(llm=llm)
        use_model = self.settings.model.synthesis if llm is None else llm
        return GlobalQueryPipeline(
            base,
            graph=self.graph,
            builder=self.communities,
            answerer=GlobalAnswerer(graph=self.graph, embedder=self._embedder),
            extractor=self._extractor,
            synthesizer=(
                ModelSynthesizer(
                    graph=self.graph,
                    model=self.model,
                    max_sentences=16,
                    max_tokens=400,
                    injection=self.settings.privacy.injection,
                )
                if use_model
                else None
            ),
        )

    async def summarize_community(
        self, community_id: str, access: Access | None = None, *, llm: bool | None = None
    ) -> Answer:
        """A readable community's summary as a validated answer (``mode="community"``):
        its cited sentences, written into prose by the model when ``llm`` (default: the
        ``THREADLINE_MODEL__SYNTHESIS`` setting). :class:`NotFoundError` when the community
        is unknown or built from documents ``access`` cannot read."""
        reader = access or self.access()
        await self.browse(reader).refresh_communities()
        found = await self.graph.communities(reader, ids=[CommunityId(community_id)])
        if not found:
            raise NotFoundError(f"no community {community_id} you can see")
        return await self.global_pipeline(llm=llm).summarize(found[0], reader)

    async def retrieve(
        self, question: str, access: Access | None = None, *, k: int = 5, mode: Mode = "threadline"
    ) -> Retrieval:
        """Evidence chunks for a question, with the signals that found them (``access``
        defaults to the configured tenant)."""
        return await self.retriever.retrieve(
            checked_question(question), access or self.access(), k=k, mode=mode
        )

    async def ask(
        self,
        question: str,
        access: Access | None = None,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        llm: bool | None = None,
        unsupported: bool = False,
    ) -> Answer:
        """Answer a question from the sources ``access`` may read (default: the configured
        tenant), with validated claims.

        ``llm``: the configured model writes the answer (default: the
        ``THREADLINE_MODEL__SYNTHESIS`` setting); ``unsupported``: keep claims the
        validator did not support in the answer (flagged) instead of removing them.
        """
        async for event in self.ask_stream(
            question, access, k=k, mode=mode, llm=llm, unsupported=unsupported
        ):
            if event.answer is not None:
                return event.answer
        raise InputError("the question produced no answer")  # pragma: no cover - always done

    def ask_stream(
        self,
        question: str,
        access: Access | None = None,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        llm: bool | None = None,
        unsupported: bool = False,
    ) -> AsyncIterator[AskEvent]:
        """:meth:`ask`, stage by stage (see :class:`~engine.query.AskEvent`); a repeated
        question is answered from the answer cache (:mod:`engine.cache`)."""
        use_model = self.settings.model.synthesis if llm is None else llm
        model = self.settings.model
        prompts = [SYNTHESIZE.id, *([SUPPORT.id] if model.entailment else [])] if use_model else []
        prompts += [PLAN.id] if model.planner else []
        retriever = self.retriever
        tuning = (type(retriever.planner).__name__, retriever.weights, retriever.executor.limits)
        return self._asks.stream(
            self._answering(use_model),
            question,
            access or self.access(),
            k=k,
            mode=mode,
            unsupported=unsupported,
            model=model.model if use_model else "extractive",
            prompts=prompts,
            config=repr(tuning),
        )

    def _answering(self, use_model: bool) -> GlobalQueryPipeline:
        """The pipeline :meth:`ask_stream` runs, built once per configuration: its
        components' parse caches then serve every question, not one."""
        key = (use_model, self.settings.model.entailment, self.settings.privacy.injection)
        found = self._pipelines.get(key)
        if found is None:
            found = self._pipelines[key] = self.global_pipeline(llm=use_model)
        return found

    async def verify(self, items: Sequence[VerifyItem], access: Access) -> list[VerifyResult]:
        """Check answers written elsewhere against what ``access`` may read, with the
        validator and answer check of :meth:`pipeline` (see :mod:`engine.verify`)."""
        checks = self.pipeline()
        verifier = Verifier(graph=self.graph, validator=checks.validator, checker=checks.checker)
        return await verifier.verify(items, access)

    async def check_quota(self, access: Access, *, llm: bool | None = None) -> None:
        """Raise :class:`~graph.QuotaExceededError` when the caller (the API's key, else
        the tenant of ``access``) has asked its questions for the day or, when the answer
        would need the model, spent its tokens."""
        if self.usage is None:
            raise StoreUnavailableError("Threadline is closed; open it with Threadline.open")
        model = self.settings.model
        uses_model = (model.synthesis if llm is None else llm) or model.planner
        await self.usage.check(caller_for(access), tokens=uses_model, asks=True)

    @property
    def caches(self) -> dict[str, CacheStats]:
        """Lookups of the answer and query-embedding caches since open."""
        stats = {"query_embedding": self._queries.stats}
        if self._asks.cache is not None:
            stats["answer"] = self._asks.cache.stats
        return stats

    @property
    def answer_cache(self) -> AnswerCache | None:
        """The answer cache (``None`` when answers are not cached)."""
        return self._asks.cache

    @property
    def query_cache(self) -> QueryEmbeddingCache:
        """The query-embedding cache."""
        return self._queries

    def forget_queries(self) -> None:
        """Drop the cached question vectors and parses (the benchmark asks each mode
        with none left by another)."""
        self._queries.drop(lambda _: True)
        cached_parser(self._extractor).cache_clear()

    async def forget_replaced(self, replaced: Sequence[DocumentGraph]) -> None:
        """Drop the cached model extractions of replaced versions' chunks whose text no
        stored chunk of the same source repeats (after a redacted re-ingest)."""
        await self._purge_model_cache(replaced)

    def access(self) -> Access:
        """The configured tenant's access (``THREADLINE_TENANT``), every group."""
        return Access(tenant=self.settings.tenant)

    async def stats(self, access: Access) -> Stats:
        """Graph and vector counts of what ``access`` can see."""
        base = await self.graph.stats(access)
        return Stats(**base.model_dump(), vectors=await self.vectors.count(access))


async def _dimension(embedder: Embedder) -> int:
    return await asyncio.to_thread(lambda: embedder.dimension)


async def _id_key(settings: Settings, graph: GraphStore) -> bytes | None:
    """The key document ids are derived under (``graph.ids.content_hash``).

    ``THREADLINE_PRIVACY__ID_KEY`` when set (replicas over one Neo4j database must share
    it); else, for the embedded store, ``id.key`` in the data dir, made at the first open
    of an empty store. A store that already holds documents without a key file keeps
    unkeyed ids, so re-ingesting an unchanged document still finds it unchanged.
    """
    configured = settings.privacy.id_key
    if configured is not None:
        return configured.get_secret_value().encode("utf-8")
    if settings.graph.backend != "networkx":
        return None
    path = settings.data_dir / "id.key"
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    if await graph.documents(Access.admin(), limit=1):
        return None
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key.hex() + "\n")
    return key
