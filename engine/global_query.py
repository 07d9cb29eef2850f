"""Corpus-wide questions in the query pipeline: answered from communities, validated.

:class:`GlobalQueryPipeline` is a :class:`~engine.query.QueryPipeline` that sends a
question :func:`~agents.global_answer.is_global_question` recognises (in ``threadline``
mode) to the communities the caller may read, and every other question down the usual
path. The communities of the caller's scopes are brought up to date first; the points
(:class:`~agents.global_answer.GlobalAnswerer`) become claims checked by the same
provenance validator as any answer. With a model, the model writes the answer from the
points' sentences (:class:`~agents.ModelSynthesizer`) and its claims are validated the
same way; a model reply that cannot be used leaves the extractive points standing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

from agents import (
    NOT_FOUND,
    Binding,
    Draft,
    Mode,
    ModelSynthesizer,
    Retrieval,
    StepTrace,
    analyze_question,
    draft,
)
from agents.communities import CommunityBuilder
from agents.global_answer import GlobalAnswerer, GlobalDraft, is_global_question
from engine.query import AskEvent, QueryPipeline, elapsed_ms, screen_question, usage_of
from extractors import SpacyEntityExtractor
from extractors.chat import ModelReplyError
from graph import Access, GraphStore, LLMError
from graph.communities import Community
from graph.provenance import Answer, Claim, DocumentRef, Evidence, SpanRef

__all__ = ["GlobalQueryPipeline"]


class GlobalQueryPipeline(QueryPipeline):
    """The query pipeline with corpus-wide questions answered from communities."""

    def __init__(
        self,
        base: QueryPipeline,
        *,
        graph: GraphStore,
        builder: CommunityBuilder,
        answerer: GlobalAnswerer,
        extractor: SpacyEntityExtractor,
        synthesizer: ModelSynthesizer | None = None,
    ) -> None:
        super().__init__(
            retriever=base.retriever,
            answerer=base.answerer,
            validator=base.validator,
            checker=base.checker,
            injection=base.injection,
            graph=base.graph,
        )
        self._graph = graph
        self._builder = builder
        self._global = answerer
        self._extractor = extractor
        self._synthesizer = synthesizer

    async def stream(
        self,
        question: str,
        access: Access,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        unsupported: bool = False,
    ) -> AsyncIterator[AskEvent]:
        """Each stage as it completes; corpus-wide questions go to the communities."""
        text, warnings = screen_question(question, self.injection)
        communities: list[Community] = []
        if mode == "threadline" and is_global_question(text):
            await self._builder.refresh(await self._graph.community_scopes(access))
            communities = await self._graph.communities(access)
        if not communities:
            async for event in super().stream(
                question, access, k=k, mode=mode, unsupported=unsupported
            ):
                yield event
            return
        async for event in self._answer_globally(text, access, communities, unsupported):
            if event.answer is not None and warnings:
                answer = event.answer.model_copy(update={"warnings": warnings})
                event = AskEvent(kind=event.kind, text=event.text, answer=answer)  # noqa: PLW2901
            yield event

    async def _answer_globally(
        self, question: str, access: Access, communities: list[Community], unsupported: bool
    ) -> AsyncIterator[AskEvent]:
        started = time.perf_counter()
        plan = await self._global.draft(question, communities, access)
        claims = await self._global.claims(plan, access)
        evidence = tuple(
            Evidence(chunk_id=c.spans[0].chunk_id, document_id=c.spans[0].document_id,
                     score=float(c.support or 0), signals={})
            for c in claims
        )  # fmt: skip
        mapped = time.perf_counter()
        yield AskEvent(kind="evidence", evidence=evidence)
        text, written, model, note = _listed(claims), list(claims), None, ""
        if self._synthesizer is not None and claims:
            text, written, model, note = await self._written(
                self._synthesizer, question, claims, evidence, access
            )
        yield AskEvent(kind="answer", text=text)
        drafted = time.perf_counter()
        validated = await self.validator.validate(
            written, access, evidence={e.chunk_id for e in evidence}
        )
        checked = time.perf_counter()
        kept = tuple(c for c in validated if unsupported or c.verdict != "unsupported")
        supported = [c for c in validated if c.verdict == "supported"]
        if not supported:
            text = NOT_FOUND
        elif model is None:
            text = _listed(supported)
        yield AskEvent(kind="claims", claims=kept, text=text)
        answer = Answer(
            question=question,
            answer=text,
            mode="global",
            claims=kept,
            evidence=evidence,
            plan=(_trace(plan, (mapped - started) * 1000),),
            plan_note=f"corpus-wide question: answered from {len(plan.consulted)} of "
            f"{len(communities)} communities",
            synthesis="model" if model is not None else "extractive",
            synthesis_note=note,
            model=model.model if model is not None else None,
            prompts=model.prompts if model is not None else (),
            usage=(usage_of(model) if model is not None else {}),
            removed_claims=len(validated) - len(kept),
            answer_verdict="supported" if supported else None,
            answer_reason=(
                "the answer lists points, each stated by a supported claim"
                if model is None
                else "the model's answer is checked claim by claim"
            )
            if supported
            else "",
            timings_ms={
                "communities": elapsed_ms(started, mapped),
                "answer": elapsed_ms(mapped, drafted),
                "validation": elapsed_ms(drafted, checked),
                "total": elapsed_ms(started, checked),
            },
        )
        yield AskEvent(kind="done", answer=answer, text=text)

    async def summarize(self, community: Community, access: Access) -> Answer:
        """A community's summary as a validated answer: its cited sentences, written into
        prose by the model when one is configured (claims checked like any answer's)."""
        docs = {
            d.id: d
            for d in await self._graph.documents(
                access, ids=list({s.document_id for s in community.sentences}), limit=100
            )
        }
        claims = [
            Claim(
                text=s.text,
                spans=(SpanRef.of(docs[s.document_id], s.chunk_id, s.start, s.end, s.text),),
                documents=(DocumentRef.of(docs[s.document_id]),),
                communities=(community.id,),
                support=community.passages,
            )
            for s in community.sentences
            if s.document_id in docs
        ]
        evidence = tuple(
            Evidence(chunk_id=c.spans[0].chunk_id, document_id=c.spans[0].document_id,
                     score=float(community.passages), signals={})
            for c in claims
        )  # fmt: skip
        question = f"Summarize what the sources say about {community.name}."
        text, written, model, note = _listed(claims), list(claims), None, ""
        if self._synthesizer is not None and claims:
            text, written, model, note = await self._written(
                self._synthesizer, question, claims, evidence, access
            )
        validated = await self.validator.validate(
            written, access, evidence={e.chunk_id for e in evidence}
        )
        kept = tuple(c for c in validated if c.verdict == "supported")
        if model is None:
            text = _listed(kept)
        return Answer(
            question=question,
            answer=text if kept else NOT_FOUND,
            mode="community",
            claims=kept,
            evidence=evidence,
            synthesis="model" if model is not None else "extractive",
            synthesis_note=note,
            model=model.model if model is not None else None,
            prompts=model.prompts if model is not None else (),
            usage=(usage_of(model) if model is not None else {}),
            removed_claims=len(validated) - len(kept),
            answer_verdict="supported" if kept else None,
            answer_reason="each point is a supported claim" if kept else "",
        )

    async def _written(
        self,
        synthesizer: ModelSynthesizer,
        question: str,
        claims: Sequence[Claim],
        evidence: tuple[Evidence, ...],
        access: Access,
    ) -> tuple[str, list[Claim], Draft | None, str]:
        """The model's answer from the points' chunks (and its draft), its claims tagged
        with the communities of the chunks they cite; the extractive points (and why) when
        the model's reply cannot be used."""
        assert self._synthesizer is not None
        analysis = await asyncio.to_thread(analyze_question, question, self._extractor)
        retrieval = Retrieval(question=analysis, evidence=list(evidence), linked=[])
        try:
            written = await draft(synthesizer, retrieval, access)
        except (LLMError, ModelReplyError) as exc:
            note = f"the model's answer could not be used ({exc}); the points are quoted"
            return _listed(claims), list(claims), None, note
        by_chunk = {c.spans[0].chunk_id: c for c in claims}
        tagged = []
        for claim in written.claims:
            sources = [by_chunk[s.chunk_id] for s in claim.spans if s.chunk_id in by_chunk]
            ids = tuple(dict.fromkeys(i for c in sources for i in c.communities))
            support = max((c.support or 0 for c in sources), default=0)
            tagged.append(claim.model_copy(update={"communities": ids, "support": support}))
        tagged.sort(key=lambda c: -(c.support or 0))
        return written.answer, tagged, written, ""


def _listed(claims: Sequence[Claim]) -> str:
    if not claims:
        return NOT_FOUND
    lines = [f"{n}. {' '.join(c.text.split())}" for n, c in enumerate(claims, 1)]
    return "The sources, most widely supported point first:\n" + "\n".join(lines)


def _trace(plan: GlobalDraft, ms: float) -> StepTrace:
    return StepTrace(
        id="communities",
        kind="lookup",
        depends_on=(),
        input={"communities": len(plan.consulted)},
        output=tuple(
            Binding(name=c.name, score=float(c.passages), entity_id=None) for c in plan.consulted
        ),
        evidence=tuple(c.id for c in plan.consulted),
        ms=round(ms, 2),
        note="communities consulted, by relevance to the question and passages spanned",
    )
