"""The Threadline facade: opens a data dir (or configured stores) and wires the pipeline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from opentelemetry import trace

from agents import (
    NOT_FOUND,
    ExtractiveAnswerer,
    FallbackPlanner,
    HybridRetriever,
    Mode,
    ProvenanceValidator,
    Retrieval,
    RulePlanner,
)
from agents.model_planner import ModelPlanner
from agents.synthesis import ModelSynthesizer, Synthesis
from engine.browse import GraphBrowser
from engine.ingest import Ingestor, IngestReport, Progress, repair
from engine.journal import DataDirLock, IngestJournal
from engine.llm import OpenAIChatClient, OpenAIEmbedder
from engine.readers import SourceDocument, read_paths
from engine.settings import Settings
from engine.views import Subgraph
from extractors import (
    Bm25Encoder,
    Embedder,
    EntityResolver,
    SentenceChunker,
    SentenceTransformerEmbedder,
    SpacyEntityExtractor,
    packaged_minilm_path,
)
from extractors.model import ModelReplyError, Usage
from extractors.model_extractor import ExtractionCache, ModelExtractor
from extractors.prompts import PLAN, SUPPORT
from graph import (
    Access,
    Chunk,
    ConfigError,
    DeleteReport,
    Document,
    DocumentId,
    Entity,
    EntityId,
    GraphPath,
    GraphStore,
    InputError,
    Mention,
    Neighborhood,
    NotFoundError,
    Relation,
    StoreStats,
    VectorIndex,
    normalize_name,
)
from graph.backends.networkx_store import NetworkxGraphStore
from graph.provenance import Answer, Claim, Evidence

__all__ = ["AskEvent", "Stats", "Threadline", "open_graph_store"]

logger = logging.getLogger(__name__)
_TRACER = trace.get_tracer("threadline.engine")


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


@dataclass(frozen=True, slots=True)
class AskEvent:
    """One stage of :meth:`Threadline.ask_stream`."""

    kind: Literal["evidence", "token", "answer", "claims", "done"]
    text: str | None = None
    evidence: tuple[Evidence, ...] = ()
    claims: tuple[Claim, ...] = ()
    answer: Answer | None = None


class Threadline:
    """One Threadline knowledge base. Use ``async with await Threadline.open(settings)``.

    The constructor does no I/O; :meth:`open` takes the data-dir lock, opens the stores
    and repairs any interrupted write.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = DataDirLock(settings.data_dir)
        emb = settings.embedding
        self._embedder: Embedder
        if emb.base_url and emb.model:
            self._embedder = OpenAIEmbedder(
                base_url=emb.base_url,
                model=emb.model,
                api_key=emb.api_key.get_secret_value() if emb.api_key else None,
                batch_size=emb.batch_size,
            )
        else:
            self._embedder = SentenceTransformerEmbedder(
                model_path=emb.model_path or packaged_minilm_path(), batch_size=emb.batch_size
            )
        ext = settings.extraction
        self._extractor = SpacyEntityExtractor(
            pipeline=ext.spacy_pipeline,
            batch_size=ext.batch_size,
            n_process=ext.n_process,
            proper_noun_phrases=ext.proper_noun_phrases,
        )
        self._sparse = Bm25Encoder()
        self._graph: GraphStore | None = None
        self._vectors: VectorIndex | None = None
        self._journal: IngestJournal | None = None
        self._ingestor: Ingestor | None = None
        self._retriever: HybridRetriever | None = None
        self._model: OpenAIChatClient | None = None
        self._cache: ExtractionCache | None = None
        cfg = settings.model
        if cfg.base_url is not None:
            self._model = OpenAIChatClient(
                base_url=cfg.base_url,
                model=cfg.model,
                api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                timeout_s=cfg.timeout_s,
                connect_timeout_s=cfg.connect_timeout_s,
                concurrency=cfg.concurrency,
                max_tokens=cfg.max_tokens,
                retries=cfg.retries,
            )

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
        for closable in (self._vectors, self._graph, self._journal, self._model):
            if closable is not None:
                await closable.close()
        if self._cache is not None:
            self._cache.close()
        self._vectors = self._graph = self._journal = self._model = self._cache = None
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
            raise NotFoundError("Threadline is closed; open it with Threadline.open")
        return self._graph

    @property
    def vectors(self) -> VectorIndex:
        """The vector index."""
        if self._vectors is None:
            raise NotFoundError("Threadline is closed; open it with Threadline.open")
        return self._vectors

    @property
    def model(self) -> OpenAIChatClient:
        """The model client (``THREADLINE_MODEL__BASE_URL``)."""
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
                self._cache = ExtractionCache(self.settings.data_dir / "model_cache.sqlite")
                extractor = ModelExtractor(self.model, cache=self._cache)
            if self._journal is None:
                raise NotFoundError("Threadline is closed; open it with Threadline.open")
            self._ingestor = Ingestor(
                graph=self.graph,
                vectors=self.vectors,
                journal=self._journal,
                chunker=SentenceChunker(max_chars=ext.chunk_chars, overlap=ext.chunk_overlap),
                extractor=self._extractor,
                resolver=EntityResolver(
                    embed=self._embedder.embed_sync, threshold=ext.resolution_threshold
                ),
                embedder=self._embedder,
                sparse=self._sparse,
                batch_documents=self.settings.ingest.batch_documents,
                opening_sentences=self.settings.ingest.opening_sentences,
                model_extractor=extractor,
            )
        return self._ingestor

    def browse(self, access: Access) -> GraphBrowser:
        """The graph as ``access`` may read it: entities, facts, neighbourhoods, paths."""
        return GraphBrowser(self.graph, access)

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
                from engine.llamaindex import read_with_llamaindex  # noqa: PLC0415
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
    ) -> IngestReport:
        """Ingest documents already read (see :meth:`read`)."""
        return await self._get_ingestor().ingest(
            sources, tenant=tenant or self.settings.tenant, groups=groups, progress=progress
        )

    async def delete(self, document_ids: Sequence[DocumentId]) -> DeleteReport:
        """Delete documents with their chunks, vectors and unsupported facts and entities."""
        if self._journal is None:
            raise NotFoundError("Threadline is closed; open it with Threadline.open")
        found = await self.graph.documents(
            Access.admin(), ids=document_ids, limit=len(document_ids)
        )
        missing = sorted(set(document_ids) - {d.id for d in found})
        if missing:
            raise NotFoundError(
                f"no document with id {', '.join(missing)}; see `threadline documents`"
            )
        ids = [d.id for d in found]
        await self._journal.add(ids)
        report = await self.graph.delete(ids)
        await self.vectors.delete_documents(ids)
        await self._journal.clear(ids)
        return report

    @property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever; its ``planner`` and ``executor.limits`` can be tuned."""
        return self._get_retriever()

    def _get_retriever(self) -> HybridRetriever:
        if self._retriever is None:
            self._retriever = HybridRetriever(
                graph=self.graph,
                vectors=self.vectors,
                embedder=self._embedder,
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

    async def retrieve(
        self, question: str, access: Access | None = None, *, k: int = 5, mode: Mode = "threadline"
    ) -> Retrieval:
        """Evidence chunks for a question, with the signals that found them."""
        question = _checked_question(question)
        return await self._get_retriever().retrieve(
            question, access or Access(tenant=self.settings.tenant), k=k, mode=mode
        )

    async def sources(
        self, evidence: Sequence[Evidence], access: Access
    ) -> list[tuple[Evidence, Chunk, Document]]:
        """Each evidence item with its chunk and document, in order; items whose chunk or
        document is gone (deleted since retrieval) or unreadable are left out."""
        graph = self.graph
        chunks = {c.id: c for c in await graph.chunks([e.chunk_id for e in evidence], access)}
        ids = list({e.document_id for e in evidence})
        docs = {d.id: d for d in await graph.documents(access, ids=ids, limit=len(ids) or 1)}
        found = []
        for item in evidence:
            chunk, doc = chunks.get(item.chunk_id), docs.get(item.document_id)
            if chunk is not None and doc is not None:
                found.append((item, chunk, doc))
        return found

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
        """Answer a question from the sources ``access`` may read, with validated claims.

        ``llm``: the configured model writes the answer (default: the
        ``THREADLINE_MODEL__SYNTHESIS`` setting); ``unsupported``: keep claims the
        validator did not support in the answer (flagged) instead of removing them.
        """
        answer: Answer | None = None
        async for event in self.ask_stream(
            question, access, k=k, mode=mode, llm=llm, unsupported=unsupported
        ):
            if event.kind == "done":
                answer = event.answer
        if answer is None:  # pragma: no cover - ask_stream always ends with "done"
            raise NotFoundError("the answer stream ended early")
        return answer

    async def ask_stream(
        self,
        question: str,
        access: Access | None = None,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        llm: bool | None = None,
        unsupported: bool = False,
    ) -> AsyncIterator[AskEvent]:
        """:meth:`ask`, stage by stage: ``evidence`` (what retrieval found), ``token`` (the
        model's answer text as it is written; model answers only), ``answer`` (the draft
        text), ``claims`` (the validated claims and the final answer text) and ``done``
        (the whole answer). The final text can differ from the streamed draft: claims the
        validator rejects are removed."""
        who = access or Access(tenant=self.settings.tenant)
        use_model = self.settings.model.synthesis if llm is None else llm
        with _TRACER.start_as_current_span(
            "threadline.ask",
            attributes={"threadline.mode": mode, "threadline.k": k, "threadline.llm": use_model},
        ) as span:
            started = time.perf_counter()
            with _TRACER.start_as_current_span("threadline.retrieve"):
                retrieval = await self.retrieve(question, who, k=k, mode=mode)
            retrieved = time.perf_counter()
            span.set_attribute("threadline.evidence", len(retrieval.evidence))
            yield AskEvent(kind="evidence", evidence=tuple(retrieval.evidence))
            with _TRACER.start_as_current_span("threadline.answer"):
                synthesis: Synthesis | None = None
                note = ""
                if use_model:
                    async for part in self._model_draft(retrieval, who):
                        if isinstance(part, AskEvent):
                            yield part
                        elif isinstance(part, Synthesis):
                            synthesis = part
                        else:
                            note = part
                if synthesis is not None:
                    drafted_text, drafted_claims = synthesis.answer, synthesis.claims
                else:
                    draft = await ExtractiveAnswerer(graph=self.graph).answer(retrieval, who)
                    drafted_text, drafted_claims = draft.answer, draft.claims
            drafted = time.perf_counter()
            yield AskEvent(kind="answer", text=drafted_text)
            with _TRACER.start_as_current_span("threadline.validate") as checked:
                judge = self.model if use_model and self.settings.model.entailment else None
                validator = ProvenanceValidator(graph=self.graph, judge=judge)
                if synthesis is not None:
                    claims = await validator.validate(
                        drafted_claims,
                        who,
                        evidence={e.chunk_id for e in retrieval.evidence},
                        problems=synthesis.problems,
                    )
                else:
                    claims = await validator.validate(drafted_claims, who)
                checked.set_attribute("threadline.claims", len(claims))
            validated = time.perf_counter()
        removed = 0
        if synthesis is not None:
            text = _model_answer(synthesis.answer, claims)
            if not unsupported:
                kept = [c for c in claims if c.verdict != "unsupported"]
                removed = len(claims) - len(kept)
                claims = kept
        else:
            main = claims[0] if claims else None
            text = drafted_text if main is not None and main.verdict == "supported" else NOT_FOUND
        yield AskEvent(kind="claims", claims=tuple(claims), text=text)
        answer = Answer(
            question=retrieval.question.text,
            answer=text,
            mode=mode,
            claims=tuple(claims),
            evidence=tuple(retrieval.evidence),
            entities=tuple(retrieval.linked),
            plan=retrieval.plan.steps if retrieval.plan else (),
            plan_note=retrieval.plan.plan.note if retrieval.plan else "",
            synthesis="model" if synthesis is not None else "extractive",
            synthesis_note=note,
            model=synthesis.model if synthesis is not None else None,
            prompts=_prompts(retrieval, synthesis, judged=judge is not None),
            usage=_usage(synthesis.usage) if synthesis is not None else {},
            removed_claims=removed,
            timings_ms={
                **retrieval.timings_ms,
                "retrieval": _ms(started, retrieved),
                "answer": _ms(retrieved, drafted),
                "validation": _ms(drafted, validated),
                "total": _ms(started, validated),
            },
        )
        yield AskEvent(kind="done", answer=answer, text=text)

    async def _model_draft(
        self, retrieval: Retrieval, who: Access
    ) -> AsyncIterator[AskEvent | Synthesis | str]:
        """The model's draft: ``token`` events, then the :class:`Synthesis` — or a note
        saying why there is none (the model replied twice with something unusable; the
        caller answers extractively). A failed call (server down, overloaded, refusing the
        key or the model name) is an error."""
        synthesizer = ModelSynthesizer(graph=self.graph, model=self.model)
        try:
            async for part in synthesizer.stream(retrieval, who):
                yield part if isinstance(part, Synthesis) else AskEvent(kind="token", text=part)
        except ModelReplyError as exc:
            note = f"the model's answer was rejected ({exc}); answered extractively"
            logger.warning("%s", note)
            yield note

    async def stats(self, access: Access | None = None) -> Stats:
        """What ``access`` (default: everything) can see."""
        who = access or Access.admin()
        base = await self.graph.stats(who)
        return Stats(**base.model_dump(), vectors=await self.vectors.count(who))

    async def documents(
        self, access: Access | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[Document]:
        """Readable documents."""
        return await self.graph.documents(access or Access.admin(), limit=limit, offset=offset)

    async def find_entity(self, key: str, access: Access | None = None) -> Entity:
        """An entity by id, or by exact name or alias (the most mentioned one wins)."""
        who = access or Access.admin()
        if key.startswith("ent_"):
            found = await self.graph.entities([EntityId(key)], who)
            if found:
                return found[0]
        candidates = await self.graph.search_entities(key, who, limit=5)
        if not candidates:
            raise NotFoundError(f"no entity named {key!r}; try `threadline entities --search`")
        return candidates[0]

    async def neighbors(
        self, key: str, access: Access | None = None, *, depth: int = 1, limit: int = 25
    ) -> tuple[Entity, Neighborhood]:
        """An entity and its readable neighbourhood."""
        who = access or Access.admin()
        entity = await self.find_entity(key, who)
        return entity, await self.graph.neighbors([entity.id], who, depth=depth, limit=limit)

    async def mentions(
        self, entity: EntityId, access: Access | None = None, *, limit: int = 5
    ) -> list[Mention]:
        """Where an entity is mentioned."""
        return await self.graph.mentions([entity], access or Access.admin(), limit=limit)

    # ------------------------------------------------------------------ exploration

    async def entities(
        self,
        search: str = "",
        access: Access | None = None,
        *,
        types: Sequence[str] = (),
        limit: int = 50,
    ) -> list[Entity]:
        """Readable entities whose name or alias contains ``search`` (most mentioned first)."""
        return await self.graph.search_entities(
            search, access or Access.admin(), types=types, limit=limit
        )

    async def entity(self, key: str, access: Access | None = None) -> Entity:
        """One entity by id (``ent_...``), name or alias."""
        return await self.find_entity(key, access)

    async def neighborhood(
        self, key: str, access: Access | None = None, *, depth: int = 1, limit: int = 25
    ) -> Neighborhood:
        """The readable facts around an entity (``depth`` hops, ``limit`` facts per hop)."""
        _, hood = await self.neighbors(key, access, depth=depth, limit=limit)
        return hood

    async def paths(
        self,
        source: str,
        target: str,
        access: Access | None = None,
        *,
        max_hops: int = 4,
        limit: int = 5,
    ) -> list[GraphPath]:
        """Shortest chains of readable facts between two entities (ids or names)."""
        who = access or Access.admin()
        a, b = await self.find_entity(source, who), await self.find_entity(target, who)
        return await self.graph.paths(a.id, b.id, who, max_hops=max_hops, limit=limit)

    async def facts(
        self,
        key: str,
        access: Access | None = None,
        *,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> list[Relation]:
        """The facts touching an entity, each with the sentences that state it."""
        who = access or Access.admin()
        entity = await self.find_entity(key, who)
        return await self.graph.relations([entity.id], who, predicates=predicates, limit=limit)

    async def subgraph(
        self,
        keys: str | Sequence[str],
        access: Access | None = None,
        *,
        depth: int = 1,
        limit: int = 25,
        cooccurrence: bool = False,
    ) -> Subgraph:
        """The neighbourhood of one or more entities as a :class:`Subgraph` (a networkx
        ``MultiDiGraph`` with ``name``/``type`` on nodes and ``predicate``/``kind``/
        ``evidence`` on edges, drawable in a notebook or to PNG/SVG)."""
        who = access or Access.admin()
        names = [keys] if isinstance(keys, str) else list(keys)
        centres = [await self.find_entity(k, who) for k in names]
        hood = await self.graph.neighbors([e.id for e in centres], who, depth=depth, limit=limit)
        return Subgraph.from_neighborhood(
            hood, centres=[e.id for e in centres], cooccurrence=cooccurrence
        )


def _model_answer(answer: str, claims: Sequence[Claim]) -> str:
    """The model's answer if a supported claim states it, else "not found"."""
    key = normalize_name(answer)
    if not key or key == normalize_name(NOT_FOUND):
        return NOT_FOUND
    for claim in claims:
        if claim.verdict != "supported":
            continue
        stated = [claim.text, *(s.text for s in claim.spans)]
        stated += [f"{f.subject} {f.object}" for f in claim.facts]
        if any(key in normalize_name(t) for t in stated):
            return answer
    return NOT_FOUND


def _prompts(retrieval: Retrieval, synthesis: Synthesis | None, *, judged: bool) -> tuple[str, ...]:
    used = []
    if retrieval.plan is not None and retrieval.plan.plan.planner == "model":
        used.append(PLAN.id)
    if synthesis is not None:
        used.append(synthesis.prompt)
        if judged:
            used.append(SUPPORT.id)
    return tuple(used)


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "calls": usage.calls,
    }


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


def _checked_question(question: str) -> str:
    text = question.strip()
    if not text:
        raise InputError("the question is empty")
    if len(text) > 2000:
        raise InputError("the question is longer than 2000 characters; ask something shorter")
    return text


async def _dimension(embedder: Embedder) -> int:
    return await asyncio.to_thread(lambda: embedder.dimension)
