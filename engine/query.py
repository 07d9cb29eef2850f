"""The query pipeline: retrieve → draft → validate → finalize.

The query-side twin of :class:`~engine.ingest.Ingestor`. It runs one
:class:`~agents.Answerer` (extractive, model, or a model with the extractive answerer
behind it) the same way whichever it is, and yields each stage as an :class:`AskEvent`
so the CLI, the API's server-sent events and the notebooks can show progress.

A question is checked for text aimed at a model (:func:`extractors.find_injections`)
before anything else sees it. It is still answered: with ``injection="exclude"`` (the
default) the flagged words are cut out first, so no retriever, planner or model reads
them; with ``"quote"`` the question is kept whole (every prompt escapes it). Either way
the answer carries a warning (:attr:`graph.provenance.Answer.warnings`), and whatever a
model writes is validated against the sources, so a question cannot talk its way into an
unsupported claim.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from opentelemetry import trace

from agents import (
    NOT_FOUND,
    AnswerCheck,
    AnswerChecker,
    Answerer,
    Draft,
    HybridRetriever,
    Mode,
    ProvenanceValidator,
    Retrieval,
)
from extractors import find_injections
from extractors.prompts import PLAN, SUPPORT
from graph import Access, ChunkId, GraphStore, InputError
from graph.provenance import Answer, Claim, Evidence

__all__ = [
    "MAX_QUESTION_CHARS",
    "AskEvent",
    "QueryPipeline",
    "checked_question",
    "elapsed_ms",
    "screen_question",
    "usage_of",
]

_TRACER = trace.get_tracer("threadline.engine")

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True, slots=True)
class AskEvent:
    """One stage of a question's way through the pipeline.

    ``evidence`` (what retrieval found), ``token`` (answer text as a model writes it),
    ``answer`` (the draft text), ``claims`` (the validated claims and the final text),
    ``done`` (the whole :class:`Answer`).
    """

    kind: Literal["evidence", "token", "answer", "claims", "done"]
    text: str | None = None
    evidence: tuple[Evidence, ...] = ()
    claims: tuple[Claim, ...] = ()
    answer: Answer | None = None


def checked_question(question: str) -> str:
    """The question stripped, or :class:`InputError` if it is empty or too long."""
    text = question.strip()
    if not text:
        raise InputError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(
            f"the question is longer than {MAX_QUESTION_CHARS} characters; ask something shorter"
        )
    return text


def screen_question(question: str, injection: str = "exclude") -> tuple[str, tuple[str, ...]]:
    """The question to answer and the warnings for the caller (see the module docstring).

    Raises:
        InputError: the question is empty or too long, or (``exclude``) nothing is left
            once the text aimed at a model is cut out.
    """
    text = checked_question(question)
    flags = find_injections(text)
    if not flags:
        return text, ()
    kinds = ", ".join(dict.fromkeys(t.type for t in flags))
    if injection != "exclude":
        return text, (
            f"the question contains text aimed at a model ({kinds}); it was answered with "
            "that text quoted as data in model prompts",
        )
    kept, cursor = [], 0
    for tag in flags:
        kept.append(text[cursor : max(cursor, tag.start)])
        cursor = max(cursor, tag.end)
    kept.append(text[cursor:])
    rest = " ".join("".join(kept).split())
    if not any(ch.isalnum() for ch in rest):
        raise InputError(
            f"the question contains only text aimed at a model ({kinds}); ask a question "
            "about the documents"
        )
    return rest, (
        f"the question contains text aimed at a model ({kinds}); that text was left out "
        f"and the rest answered: {rest!r}",
    )


class QueryPipeline:
    """Answers questions with one retriever, one answerer and one validator."""

    def __init__(
        self,
        *,
        retriever: HybridRetriever,
        answerer: Answerer,
        validator: ProvenanceValidator,
        checker: AnswerChecker,
        injection: Literal["exclude", "quote"] = "exclude",
        graph: GraphStore | None = None,
    ) -> None:
        self.injection = injection
        self.graph = graph  # where chunk tags are read (None: evidence is not screened)
        self.retriever = retriever
        self.answerer = answerer
        self.validator = validator
        self.checker = checker

    async def retrieve(
        self, question: str, access: Access, *, k: int = 5, mode: Mode = "threadline"
    ) -> Retrieval:
        """Evidence chunks for a question, with the signals that found them."""
        return await self.retriever.retrieve(checked_question(question), access, k=k, mode=mode)

    async def _retrieve_unflagged(
        self, question: str, access: Access, *, k: int, mode: Mode
    ) -> Retrieval:
        """:meth:`retrieve`, without chunks flagged as text aimed at a model when
        ``injection="exclude"``: they are fetched past and the next best take their place,
        so neither a model nor the extractive answerer reads them."""
        retrieval = await self.retrieve(question, access, k=k, mode=mode)
        if self.injection != "exclude" or self.graph is None:
            return retrieval
        flagged = await self._flagged(retrieval, access)
        if not flagged:
            return retrieval
        retrieval = await self.retrieve(question, access, k=k + len(flagged), mode=mode)
        flagged |= await self._flagged(retrieval, access)
        kept = [e for e in retrieval.evidence if e.chunk_id not in flagged][:k]
        return replace(retrieval, evidence=kept)

    async def _flagged(self, retrieval: Retrieval, access: Access) -> set[ChunkId]:
        if self.graph is None:
            return set()
        chunks = await self.graph.chunks([e.chunk_id for e in retrieval.evidence], access)
        return {c.id for c in chunks if c.tagged("injection")}

    async def ask(
        self,
        question: str,
        access: Access,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        unsupported: bool = False,
    ) -> Answer:
        """The validated answer (see :meth:`stream`)."""
        async for event in self.stream(question, access, k=k, mode=mode, unsupported=unsupported):
            if event.answer is not None:
                return event.answer
        raise InputError("the question produced no answer")  # pragma: no cover - always done

    async def stream(
        self,
        question: str,
        access: Access,
        *,
        k: int = 5,
        mode: Mode = "threadline",
        unsupported: bool = False,
    ) -> AsyncIterator[AskEvent]:
        """Each stage as it completes. ``unsupported`` keeps claims the validator did not
        support (flagged) instead of removing them. The final text can differ from the
        streamed draft: an answer no supported claim states becomes "not found"."""
        with _TRACER.start_as_current_span(
            "threadline.ask", attributes={"threadline.mode": mode, "threadline.k": k}
        ) as span:
            started = time.perf_counter()
            question, warnings = screen_question(question, self.injection)
            with _TRACER.start_as_current_span("threadline.retrieve"):
                retrieval = await self._retrieve_unflagged(question, access, k=k, mode=mode)
            retrieved = time.perf_counter()
            span.set_attribute("threadline.evidence", len(retrieval.evidence))
            yield AskEvent(kind="evidence", evidence=tuple(retrieval.evidence))
            draft: Draft | None = None
            with _TRACER.start_as_current_span("threadline.answer"):
                async for part in self.answerer.stream(retrieval, access):
                    if isinstance(part, Draft):
                        draft = part
                    else:
                        yield AskEvent(kind="token", text=part)
            if draft is None:  # pragma: no cover - an answerer always ends with its draft
                draft = Draft(answer=NOT_FOUND, claims=())
            drafted = time.perf_counter()
            span.set_attribute("threadline.synthesis", draft.synthesis)
            yield AskEvent(kind="answer", text=draft.answer)
            with _TRACER.start_as_current_span("threadline.validate") as checked:
                validated_claims = await self.validator.validate(
                    draft.claims, access, evidence=draft.cited_from, problems=draft.problems
                )
                checked.set_attribute("threadline.claims", len(validated_claims))
            validated = time.perf_counter()
        check = self.checker.check(retrieval.question.text, draft.answer, validated_claims)
        text, claims = finalize(draft.answer, validated_claims, check, unsupported=unsupported)
        verdict, reason = check.verdict, check.reason
        if text == NOT_FOUND and verdict is not None:
            # A model's draft is not quoted: only validated model text leaves (an extractive
            # draft is a span of the documents and is).
            withheld = (
                "the model's drafted answer"
                if draft.synthesis == "model"
                else f"the drafted answer {draft.answer!r}"
            )
            reason = f"{withheld} was withheld ({verdict}: {reason})"
            verdict = None
        yield AskEvent(kind="claims", claims=claims, text=text)
        answer = Answer(
            question=retrieval.question.text,
            answer=text,
            mode=mode,
            claims=claims,
            evidence=tuple(retrieval.evidence),
            entities=tuple(retrieval.linked),
            plan=retrieval.plan.steps if retrieval.plan else (),
            plan_note=retrieval.plan.plan.note if retrieval.plan else "",
            synthesis=draft.synthesis,
            synthesis_note=draft.note,
            model=draft.model,
            prompts=self._prompts(retrieval, draft),
            usage=usage_of(draft),
            removed_claims=len(validated_claims) - len(claims),
            answer_verdict=verdict,
            answer_reason=reason,
            warnings=warnings,
            timings_ms={
                **retrieval.timings_ms,
                "retrieval": elapsed_ms(started, retrieved),
                "answer": elapsed_ms(retrieved, drafted),
                "validation": elapsed_ms(drafted, validated),
                "total": elapsed_ms(started, validated),
            },
        )
        yield AskEvent(kind="done", answer=answer, text=text)

    def _prompts(self, retrieval: Retrieval, draft: Draft) -> tuple[str, ...]:
        used = []
        if retrieval.plan is not None and retrieval.plan.plan.planner == "model":
            used.append(PLAN.id)
        used += draft.prompts
        if self.validator.judged:
            used.append(SUPPORT.id)
        return tuple(used)


def finalize(
    answer: str, claims: Sequence[Claim], check: AnswerCheck, *, unsupported: bool = False
) -> tuple[str, tuple[Claim, ...]]:
    """The answer text and the claims to show.

    The answer stands only when it follows from the supported claims (``check``); else
    it is "not found", and the supported claims stay as the best evidence. Claims the
    validator did not support are removed unless ``unsupported`` asks to keep them.
    """
    kept = tuple(c for c in claims if unsupported or c.verdict != "unsupported")
    return (answer if check.verdict == "supported" else NOT_FOUND), kept


def usage_of(draft: Draft) -> dict[str, int]:
    """The model tokens a draft spent (empty when no model wrote it)."""
    if not draft.usage.calls:
        return {}
    return {
        "prompt_tokens": draft.usage.prompt_tokens,
        "completion_tokens": draft.usage.completion_tokens,
        "calls": draft.usage.calls,
    }


def elapsed_ms(start: float, end: float) -> float:
    """Milliseconds between two ``time.perf_counter()`` readings, rounded."""
    return round((end - start) * 1000, 2)
