"""Subject requests (admin keys only): export or erase everything that mentions a person
(see :mod:`engine.subjects`). Both are audited with a salted hash of the subject, never
its value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import Caller, Svc, require_admin
from engine.subjects import (
    EraseReport,
    SubjectReport,
    erase_subject,
    find_subject,
    parse_subject,
    subject_ref,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["subjects"])


class SubjectIn(BaseModel):
    """Whom a subject request is about."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=500, description="a person's name or e-mail address")


class EraseIn(SubjectIn):
    """An erase: redact the documents in place (default) or delete them."""

    delete: bool = Field(default=False, description="delete the documents instead")
    confirm: bool = Field(
        default=False, description="confirm an erase that changes more than 100 documents"
    )


@router.post("/subjects/export")
async def export_subject(body: SubjectIn, service: Svc, key: Caller) -> SubjectReport:
    """Every document, chunk, entity, fact, feedback rating, cached answer and audit field
    that mentions the subject, with ids, offsets and excerpts (admin keys only)."""
    require_admin(key)
    ref = subject_ref(parse_subject(body.subject))
    report = await service.bounded(
        find_subject(
            service.tl, body.subject, feedback=service.feedback, audit_path=service.audit.chain
        )
    )
    await service.record(
        key,
        "subject.export",
        **ref,
        documents=len(report.documents),
        occurrences=len(report.occurrences),
    )
    return report


@router.post("/subjects/erase")
async def erase(body: EraseIn, service: Svc, key: Caller) -> EraseReport:
    """Erase the subject: documents redacted and re-ingested in place (or deleted), feedback
    masked, cache entries dropped, audit fields redacted (admin keys only)."""
    require_admin(key)
    ref: dict[str, Any] = subject_ref(parse_subject(body.subject))
    mode = "delete" if body.delete else "redact"
    async with (
        service.jobs.writes,
        service.audited(key, "subject.erase", mode=mode, **ref) as outcome,
    ):
        report = await find_subject(
            service.tl, body.subject, feedback=service.feedback, audit_path=service.audit.chain
        )
        erased = await erase_subject(
            service.tl,
            report,
            delete=body.delete,
            confirm=body.confirm,
            feedback=service.feedback,
            audit_path=service.audit.chain,
            audit_fields={"key_id": key.id, "reason": "subject.erase", **ref},
        )
        outcome.fields.update(
            documents=erased.documents,
            feedback=erased.feedback,
            cache=erased.cache,
            audit_records=erased.audit_records,
        )
    return erased
