"""Documents: ingest (JSON or uploaded files, as jobs), list, read and delete."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from engine.api.deps import Caller, Redact, Svc
from engine.api.schemas import (
    DeleteOut,
    DocumentList,
    DocumentOut,
    IngestRequest,
    JobOut,
    document_out,
)
from engine.api.uploads import check_upload, stage_uploads
from engine.keys import ApiKey
from engine.readers import SourceDocument
from graph import Access, InputError, PermissionDeniedError

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["documents"])


def _tenant(key: ApiKey, asked: str | None, groups: Sequence[str] = ()) -> str:
    """The tenant to write for, once the key may write it with ``groups``."""
    if asked is not None and not key.admin and asked != key.tenant:
        raise PermissionDeniedError("only admin keys may ingest for another tenant")
    tenant = asked or key.tenant
    if tenant is None:
        raise InputError("admin keys must name the tenant to ingest for")
    key.check_write(tenant, groups)
    return tenant


@router.post("/documents", status_code=202)
async def ingest_documents(
    body: IngestRequest, request: Request, service: Svc, key: Caller
) -> JobOut:
    """Ingest documents given as JSON. Runs as a job; poll ``GET /v1/jobs/{id}``."""
    tenant = _tenant(key, body.tenant, body.groups)
    sources = [
        SourceDocument(
            source=d.id, title=d.title or d.id, text=d.text, origin=f"request document {d.id}"
        )
        for d in body.documents
    ]
    job = await service.jobs.start(
        key, tenant, list(body.groups), lambda: sources, request.state.request_id
    )
    return job.out()


@router.post("/documents/upload", status_code=202)
async def upload_documents(
    request: Request,
    service: Svc,
    key: Caller,
    files: Annotated[list[UploadFile], File(description="files to ingest")],
    groups: Annotated[list[str] | None, Form()] = None,
    tenant: Annotated[str | None, Form()] = None,
    reader: Annotated[Literal["builtin", "llamaindex"], Form()] = "builtin",
) -> JobOut:
    """Ingest uploaded files (.txt, .md, .html, .jsonl, .pdf, .docx) as a job."""
    chosen = _tenant(key, tenant, groups or ())
    Access(tenant=chosen, groups=frozenset(groups or ()))  # validates the group names
    # Names, types, sizes and encodings are checked before anything is stored, so a bad
    # upload is a 400 naming the file; reading proper runs in the job's worker thread.
    limit = service.tl.settings.ingest.max_document_bytes
    checked = [
        await asyncio.to_thread(
            check_upload,
            upload.filename,
            number,
            await upload.read(),
            reader=reader,
            max_bytes=limit,
        )
        for number, upload in enumerate(files)
    ]
    read = await asyncio.to_thread(stage_uploads, service.tl, checked, reader=reader)
    job = await service.jobs.start(key, chosen, list(groups or ()), read, request.state.request_id)
    return job.out()


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, service: Svc, key: Caller) -> JobOut:
    """An ingest job's status, progress and report."""
    job = await service.jobs.get(job_id, key)
    await service.record(key, "job.read", job_id=job.id)
    return job.out()


@router.get("/documents")
async def list_documents(
    service: Svc,
    key: Caller,
    redact: Redact,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DocumentList:
    """Documents the key may read, by source."""
    docs = await service.bounded(
        service.tl.browse(key.access).documents(limit=limit, offset=offset)
    )
    await service.record(key, "documents.list", documents=[d.id for d in docs])
    return await redact.scrubbed(DocumentList(documents=[document_out(d) for d in docs]))


@router.get("/documents/{document_id}")
async def get_document(document_id: str, service: Svc, key: Caller, redact: Redact) -> DocumentOut:
    """One document with its text, sections, personal-data counts and injection flags."""
    browser = service.tl.browse(key.access)
    doc = await browser.document(document_id)
    privacy = await browser.privacy([doc])
    await service.record(key, "document.read", documents=[doc.id])
    return await redact.scrubbed(document_out(doc, text=True, privacy=privacy.get(doc.id)))


@router.delete("/documents/{document_id}")
async def delete_document(
    document_id: str, request: Request, service: Svc, key: Caller
) -> DeleteOut:
    """Delete a document of the key's tenant with everything only it supports."""
    # Only a document the key may read: any other answers 404, as if it did not exist.
    doc = await service.tl.browse(key.access).document(document_id)
    async with (
        service.jobs.writes,
        service.audited(key, "delete", tenant=doc.tenant, documents=[doc.id]) as outcome,
    ):
        report = await service.tl.delete([doc.id], key.access)
        outcome.fields["removed"] = report.model_dump()
    return DeleteOut(**report.model_dump())
