"""The ASGI app: Threadline and the control-plane stores open in its lifespan; every
request gets an id, a trace span, a log line and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from opentelemetry import trace

from engine.api.deps import Service, route_template
from engine.api.errors import ERROR_RESPONSES, install_error_handlers
from engine.api.jobs import JobBoard, JobStore
from engine.api.limits import BodyLimit, Buckets, KeyLimits, SharedBuckets
from engine.api.routes import ROUTERS
from engine.api.routes import communities as community_routes
from engine.api.routes import subjects as subject_routes
from engine.api.routes import usage as usage_routes
from engine.control import is_shared, open_audit, open_feedback, open_keys, store_db
from engine.control_db import postgres_db
from engine.redaction import detector_for
from engine.retention import retention_loop
from engine.settings import Settings
from engine.telemetry import REQUEST_ID, Metrics, configure_tracing
from engine.threadline import Threadline
from engine.usage import UsageCollector
from extractors.privacy import DIRECT_IDENTIFIERS

__all__ = ["create_app"]

logger = logging.getLogger("threadline.api")
_TRACER = trace.get_tracer("threadline.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def create_app(settings: Settings) -> FastAPI:
    """The ASGI app; Threadline and the key, audit and feedback stores open when it starts."""
    app = FastAPI(
        title="Threadline",
        version="1",
        summary="Questions answered from your documents, every claim with a checked source.",
        lifespan=lambda app: _lifespan(app, settings),
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app, _count_error)
    app.middleware("http")(_observe)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(community_routes.router)
    app.include_router(usage_routes.router)
    app.include_router(subject_routes.router)
    app.add_middleware(BodyLimit, limit=settings.api.max_body_bytes)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    configure_tracing(settings.telemetry)
    async with contextlib.AsyncExitStack() as stack:
        tl = await Threadline.open(settings)
        stack.push_async_callback(tl.close)
        # The control plane: files in the data dir, or PostgreSQL shared by replicas.
        keys = await open_keys(settings)
        stack.push_async_callback(keys.close)
        audit = await open_audit(settings)
        stack.push_async_callback(audit.close)
        feedback = await open_feedback(settings)
        stack.push_async_callback(feedback.close)
        metrics = Metrics()
        if tl.usage is not None:
            metrics.registry.register(UsageCollector(tl.usage, tl.caches))
        job_store = await JobStore.open(store_db(settings, "jobs", "the job store"))
        jobs = JobBoard(tl, audit, metrics, asyncio.Lock(), job_store)
        stack.push_async_callback(jobs.close)
        buckets: Buckets | None = None
        if is_shared(settings):
            api = settings.api
            buckets = await SharedBuckets.open(
                postgres_db(settings, "the rate limits"), api.rate_per_minute / 60, api.burst
            )
            stack.push_async_callback(buckets.close)
        app.state.service = Service(
            settings=settings,
            tl=tl,
            keys=keys,
            audit=audit,
            feedback=feedback,
            metrics=metrics,
            limits=KeyLimits(settings.api, metrics, buckets),
            jobs=jobs,
        )
        p = settings.privacy
        if p.redacted:
            # Presidio takes seconds to load: in a worker thread now, not in a request.
            detector = detector_for(p.redacted & DIRECT_IDENTIFIERS, p.pii_threshold)
            loading = asyncio.get_running_loop().run_in_executor(
                None, detector.find, "warm@example.com"
            )
            stack.push_async_callback(_settle, loading)
        if any(d is not None for d in (p.audit_days, p.feedback_days, p.usage_days, p.cache_days)):
            # Retention now and hourly (the same run as `threadline maintain`).
            retention = asyncio.create_task(retention_loop(settings, tl=tl, feedback=feedback))
            stack.push_async_callback(_stop, retention)
        yield


async def _settle(loading: asyncio.Future[Any]) -> None:
    with contextlib.suppress(Exception):
        await loading


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _service(request: Request) -> Service | None:
    service: Service | None = getattr(request.app.state, "service", None)
    return service


def _count_error(request: Request, error: str) -> None:
    service = _service(request)
    if service is not None:
        service.metrics.errors.labels(route_template(request), error).inc()


async def _observe(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Request id (``X-Request-ID``, kept when the client sent a sane one), span, metrics
    and one log line per request."""
    incoming = request.headers.get("x-request-id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    token = REQUEST_ID.set(request_id)
    request.state.request_id = request_id
    service = _service(request)
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
            route = route_template(request)
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
