"""Verification: claims and answers written elsewhere, checked against the stored text and
graph the key may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import Field

from engine.api.deps import Caller, Redact, Svc
from engine.verify import MAX_ITEMS, VerifyItem, VerifyResult

__all__ = ["router"]

router = APIRouter(prefix="/v1")

Items = Annotated[list[VerifyItem], Field(min_length=1, max_length=MAX_ITEMS)]

_EXAMPLE = {
    "id": "c1",
    "question": "Who acquired Globex?",
    "answer": "Acme",
    "claims": [
        {
            "text": "Acme acquired Globex in 2024.",
            "citations": [{"source": "memo-7", "start": 0, "end": 29}],
        }
    ],
}


@router.post("/verify", tags=["verification"])
async def verify(
    body: Annotated[VerifyItem | Items, Body(examples=[_EXAMPLE, [_EXAMPLE]])],
    service: Svc,
    key: Caller,
    redact: Redact,
) -> VerifyResult | list[VerifyResult]:
    """Verify claims (and the answer they support) written by anyone against the documents
    the key may read.

    Each citation names a document by the source id it was ingested with (``source``) or
    by id (``document``) and a range of its text (``start``, ``end``). One item in, one
    result out; a list (at most 100 items) in, a list out in the same order. A document the
    key cannot read is cited in vain: the claim is ``unsupported`` with the same reason as
    for a document that does not exist.

    Without the ``pii`` permission, personal data in the items is masked before they are
    checked (a guessed value cannot be confirmed) and in the results.
    """
    items = await redact.scrubbed_input(body if isinstance(body, list) else [body])
    results = await service.bounded(service.tl.verify(items, key.access))
    await service.record(
        key,
        "verify",
        items=len(items),
        claims=sum(len(r.claims) for r in results),
        cited_documents=sorted({d for r in results for d in r.cited_documents}),
        verdicts=[c.verdict for r in results for c in r.claims],
        answer_verdicts=[r.answer_verdict for r in results],
    )
    shown = await redact.scrubbed(results)
    return shown if isinstance(body, list) else shown[0]
