"""Questions: answers with checked provenance (JSON or Server-Sent Events), search, and
feedback on answers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from engine.api.deps import Caller, Service, Svc
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
from graph import InputError, ThreadlineError
from graph.provenance import Answer

__all__ = ["router"]

router = APIRouter(prefix="/v1")

_STAGES = ("parse_embed", "dense", "sparse", "link", "graph", "fuse", "answer", "validation")


@router.post("/ask", tags=["questions"], response_model=None)
async def ask(body: AskRequest, request: Request, service: Svc, key: Caller) -> Any:
    """Answer a question with claims, provenance chains and verdicts.

    With ``"stream": true`` (or ``Accept: text/event-stream``) the stages arrive as
    Server-Sent Events: ``evidence``, ``token`` (model answers: the text as it is
    written), ``answer``, ``claims``, then ``done`` with the whole answer.
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
    if not wants_stream:
        answer = await service.bounded(service.tl.ask(body.question, key.access, **options))
        await _record_answer(service, key, request_id, answer)
        return answer.model_dump(mode="json")

    return EventSourceResponse(_events(service, key, request_id, body.question, options), ping=15)


@router.post("/search", tags=["questions"])
async def search(body: SearchRequest, service: Svc, key: Caller) -> SearchOut:
    """Chunks that answer a query, with scores, exact text and the signals that found them."""
    retrieval = await service.bounded(
        service.tl.retrieve(body.query, key.access, k=body.k, mode=body.mode)
    )
    sources = await service.tl.browse(key.access).sources(retrieval.evidence)
    await service.record(
        key,
        "search",
        query_sha256=_sha256(body.query),
        mode=body.mode,
        hits=len(sources),
        documents=sorted({s.document.id for s in sources}),
    )
    return SearchOut(hits=[search_hit(s) for s in sources])


@router.post("/feedback", status_code=201, tags=["feedback"])
async def feedback(body: FeedbackIn, service: Svc, key: Caller) -> FeedbackOut:
    """Rate an answer (kept for evaluation)."""
    feedback_id = await service.feedback.add(
        key_id=key.id,
        tenant=key.tenant,
        question=body.question,
        answer=body.answer,
        rating=body.rating,
        comment=body.comment,
        request_id=body.request_id,
        spans=[s.model_dump() for s in body.spans],
    )
    return FeedbackOut(id=feedback_id)


async def _events(
    service: Service, key: ApiKey, request_id: str, question: str, options: dict[str, Any]
) -> AsyncIterator[dict[str, str]]:
    """The stages of an answer as Server-Sent Events; an error ends the stream as an
    ``error`` event with the usual error body."""
    try:
        async for event in service.tl.ask_stream(question, key.access, **options):
            if event.kind == "token":
                yield {"event": "token", "data": _json({"text": event.text})}
            elif event.kind == "evidence":
                data = [e.model_dump(mode="json") for e in event.evidence]
                yield {"event": "evidence", "data": _json(data)}
            elif event.kind == "answer":
                yield {"event": "answer", "data": _json({"text": event.text})}
            elif event.kind == "claims":
                data = [c.model_dump(mode="json") for c in event.claims]
                yield {"event": "claims", "data": _json(data)}
            elif event.answer is not None:
                await _record_answer(service, key, request_id, event.answer)
                yield {"event": "done", "data": _json(event.answer.model_dump(mode="json"))}
    except ThreadlineError as exc:
        _, code, _ = error_status(exc)
        yield {"event": "error", "data": _json(error_body(code, str(exc)))}


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
