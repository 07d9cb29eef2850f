"""LlamaIndex integration: LlamaIndex's readers in, Threadline out as a retriever and a
query engine. Install with ``pip install 'threadline[llamaindex]'``.

Readers. :func:`read_with_llamaindex` (:mod:`engine.llamaindex_readers`, re-exported
here) reads files with LlamaIndex's readers, keeping PDF and DOCX pages and Markdown and
HTML headings in every cited span.

Retrieval. :class:`ThreadlineRetriever` returns Threadline's evidence as
``NodeWithScore`` items whose metadata holds the provenance (document, exact span, page,
heading, the signals and graph facts that found it); :class:`ThreadlineQueryEngine`
answers with Threadline's validated claims as the response's source nodes. Both are
async-native; for synchronous LlamaIndex code open them through
:class:`ThreadlineSession`, which runs Threadline on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from engine.llamaindex_readers import (
    LLAMAINDEX_SUFFIXES,
    PagedDocxReader,
    SectionedHtmlReader,
    read_with_llamaindex,
)
from engine.redaction import Redactor, redactor_for
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, ChunkId, DocumentId, InputError
from graph.provenance import Answer, Claim, Evidence, SpanRef

__all__ = [
    "LLAMAINDEX_SUFFIXES",
    "PagedDocxReader",
    "SectionedHtmlReader",
    "ThreadlineQueryEngine",
    "ThreadlineRetriever",
    "ThreadlineSession",
    "read_with_llamaindex",
    "span_from_node",
]

T = TypeVar("T")


# ---------------------------------------------------------------------------- running


class ThreadlineSession:
    """A Threadline opened on an event loop of its own, for synchronous callers.

    ``with ThreadlineSession.open(settings) as session: session.retriever().retrieve(q)``.
    Async code may use the same objects (``await retriever.aretrieve(q)``): calls are
    handed to the session's loop, so Threadline's connections stay on one loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="threadline-session", daemon=True
        )
        self._thread.start()
        self._tl: Threadline | None = None

    @classmethod
    def open(cls, settings: Settings | None = None) -> Self:
        """Open Threadline with ``settings`` (default: from the environment)."""
        session = cls()
        try:
            session._tl = session.run(Threadline.open(settings))
        except BaseException:
            session._stop()
            raise
        return session

    @property
    def threadline(self) -> Threadline:
        if self._tl is None:
            raise InputError("the session is closed")
        return self._tl

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the session's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the session's loop and wait for its result."""
        return self.submit(coro).result()

    def retriever(
        self, access: Access | None = None, *, k: int = 5, mode: str = "threadline"
    ) -> ThreadlineRetriever:
        return ThreadlineRetriever(self.threadline, access=access, k=k, mode=mode, session=self)

    def query_engine(
        self, access: Access | None = None, *, k: int = 5, include_unsupported: bool = False
    ) -> ThreadlineQueryEngine:
        return ThreadlineQueryEngine(
            self.threadline,
            access=access,
            k=k,
            include_unsupported=include_unsupported,
            session=self,
        )

    def close(self) -> None:
        if self._tl is not None:
            tl, self._tl = self._tl, None
            self.run(tl.close())
        self._stop()

    def _stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _on(session: ThreadlineSession | None, coro: Coroutine[Any, Any, T]) -> T:
    if session is None:
        return await coro
    return await asyncio.wrap_future(session.submit(coro))


def _blocking(session: ThreadlineSession | None, coro: Coroutine[Any, Any, T], name: str) -> T:
    if session is None:
        coro.close()
        raise InputError(
            f"this {name} wraps a Threadline opened in async code; call its async method "
            f"(aretrieve / aquery), or open it with ThreadlineSession for synchronous use"
        )
    return session.run(coro)


# ---------------------------------------------------------------------------- retriever


def _mode(mode: str) -> Any:
    if mode not in {"threadline", "single", "dense"}:
        raise InputError(f"unknown retrieval mode {mode!r}; use 'threadline', 'single' or 'dense'")
    return mode


class ThreadlineRetriever(BaseRetriever):
    """Threadline's hybrid graph retrieval as a LlamaIndex retriever.

    Each node is one retrieved chunk: ``node.node_id`` is the chunk id, ``node.text`` the
    chunk's exact text, and ``node.metadata`` its provenance: ``document_id``, ``title``,
    ``source``, ``version``, ``start``/``end`` (document offsets), ``page``, ``section``,
    the ``signals`` that found it and the graph ``facts`` and ``entities`` involved, and
    the ``tenant`` and ``groups`` it was read as.

    Personal data in the text and metadata is masked (length kept) unless ``pii`` is true,
    as for an API key without the ``pii`` permission.
    """

    def __init__(
        self,
        threadline: Threadline,
        *,
        access: Access | None = None,
        k: int = 5,
        mode: str = "threadline",
        pii: bool = False,
        session: ThreadlineSession | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._tl = threadline
        self._access = access or Access(tenant=threadline.settings.tenant)
        self._k = k
        self._mode = _mode(mode)
        self._pii = pii
        self._session = session

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _blocking(self._session, self._fetch(query_bundle.query_str), "retriever")

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await _on(self._session, self._fetch(query_bundle.query_str))

    async def _fetch(self, question: str) -> list[NodeWithScore]:
        redactor = await redactor_for(self._tl, self._access, pii=self._pii)
        question = await asyncio.to_thread(redactor.input, question)
        retrieval = await self._tl.retrieve(question, self._access, k=self._k, mode=self._mode)
        nodes = await evidence_nodes(self._tl, retrieval.evidence, self._access)
        if redactor.active:
            await asyncio.to_thread(_mask_nodes, nodes, redactor)
        return nodes


def _mask_nodes(nodes: Sequence[NodeWithScore], redactor: Redactor) -> None:
    for item in nodes:
        node = item.node
        if isinstance(node, TextNode):
            node.text = redactor.text(node.text)
        node.metadata = redactor.scrub(node.metadata)


async def evidence_nodes(
    tl: Threadline, evidence: Sequence[Evidence], access: Access
) -> list[NodeWithScore]:
    """Evidence as LlamaIndex nodes with their provenance in the metadata (stored text:
    callers mask it with their redactor)."""
    nodes = []
    for source in await tl.browse(access).sources(evidence):
        item, chunk, doc = source.evidence, source.chunk, source.document
        section = doc.section_at(chunk.start)
        signals = {name: sig.model_dump(mode="json") for name, sig in item.signals.items()}
        metadata: dict[str, Any] = {
            "chunk_id": chunk.id,
            "document_id": doc.id,
            "title": doc.title,
            "source": doc.source,
            "version": doc.version,
            "start": chunk.start,
            "end": chunk.end,
            "page": section.page if section else None,
            "section": section.heading if section else None,
            "signals": signals,
            "facts": sorted({r for sig in item.signals.values() for r in sig.relations}),
            "entities": sorted({e for sig in item.signals.values() for e in sig.entities}),
            "tenant": access.tenant,
            "groups": sorted(access.groups),
        }
        hidden = [key for key in metadata if key not in {"title", "page", "section"}]
        node = TextNode(
            id_=chunk.id,
            text=chunk.text,
            metadata=metadata,
            excluded_llm_metadata_keys=hidden,
            excluded_embed_metadata_keys=hidden,
        )
        nodes.append(NodeWithScore(node=node, score=item.score))
    return nodes


def span_from_node(node: TextNode) -> SpanRef:
    """The Threadline span a retriever or query-engine node stands for."""
    meta = node.metadata
    if "claim" in meta:  # a query-engine node: its first cited span
        return SpanRef.model_validate(meta["spans"][0])
    return SpanRef(
        chunk_id=ChunkId(meta["chunk_id"]),
        document_id=DocumentId(meta["document_id"]),
        start=meta["start"],
        end=meta["end"],
        text=node.text,
        page=meta.get("page"),
        section=meta.get("section"),
    )


# ---------------------------------------------------------------------------- query engine


class ThreadlineQueryEngine(BaseQueryEngine):
    """Threadline's validated answer as a LlamaIndex ``Response``.

    ``response.response`` is the answer text; each source node is one claim (supported
    ones only unless ``include_unsupported``) whose text is the quoted source and whose
    metadata holds the claim, its verdict and reason, and its chain: ``facts``,
    ``spans`` (with page and heading) and ``documents``. ``response.metadata`` carries the
    whole answer (claims, evidence, timings).
    """

    def __init__(
        self,
        threadline: Threadline,
        *,
        access: Access | None = None,
        k: int = 5,
        include_unsupported: bool = False,
        pii: bool = False,
        session: ThreadlineSession | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._tl = threadline
        self._access = access or Access(tenant=threadline.settings.tenant)
        self._k = k
        self._include_unsupported = include_unsupported
        self._pii = pii
        self._session = session

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        return _blocking(self._session, self._answer(query_bundle.query_str), "query engine")

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await _on(self._session, self._answer(query_bundle.query_str))

    async def _answer(self, question: str) -> Response:
        redactor = await redactor_for(self._tl, self._access, pii=self._pii)
        question = await asyncio.to_thread(redactor.input, question)
        # Validated on the stored text, masked on the way out (lengths kept).
        answer = await redactor.scrubbed(await self._tl.ask(question, self._access, k=self._k))
        claims = [c for c in answer.claims if self._include_unsupported or c.verdict == "supported"]
        return Response(
            response=answer.answer,
            source_nodes=[_claim_node(i, c) for i, c in enumerate(claims)],
            metadata=_answer_metadata(answer),
        )


def _claim_node(index: int, claim: Claim) -> NodeWithScore:
    chain = claim.model_dump(mode="json")
    metadata: dict[str, Any] = {
        "claim": claim.text,
        "verdict": claim.verdict,
        "reason": claim.reason,
        "facts": chain["facts"],
        "spans": chain["spans"],
        "documents": chain["documents"],
        "page": claim.spans[0].page if claim.spans else None,
        "section": claim.spans[0].section if claim.spans else None,
        "title": claim.documents[0].title if claim.documents else None,
    }
    hidden = [key for key in metadata if key not in {"title", "page", "section"}]
    node = TextNode(
        id_=f"claim-{index}-{claim.spans[0].chunk_id if claim.spans else 'none'}",
        text="\n".join(span.text for span in claim.spans) or claim.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=1.0 if claim.verdict == "supported" else 0.0)


def _answer_metadata(answer: Answer) -> dict[str, Any]:
    dumped = answer.model_dump(mode="json")
    by_verdict: dict[str, int] = defaultdict(int)
    for claim in answer.claims:
        by_verdict[claim.verdict] += 1
    return {
        "question": dumped["question"],
        "claims": dumped["claims"],
        "evidence": dumped["evidence"],
        "timings_ms": dumped["timings_ms"],
        "verdicts": dict(by_verdict),
    }
