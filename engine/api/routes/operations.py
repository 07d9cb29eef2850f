"""Operations: liveness, readiness and Prometheus metrics (no key needed)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.api.deps import Svc
from engine.api.schemas import Health
from graph import Access, ThreadlineError

__all__ = ["router"]

router = APIRouter(tags=["operations"])

_PROBE_TIMEOUT_S = 5


@router.get("/v1/health/live")
async def live() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/v1/health/ready", responses={503: {"model": Health}})
async def ready(service: Svc) -> Any:
    """The stores answer."""
    checks: dict[str, str] = {}
    for name, probe in (
        ("graph", service.tl.browse(Access.admin()).documents(limit=1)),
        ("vectors", service.tl.vectors.count(Access(tenant="__readiness__"))),
    ):
        try:
            await asyncio.wait_for(probe, _PROBE_TIMEOUT_S)
            checks[name] = "ok"
        except (ThreadlineError, TimeoutError) as exc:
            checks[name] = f"failed: {exc}"
    ok = all(v == "ok" for v in checks.values())
    health = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(health.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=True)
async def metrics(service: Svc) -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
