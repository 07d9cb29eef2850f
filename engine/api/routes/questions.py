"""Questions: answers with checked provenance (JSON or Server-Sent Events), search, and
feedback on answers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from sse_starlette.sse import EventSourceResponse

from engine.api.deps import Caller, Redact, Service, Svc
from engine.api.errors import error_body, error_status
from engine.api.schemas import (
    AskRequest,
    FeedbackIn,
    FeedbackOut,
    SearchOut,
    SearchRequest,
    search_hit,
)
from engine.keys import ApiKey
from engine.query import AskEvent
from engine.redaction import Redactor, StreamMasker, redactor_for
from graph import InputError, ThreadlineError
from graph.provenance import Answer

__all__ = ["router"]

router = APIRouter(prefix="/v1")

_STAGES = ("parse_embed", "dense", "sparse", "link", "graph", "fuse", "answer", "validation")


@router.post("/ask", tags=["questions"], response_model=None)
async def ask(body: AskRequest, request: Request, service: Svc, key: Caller, redact: Redact) -> Any:
    """Answer a question with claims, provenance chains and verdicts.

    With ``"stream": true`` (or ``Accept: text/event-stream``) the stages arrive as
    Server-Sent Events: ``evidence``, ``claims`` (validated), then ``done`` with the whole
    answer. Only validated content is sent unless ``"stream_draft": true`` asks for the
    draft too: ``token`` events (model answers: the text as it is written) and an
    ``answer`` event with the drafted text, each marked ``"unverified": true`` (the final
    answer can differ: what no supported claim states is withheld).

    Without the ``pii`` permission, personal data is masked in the question before it is
    answered and in everything sent back (tokens go out a line at a time, masked).
    """
    request_id = request.state.request_id
    if body.llm and service.settings.model.base_url is None:
        raise InputError(
            '"llm": true needs a model server, and this service has none configured '
            "(THREADLINE_MODEL__BASE_URL); ask without it for an extractive answer"
        )
    wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if wants_stream:  # over quota: a 429 before the stream starts, not an error event
        await service.tl.check_quota(key.access, llm=body.llm)
    options: dict[str, Any] = {
        "k": body.k,
        "mode": body.mode,
        "llm": body.llm,
        "unsupported": body.unsupported,
    }
    question = redact.input(body.question)
    if not wants_stream:
        answer = await service.bounded(service.tl.ask(question, key.access, **options))
        await _record_answer(service, key, request_id, answer)
        # Serialised once, by pydantic (not dumped to dicts and encoded again).
        shown = await redact.scrubbed(answer)
        return Response(shown.model_dump_json(), media_type="application/json")

    events = _events(service, key, redact, request_id, question, options, draft=body.stream_draft)
    return EventSourceResponse(events, ping=15)


@router.post("/search", tags=["questions"])
async def search(body: SearchRequest, service: Svc, key: Caller, redact: Redact) -> SearchOut:
    """Chunks that answer a query, with scores, exact text and the signals that found them."""
    query = redact.input(body.query)
    retrieval = await service.bounded(
        service.tl.retrieve(query, key.access, k=body.k, mode=body.mode)
    )
    sources = await service.tl.browse(key.access).sources(retrieval.evidence)
    await service.record(
        key,
        "search",
        query_sha256=_sha256(query),
        mode=body.mode,
        hits=len(sources),
        documents=sorted({s.document.id for s in sources}),
    )
    return await redact.scrubbed(SearchOut(hits=[search_hit(s) for s in sources]))


@router.post("/feedback", status_code=201, tags=["feedback"])
async def feedback(body: FeedbackIn, service: Svc, key: Caller) -> FeedbackOut:
    """Rate an answer (kept for evaluation, with personal data masked whatever the key's
    permissions: the feedback file is no copy of the documents)."""
    kept = await redactor_for(service.tl, key.access)
    feedback_id = await service.feedback.add(
        key_id=key.id,
        tenant=key.tenant,
        question=kept.text(body.question),
        answer=kept.text(body.answer),
        rating=body.rating,
        comment=kept.text(body.comment),
        request_id=body.request_id,
        spans=[s.model_dump() for s in body.spans],
    )
    return FeedbackOut(id=feedback_id)


async def _events(
    service: Service,
    key: ApiKey,
    redact: Redactor,
    request_id: str,
    question: str,
    options: dict[str, Any],
    *,
    draft: bool = False,
) -> AsyncIterator[dict[str, str]]:
    """The stages of an answer as Server-Sent Events, masked by ``redact``; an error ends
    the stream as an ``error`` event with the usual error body."""
    tokens = StreamMasker(redact)
    try:
        stages = service.tl.ask_stream(question, key.access, **options)
        async for event in stages if draft else _validated(stages):
            if event.kind == "token":
                if text := tokens.feed(event.text or ""):
                    yield {"event": "token", "data": _json({"text": text, "unverified": True})}
                continue
            if rest := tokens.flush():
                yield {"event": "token", "data": _json({"text": rest, "unverified": True})}
            if event.kind == "evidence":
                shown = await redact.scrubbed(event.evidence)
                data = [e.model_dump(mode="json") for e in shown]
                yield {"event": "evidence", "data": _json(data)}
            elif event.kind == "answer":
                drafted = None if event.text is None else redact.text(event.text)
                yield {"event": "answer", "data": _json({"text": drafted, "unverified": True})}
            elif event.kind == "claims":
                claims = await redact.scrubbed(event.claims)
                data = [c.model_dump(mode="json") for c in claims]
                yield {"event": "claims", "data": _json(data)}
            elif event.answer is not None:
                await _record_answer(service, key, request_id, event.answer)
                done = await redact.scrubbed(event.answer)
                yield {"event": "done", "data": done.model_dump_json()}
    except ThreadlineError as exc:
        _, code, _ = error_status(exc)
        yield {"event": "error", "data": _json(error_body(code, str(exc)))}


async def _validated(stages: AsyncIterator[AskEvent]) -> AsyncIterator[AskEvent]:
    """The stages without the unvalidated draft (``token`` and ``answer`` events)."""
    async for event in stages:
        if event.kind not in ("token", "answer"):
            yield event


async def _record_answer(service: Service, key: ApiKey, request_id: str, answer: Answer) -> None:
    for stage in _STAGES:
        if stage in answer.timings_ms:
            service.metrics.stage.labels(stage).observe(answer.timings_ms[stage] / 1000)
    for claim in answer.claims:
        service.metrics.claims.labels(claim.verdict).inc()
    cited = sorted({d.document_id for c in answer.claims for d in c.documents})
    await service.audit.append(
        "ask",
        request_id=request_id,
        key_id=key.id,
        tenant=key.tenant,
        question_sha256=_sha256(answer.question),
        mode=answer.mode,
        cited_documents=cited,
        verdicts=[c.verdict for c in answer.claims],
    )


def _sha256(text: str) -> str:
    """What the audit log keeps of a question: repeats can be matched, the text is not kept."""
    return hashlib.sha256(text.encode()).hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
