"""The analyst query API: ``threadline serve``, FastAPI on uvicorn, versioned under ``/v1``.

Every request names an API key (``Authorization: Bearer tl_...`` or ``X-API-Key``) that
maps to a tenant and groups; every read passes that access to the stores, which filter
inside their queries, so another tenant's documents, chunks, entities and facts do not
exist for the caller on any endpoint. Errors are JSON ``{error, message, detail}`` and
never carry a stack trace. Ingests, deletes, asks and key operations are appended to the
hash-chained audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.audit import AuditLog
from engine.ingest import IngestReport
from engine.keys import ApiKey, KeyStore
from engine.readers import SourceDocument
from engine.settings import Settings
from engine.telemetry import REQUEST_ID, Metrics, configure_tracing
from engine.threadline import Threadline
from graph import (
    Access,
    ConfigError,
    DocumentId,
    EntityId,
    InputError,
    LLMError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    StoreUnavailableError,
    ThreadlineError,
)
from graph.provenance import Answer

__all__ = ["create_app"]

logger = logging.getLogger("threadline.api")
_TRACER = trace.get_tracer("threadline.api")
T = TypeVar("T")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
Mode = Literal["threadline", "single", "dense"]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s*][^\s]*$")]


# ---------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error with an HTTP status and a machine-readable code."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers


def _check_model(service: Any, body: AskRequest) -> None:
    if body.llm and service.tl.settings.model.base_url is None:
        raise InputError(
            '"llm": true needs a model server, and this service has none configured '
            "(THREADLINE_MODEL__BASE_URL); ask without it for an extractive answer"
        )


def _status(exc: ThreadlineError) -> tuple[int, str]:
    table: list[tuple[type[ThreadlineError], int, str]] = [
        (InputError, 400, "invalid_input"),
        (NotFoundError, 404, "not_found"),
        (PermissionDeniedError, 403, "forbidden"),
        (StoreUnavailableError, 503, "store_unavailable"),
        (StoreError, 500, "store_error"),
        (ConfigError, 500, "configuration"),
        (LLMError, 502, "model_error"),
    ]
    for kind, status, code in table:
        if isinstance(exc, kind):
            return status, code
    return 500, "error"


def _body(error: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "message": message, "detail": detail}


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["no document doc_1234 you can read"])
    detail: Any = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 422, 429, 500, 503, 504)
}


# ---------------------------------------------------------------------------- models


class DocumentIn(BaseModel):
    """One document to ingest."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=2000, description="your id; re-sending replaces")
    title: str = Field(default="", max_length=2000)
    text: str = Field(min_length=1)


class IngestRequest(BaseModel):
    """Documents to ingest for the key's tenant (admins may name a tenant)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {"id": "memo-1", "title": "Memo", "text": "Ada Lovelace met Babbage."}
                    ],
                    "groups": ["research"],
                }
            ]
        },
    )

    documents: list[DocumentIn] = Field(min_length=1, max_length=10_000)
    groups: list[Name] = Field(default_factory=list, max_length=100)
    tenant: Name | None = Field(default=None, description="admin keys only")


class JobOut(BaseModel):
    """An ingest job; poll ``GET /v1/jobs/{id}`` until it has finished."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    tenant: str
    done: int = 0
    total: int = 0
    report: IngestReport | None = None
    error: ErrorBody | None = None
    created_at: datetime
    finished_at: datetime | None = None


class SectionOut(BaseModel):
    start: int
    end: int
    page: str | None = None
    heading: str | None = None


class DocumentOut(BaseModel):
    id: str
    source: str
    title: str
    version: int
    tenant: str
    groups: list[str]
    ingested_at: datetime
    chars: int
    sections: list[SectionOut] = []
    text: str | None = None


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class DeleteOut(BaseModel):
    documents: int
    chunks: int
    mentions: int
    relations: int
    entities: int


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "Who designed the Analytical Engine?", "k": 5}]
        },
    )

    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Mode = "threadline"
    stream: bool = Field(default=False, description="Server-Sent Events instead of one JSON")
    llm: bool | None = Field(
        default=None,
        description="the configured model writes the answer (default: THREADLINE_MODEL__SYNTHESIS)",
    )
    unsupported: bool = Field(
        default=False, description="keep claims the validator did not support (flagged)"
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "Analytical Engine designer", "k": 10}]},
    )

    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=10, ge=1, le=100)
    mode: Mode = "threadline"


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    title: str
    score: float
    start: int
    end: int
    text: str
    page: str | None = None
    section: str | None = None
    signals: dict[str, Any]


class SearchOut(BaseModel):
    hits: list[SearchHit]


class EntityOut(BaseModel):
    id: str
    name: str
    type: str
    aliases: list[str] = []


class EntityList(BaseModel):
    entities: list[EntityOut]


class MentionOut(BaseModel):
    chunk_id: str
    document_id: str
    start: int
    end: int
    text: str


class FactOut(BaseModel):
    id: str
    subject: str
    predicate: str
    object: str
    kind: str
    confidence: float
    evidence: list[MentionOut]


class EntityDetail(BaseModel):
    entity: EntityOut
    mentions: list[MentionOut]
    facts: list[FactOut]


class GraphNode(BaseModel):
    id: str
    label: str
    type: str


class GraphEdge(BaseModel):
    id: str
    source: str
    target: str
    predicate: str
    kind: str
    confidence: float
    evidence: int


class Subgraph(BaseModel):
    """Nodes and edges, ready for a graph widget."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool


class PathOut(BaseModel):
    entities: list[EntityOut]
    facts: list[FactOut]


class PathList(BaseModel):
    paths: list[PathOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "Who designed the Analytical Engine?",
                    "answer": "Charles Babbage",
                    "rating": 5,
                    "comment": "right, and the page citation helped",
                }
            ]
        },
    )

    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(default="", max_length=20_000)
    rating: int = Field(ge=1, le=5, description="1 (wrong) to 5 (right and well sourced)")
    comment: str = Field(default="", max_length=5000)
    request_id: str | None = Field(default=None, max_length=128)


class FeedbackOut(BaseModel):
    id: str


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tenant": "acme", "groups": ["research"], "name": "bi"}]},
    )

    tenant: Name | None = None
    groups: list[Name] = Field(default_factory=list, max_length=100)
    admin: bool = False
    name: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    id: str
    name: str
    tenant: str | None
    groups: list[str]
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None


class NewKeyOut(BaseModel):
    key: KeyOut
    secret: str = Field(description="the API key; shown once, not stored")


class KeyList(BaseModel):
    keys: list[KeyOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# ---------------------------------------------------------------------------- state


@dataclass
class _Job:
    id: str
    tenant: str
    owner: str
    created_at: datetime
    status: Literal["queued", "running", "succeeded", "failed"] = "queued"
    done: int = 0
    total: int = 0
    report: IngestReport | None = None
    error: ErrorBody | None = None
    finished_at: datetime | None = None

    def out(self) -> JobOut:
        return JobOut(**{k: v for k, v in vars(self).items() if k != "owner"})


class _Bucket:
    """Token bucket: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 when a request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class _Service:
    settings: Settings
    tl: Threadline
    keys: KeyStore
    audit: AuditLog
    feedback: sqlite3.Connection
    metrics: Metrics
    jobs: dict[str, _Job] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def bounded(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return asyncio.wait_for(coro, self.settings.api.request_timeout_s)


def _service(request: Request) -> _Service:
    service: _Service = request.app.state.service
    return service


# ---------------------------------------------------------------------------- middleware


class BodyLimit:
    """Refuse request bodies over the limit (413) before the app reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, _body("too_large", self._message()))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, "too_large", self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return (
            f"the request body is over the {self.limit / 1e6:.1f} MB limit; "
            "split the upload or raise THREADLINE_API__MAX_BODY_BYTES"
        )


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = JSONResponse(payload).body
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")


# ---------------------------------------------------------------------------- auth


async def principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer tl_<id>_<secret>")] = None,
    x_api_key: Annotated[str | None, Header(description="tl_<id>_<secret>")] = None,
) -> AsyncIterator[ApiKey]:
    """The caller's key, within its rate and concurrency limits."""
    service = _service(request)
    presented = x_api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <API key>'")
        presented = value
    if not presented:
        raise ApiError(401, "unauthenticated", "an API key is required (Authorization: Bearer ...)")
    try:
        key = await asyncio.to_thread(service.keys.authenticate, presented)
    except PermissionDeniedError as exc:
        raise ApiError(401, "unauthenticated", str(exc)) from exc
    request.state.key_id = key.id
    limits = service.settings.api
    bucket = service.buckets.setdefault(key.id, _Bucket(limits.rate_per_minute / 60, limits.burst))
    wait = bucket.take()
    if wait > 0:
        service.metrics.limited.labels("rate").inc()
        raise ApiError(
            429,
            "rate_limited",
            f"over {limits.rate_per_minute} requests per minute for this key",
            headers={"Retry-After": str(max(1, round(wait + 0.5)))},
        )
    if service.active[key.id] >= limits.max_concurrent_per_key:
        service.metrics.limited.labels("concurrency").inc()
        raise ApiError(
            429,
            "too_many_concurrent",
            f"over {limits.max_concurrent_per_key} requests in flight for this key",
            headers={"Retry-After": "1"},
        )
    service.active[key.id] += 1
    try:
        yield key
    finally:
        service.active[key.id] -= 1


Caller = Annotated[ApiKey, Depends(principal)]


def _admin(key: ApiKey) -> None:
    if not key.admin:
        raise ApiError(403, "forbidden", "this needs an admin key")


# ---------------------------------------------------------------------------- app


def create_app(settings: Settings) -> FastAPI:  # noqa: PLR0915 - the app in one place
    """The ASGI app; Threadline and the key store open when it starts."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_tracing(settings.telemetry)
        tl = await Threadline.open(settings)
        keys = KeyStore(settings.data_dir / "keys.sqlite")
        audit = AuditLog(settings.data_dir / "audit.log")
        feedback = sqlite3.connect(
            settings.data_dir / "feedback.sqlite", check_same_thread=False, isolation_level=None
        )
        feedback.execute(
            "CREATE TABLE IF NOT EXISTS feedback (id TEXT PRIMARY KEY, ts TEXT, key_id TEXT, "
            "tenant TEXT, question TEXT, answer TEXT, rating INTEGER, comment TEXT, "
            "request_id TEXT)"
        )
        app.state.service = _Service(
            settings=settings, tl=tl, keys=keys, audit=audit, feedback=feedback, metrics=Metrics()
        )
        try:
            yield
        finally:
            service: _Service = app.state.service
            for task in list(service.tasks):
                task.cancel()
            await asyncio.gather(*service.tasks, return_exceptions=True)
            await tl.close()
            keys.close()
            audit.close()
            feedback.close()

    app = FastAPI(
        title="Threadline",
        version="1",
        summary="Questions answered from your documents, every claim with a checked source.",
        lifespan=lifespan,
        responses=_ERRORS,
    )
    _handlers(app)

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        request.state.request_id = request_id
        service: _Service | None = getattr(request.app.state, "service", None)
        started = time.perf_counter()
        status = 500
        with _TRACER.start_as_current_span(
            f"HTTP {request.method}",
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.url.path},
        ) as span:
            if service is not None:
                service.metrics.in_flight.inc()
            try:
                response = await call_next(request)
                status = response.status_code
            finally:
                route = _route(request)
                elapsed = time.perf_counter() - started
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if service is not None:
                    service.metrics.in_flight.dec()
                    service.metrics.requests.labels(request.method, route, str(status)).inc()
                    service.metrics.latency.labels(route).observe(elapsed)
                logger.info(
                    "request",
                    extra={
                        "method": request.method,
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 1),
                        "key_id": getattr(request.state, "key_id", None),
                    },
                )
                REQUEST_ID.reset(token)
        response.headers["X-Request-ID"] = request_id
        return response

    _routes(app)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    return app


def _handlers(app: FastAPI) -> None:  # noqa: C901 - one handler per error family
    def respond(request: Request, status: int, error: str, message: str, detail: Any = None,
                headers: dict[str, str] | None = None) -> JSONResponse:  # fmt: skip
        service: _Service | None = getattr(request.app.state, "service", None)
        if service is not None and status >= 400:
            service.metrics.errors.labels(_route(request), error).inc()
        return JSONResponse(_body(error, message, detail), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc.status, exc.error, exc.message, headers=exc.headers)

    @app.exception_handler(ThreadlineError)
    async def threadline_error(request: Request, exc: ThreadlineError) -> JSONResponse:
        status, code = _status(exc)
        if status >= 500:
            logger.error("request failed", exc_info=exc)
        return respond(request, status, code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _field_errors(exc.errors())
        return respond(request, 422, "invalid_request", "the request is not valid", detail)

    @app.exception_handler(ValidationError)
    async def invalid_value(request: Request, exc: ValidationError) -> JSONResponse:
        detail = _field_errors(exc.errors())
        return respond(request, 422, "invalid_request", "a value is not valid", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return respond(request, exc.status_code, code, str(exc.detail))

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return respond(
            request, 504, "timeout", "the request took too long; narrow it or retry later"
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error", exc_info=exc)
        return respond(
            request,
            500,
            "internal",
            "internal error; quote the request id when reporting it",
            {"request_id": getattr(request.state, "request_id", None)},
        )


# ---------------------------------------------------------------------------- routes


def _document_out(doc: Any, *, text: bool = False) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        source=doc.source,
        title=doc.title,
        version=doc.version,
        tenant=doc.tenant,
        groups=list(doc.access_groups),
        ingested_at=doc.ingested_at,
        chars=len(doc.text),
        sections=[SectionOut(**s.model_dump()) for s in doc.sections],
        text=doc.text if text else None,
    )


def _entity_out(ent: Any) -> EntityOut:
    return EntityOut(id=ent.id, name=ent.name, type=ent.type, aliases=list(ent.aliases))


def _span_out(span: Any) -> MentionOut:
    return MentionOut(
        chunk_id=span.chunk_id,
        document_id=span.document_id,
        start=span.start,
        end=span.end,
        text=span.text,
    )


def _fact_out(rel: Any, names: Mapping[Any, str]) -> FactOut:
    return FactOut(
        id=rel.id,
        subject=names.get(rel.subject_id, rel.subject_id),
        predicate=rel.predicate,
        object=names.get(rel.object_id, rel.object_id),
        kind=rel.kind,
        confidence=rel.confidence,
        evidence=[_span_out(s) for s in rel.evidence],
    )


def _routes(app: FastAPI) -> None:  # noqa: C901, PLR0915 - one place lists every endpoint
    v1 = "/v1"

    # -- ingest and jobs -------------------------------------------------------

    def _tenant(key: ApiKey, asked: str | None) -> str:
        if asked is not None and not key.admin and asked != key.tenant:
            raise ApiError(403, "forbidden", "only admin keys may ingest for another tenant")
        tenant = asked or key.tenant
        if tenant is None:
            raise ApiError(400, "invalid_input", "admin keys must name the tenant to ingest for")
        return tenant

    def _start_job(
        service: _Service,
        key: ApiKey,
        tenant: str,
        groups: list[str],
        read: Callable[[], list[SourceDocument]],
        request_id: str,
    ) -> _Job:
        job = _Job(id=uuid.uuid4().hex, tenant=tenant, owner=key.id, created_at=datetime.now(UTC))
        service.jobs[job.id] = job

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async def run() -> None:
            async with service.ingest_lock:
                job.status = "running"
                try:
                    sources = await asyncio.to_thread(read)
                    job.total = len(sources)
                    report = await service.tl.ingest(
                        sources, tenant=tenant, groups=groups, progress=progress
                    )
                except ThreadlineError as exc:
                    _, code = _status(exc)
                    job.status, job.error = "failed", ErrorBody(error=code, message=str(exc))
                except Exception as exc:
                    logger.exception("ingest job %s failed", job.id)
                    job.status = "failed"
                    job.error = ErrorBody(error="internal", message=f"ingest failed: {exc}")
                else:
                    job.status, job.report = "succeeded", report
                    service.metrics.ingested.labels("added").inc(report.added)
                    service.metrics.ingested.labels("replaced").inc(report.replaced)
                    service.metrics.ingested.labels("unchanged").inc(report.unchanged)
                job.finished_at = datetime.now(UTC)
                service.metrics.jobs.labels(job.status).inc()
                service.audit.append(
                    "ingest",
                    request_id=request_id,
                    key_id=key.id,
                    tenant=tenant,
                    groups=groups,
                    job_id=job.id,
                    status=job.status,
                    documents=list(job.report.document_ids) if job.report else [],
                    error=job.error.message if job.error else None,
                )

        task = asyncio.create_task(run())
        service.tasks.add(task)
        task.add_done_callback(service.tasks.discard)
        return job

    @app.post(f"{v1}/documents", status_code=202, tags=["documents"])
    async def ingest_documents(body: IngestRequest, request: Request, key: Caller) -> JobOut:
        """Ingest documents given as JSON. Runs as a job; poll ``GET /v1/jobs/{id}``."""
        service = _service(request)
        tenant = _tenant(key, body.tenant)
        sources = [
            SourceDocument(
                source=d.id, title=d.title or d.id, text=d.text, origin=f"request document {d.id}"
            )
            for d in body.documents
        ]
        job = _start_job(
            service, key, tenant, list(body.groups), lambda: sources, request.state.request_id
        )
        return job.out()

    @app.post(f"{v1}/documents/upload", status_code=202, tags=["documents"])
    async def upload_documents(
        request: Request,
        key: Caller,
        files: Annotated[list[UploadFile], File(description="files to ingest")],
        groups: Annotated[list[str] | None, Form()] = None,
        tenant: Annotated[str | None, Form()] = None,
        reader: Annotated[Literal["builtin", "llamaindex"], Form()] = "builtin",
    ) -> JobOut:
        """Ingest uploaded files (.txt, .md, .html, .jsonl, .pdf, .docx) as a job."""
        service = _service(request)
        chosen = _tenant(key, tenant)
        Access(tenant=chosen, groups=frozenset(groups or ()))  # validates the group names
        folder = Path(tempfile.mkdtemp(prefix="threadline-upload-"))
        paths: list[Path] = []
        names: dict[str, str] = {}
        for number, upload in enumerate(files):
            name = Path(upload.filename or "").name or f"upload-{number}"
            target = folder / f"{number:04d}" / name
            target.parent.mkdir()
            target.write_bytes(await upload.read())
            paths.append(target)
            names[str(target.resolve())] = name

        def read() -> list[SourceDocument]:
            try:
                found = service.tl.read(paths, reader=reader)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            # Documents are named by the uploaded file name, not the temporary path.
            return [
                dataclasses.replace(
                    s, source=names.get(s.source, s.source), origin=names.get(s.source, s.origin)
                )
                for s in found
            ]

        job = _start_job(service, key, chosen, list(groups or ()), read, request.state.request_id)
        return job.out()

    @app.get(f"{v1}/jobs/{{job_id}}", tags=["documents"])
    async def get_job(job_id: str, request: Request, key: Caller) -> JobOut:
        """An ingest job's status, progress and report."""
        job = _service(request).jobs.get(job_id)
        if job is None or not (key.admin or job.tenant == key.tenant):
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job.out()

    # -- documents --------------------------------------------------------------

    @app.get(f"{v1}/documents", tags=["documents"])
    async def list_documents(
        request: Request,
        key: Caller,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> DocumentList:
        """Documents the key may read, by source."""
        service = _service(request)
        docs = await service.bounded(
            service.tl.graph.documents(key.access, limit=limit, offset=offset)
        )
        return DocumentList(documents=[_document_out(d) for d in docs])

    async def _readable_document(service: _Service, key: ApiKey, document_id: str) -> Any:
        found = await service.tl.graph.documents(key.access, ids=[DocumentId(document_id)], limit=1)
        if not found:
            raise ApiError(404, "not_found", f"no document {document_id} you can read")
        return found[0]

    @app.get(f"{v1}/documents/{{document_id}}", tags=["documents"])
    async def get_document(document_id: str, request: Request, key: Caller) -> DocumentOut:
        """One document with its text and sections."""
        doc = await _readable_document(_service(request), key, document_id)
        return _document_out(doc, text=True)

    @app.delete(f"{v1}/documents/{{document_id}}", tags=["documents"])
    async def delete_document(document_id: str, request: Request, key: Caller) -> DeleteOut:
        """Delete a document of the key's tenant with everything only it supports."""
        service = _service(request)
        doc = await _readable_document(service, key, document_id)
        if not key.admin and doc.tenant != key.tenant:
            raise ApiError(404, "not_found", f"no document {document_id} you can read")
        async with service.ingest_lock:
            report = await service.tl.delete([doc.id])
        service.audit.append(
            "delete",
            request_id=request.state.request_id,
            key_id=key.id,
            tenant=doc.tenant,
            documents=[doc.id],
            removed=report.model_dump(),
        )
        return DeleteOut(**report.model_dump())

    # -- questions ---------------------------------------------------------------

    def _record_answer(service: _Service, key: ApiKey, request_id: str, answer: Answer) -> None:
        for stage in ("parse_embed", "dense", "sparse", "link", "graph", "fuse", "answer",
                      "validation"):  # fmt: skip
            if stage in answer.timings_ms:
                service.metrics.stage.labels(stage).observe(answer.timings_ms[stage] / 1000)
        for claim in answer.claims:
            service.metrics.claims.labels(claim.verdict).inc()
        cited = sorted({d.document_id for c in answer.claims for d in c.documents})
        service.audit.append(
            "ask",
            request_id=request_id,
            key_id=key.id,
            tenant=key.tenant,
            question=answer.question,
            mode=answer.mode,
            cited_documents=cited,
            verdicts=[c.verdict for c in answer.claims],
        )

    @app.post(f"{v1}/ask", tags=["questions"], response_model=None)
    async def ask(body: AskRequest, request: Request, key: Caller) -> Any:
        """Answer a question with claims, provenance chains and verdicts.

        With ``"stream": true`` (or ``Accept: text/event-stream``) the stages arrive as
        Server-Sent Events: ``evidence``, ``token`` (model answers: the text as it is
        written), ``answer``, ``claims``, then ``done`` with the whole answer.
        """
        service = _service(request)
        request_id = request.state.request_id
        _check_model(service, body)
        wants_stream = body.stream or "text/event-stream" in request.headers.get("accept", "")
        options: dict[str, Any] = {
            "k": body.k,
            "mode": body.mode,
            "llm": body.llm,
            "unsupported": body.unsupported,
        }
        if not wants_stream:
            answer = await service.bounded(service.tl.ask(body.question, key.access, **options))
            _record_answer(service, key, request_id, answer)
            return answer.model_dump(mode="json")

        async def events() -> AsyncIterator[dict[str, str]]:
            try:
                async for event in service.tl.ask_stream(body.question, key.access, **options):
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
                        _record_answer(service, key, request_id, event.answer)
                        yield {"event": "done", "data": _json(event.answer.model_dump(mode="json"))}
            except ThreadlineError as exc:
                _, code = _status(exc)
                yield {"event": "error", "data": _json(_body(code, str(exc)))}

        return EventSourceResponse(events(), ping=15)

    @app.post(f"{v1}/search", tags=["questions"])
    async def search(body: SearchRequest, request: Request, key: Caller) -> SearchOut:
        """Chunks that answer a query, with scores, exact text and the signals that found them."""
        service = _service(request)
        retrieval = await service.bounded(
            service.tl.retrieve(body.query, key.access, k=body.k, mode=body.mode)
        )
        hits = []
        for e, chunk, doc in await service.tl.sources(retrieval.evidence, key.access):
            section = doc.section_at(chunk.start)
            hits.append(
                SearchHit(
                    chunk_id=chunk.id,
                    document_id=doc.id,
                    title=doc.title,
                    score=e.score,
                    start=chunk.start,
                    end=chunk.end,
                    text=chunk.text,
                    page=section.page if section else None,
                    section=section.heading if section else None,
                    signals={k: s.model_dump(mode="json") for k, s in e.signals.items()},
                )
            )
        return SearchOut(hits=hits)

    # -- entities and the graph -------------------------------------------------

    @app.get(f"{v1}/entities", tags=["graph"])
    async def search_entities(
        request: Request,
        key: Caller,
        q: Annotated[str, Query(max_length=200, description="name or alias contains")] = "",
        type: Annotated[list[str] | None, Query(max_length=20)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> EntityList:
        """Entities the key can see whose name or alias contains ``q``."""
        service = _service(request)
        found = await service.bounded(
            service.tl.graph.search_entities(q, key.access, types=type or (), limit=limit)
        )
        return EntityList(entities=[_entity_out(e) for e in found])

    async def _visible_entity(service: _Service, key: ApiKey, entity_id: str) -> Any:
        found = await service.tl.graph.entities([EntityId(entity_id)], key.access)
        if not found:
            raise ApiError(404, "not_found", f"no entity {entity_id} you can see")
        return found[0]

    @app.get(f"{v1}/entities/{{entity_id}}", tags=["graph"])
    async def get_entity(
        entity_id: str,
        request: Request,
        key: Caller,
        mentions: Annotated[int, Query(ge=0, le=500)] = 20,
        facts: Annotated[int, Query(ge=0, le=500)] = 20,
    ) -> EntityDetail:
        """One entity with its mentions and facts (from readable documents only)."""
        service = _service(request)
        ent = await _visible_entity(service, key, entity_id)
        found = await service.tl.graph.mentions([ent.id], key.access, limit=mentions)
        rels = await service.tl.graph.relations([ent.id], key.access, limit=facts) if facts else []
        others = list({e for r in rels for e in (r.subject_id, r.object_id)})
        names = {e.id: e.name for e in await service.tl.graph.entities(others, key.access)}
        return EntityDetail(
            entity=_entity_out(ent),
            mentions=[_span_out(m.span) for m in found],
            facts=[_fact_out(r, names) for r in rels],
        )

    @app.get(f"{v1}/entities/{{entity_id}}/neighborhood", tags=["graph"])
    async def neighborhood(
        entity_id: str,
        request: Request,
        key: Caller,
        depth: Annotated[int, Query(ge=1, le=3)] = 1,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        predicate: Annotated[list[str] | None, Query(max_length=20)] = None,
    ) -> Subgraph:
        """The bounded subgraph around an entity, as nodes and edges."""
        service = _service(request)
        ent = await _visible_entity(service, key, entity_id)
        hood = await service.bounded(
            service.tl.graph.neighbors(
                [ent.id], key.access, depth=depth, predicates=predicate or (), limit=limit
            )
        )
        return Subgraph(
            nodes=[GraphNode(id=e.id, label=e.name, type=e.type) for e in hood.entities],
            edges=[
                GraphEdge(
                    id=r.id,
                    source=r.subject_id,
                    target=r.object_id,
                    predicate=r.predicate,
                    kind=r.kind,
                    confidence=r.confidence,
                    evidence=len(r.evidence),
                )
                for r in hood.relations
            ],
            truncated=hood.truncated,
        )

    @app.get(f"{v1}/paths", tags=["graph"])
    async def paths(
        request: Request,
        key: Caller,
        source: Annotated[str, Query(min_length=1, max_length=100)],
        target: Annotated[str, Query(min_length=1, max_length=100)],
        max_hops: Annotated[int, Query(ge=1, le=6)] = 4,
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
    ) -> PathList:
        """Shortest chains of facts between two entities."""
        service = _service(request)
        a = await _visible_entity(service, key, source)
        b = await _visible_entity(service, key, target)
        found = await service.bounded(
            service.tl.graph.paths(a.id, b.id, key.access, max_hops=max_hops, limit=limit)
        )
        ids = list({e for p in found for e in p.entity_ids})
        ents = {e.id: e for e in await service.tl.graph.entities(ids, key.access)}
        names = {i: e.name for i, e in ents.items()}
        return PathList(
            paths=[
                PathOut(
                    entities=[_entity_out(ents[e]) for e in p.entity_ids if e in ents],
                    facts=[_fact_out(r, names) for r in p.relations],
                )
                for p in found
            ]
        )

    # -- feedback, keys, health, metrics ----------------------------------------

    @app.post(f"{v1}/feedback", status_code=201, tags=["feedback"])
    async def feedback(body: FeedbackIn, request: Request, key: Caller) -> FeedbackOut:
        """Rate an answer (kept for evaluation)."""
        service = _service(request)
        feedback_id = uuid.uuid4().hex
        await asyncio.to_thread(
            service.feedback.execute,
            "INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?)",
            (
                feedback_id,
                datetime.now(UTC).isoformat(),
                key.id,
                key.tenant,
                body.question,
                body.answer,
                body.rating,
                body.comment,
                body.request_id,
            ),
        )
        return FeedbackOut(id=feedback_id)

    def _key_out(k: ApiKey) -> KeyOut:
        return KeyOut(**k.model_dump())

    @app.post(f"{v1}/keys", status_code=201, tags=["keys"])
    async def create_key(body: KeyIn, request: Request, key: Caller) -> NewKeyOut:
        """Create an API key (admin keys only); the secret is returned once."""
        _admin(key)
        service = _service(request)
        made = service.keys.create(
            tenant=body.tenant, groups=tuple(body.groups), admin=body.admin, name=body.name
        )
        service.audit.append(
            "key.create",
            request_id=request.state.request_id,
            key_id=key.id,
            created=made.key.id,
            tenant=made.key.tenant,
            groups=list(made.key.groups),
            admin=made.key.admin,
        )
        return NewKeyOut(key=_key_out(made.key), secret=made.secret)

    @app.get(f"{v1}/keys", tags=["keys"])
    async def list_keys(request: Request, key: Caller) -> KeyList:
        """Every key (admin keys only); secrets are never returned."""
        _admin(key)
        return KeyList(keys=[_key_out(k) for k in _service(request).keys.all()])

    @app.delete(f"{v1}/keys/{{key_id}}", tags=["keys"])
    async def revoke_key(key_id: str, request: Request, key: Caller) -> KeyOut:
        """Revoke a key (admin keys only)."""
        _admin(key)
        service = _service(request)
        revoked = service.keys.revoke(key_id)
        service.audit.append(
            "key.revoke", request_id=request.state.request_id, key_id=key.id, revoked=key_id
        )
        return _key_out(revoked)

    @app.get(f"{v1}/health/live", tags=["operations"])
    async def live() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get(f"{v1}/health/ready", tags=["operations"], responses={503: {"model": Health}})
    async def ready(request: Request) -> Any:
        """The stores answer."""
        service = _service(request)
        checks: dict[str, str] = {}
        admin = Access.admin()
        for name, probe in (
            ("graph", service.tl.graph.documents(admin, limit=1)),
            ("vectors", service.tl.vectors.count(Access(tenant="__readiness__"))),
        ):
            try:
                await asyncio.wait_for(probe, 5)
                checks[name] = "ok"
            except (ThreadlineError, TimeoutError) as exc:
                checks[name] = f"failed: {exc}"
        ok = all(v == "ok" for v in checks.values())
        health = Health(status="ok" if ok else "unavailable", checks=checks)
        return JSONResponse(health.model_dump(), status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=True)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics."""
        registry = _service(request).metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _field_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the rejected input (which may be large or sensitive)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
