"""What every route depends on: the running service and the calling key.

Every request names an API key (``Authorization: Bearer tl_...`` or ``X-API-Key``) that
maps to a tenant and groups; :func:`principal` authenticates it and holds one of the
key's rate and concurrency slots for the length of the request. There is no
unauthenticated mode, so nothing leaves unredacted by default: :data:`Redact` masks the
results of keys without the ``pii`` permission.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request

from engine.api.errors import ApiError, error_status
from engine.api.jobs import JobBoard
from engine.api.limits import KeyLimits
from engine.audit import AuditLog, Outcome
from engine.feedback import FeedbackStore
from engine.keys import ApiKey, KeyStore
from engine.metering import CALLER
from engine.redaction import Redactor, redactor_for
from engine.settings import Settings
from engine.telemetry import REQUEST_ID, Metrics
from engine.threadline import Threadline
from engine.usage import Caller as UsageCaller
from graph import PermissionDeniedError, ThreadlineError

__all__ = [
    "Caller",
    "Redact",
    "Service",
    "Svc",
    "principal",
    "redaction",
    "require_admin",
    "route_template",
]

T = TypeVar("T")


@dataclass
class Service:
    """Everything the routes share, opened by the app's lifespan."""

    settings: Settings
    tl: Threadline
    keys: KeyStore
    audit: AuditLog
    feedback: FeedbackStore
    metrics: Metrics
    limits: KeyLimits
    jobs: JobBoard

    async def bounded(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro`` within the request timeout (``THREADLINE_API__REQUEST_TIMEOUT_S``)."""
        return await asyncio.wait_for(coro, self.settings.api.request_timeout_s)

    async def record(self, key: ApiKey, action: str, **fields: Any) -> None:
        """Audit what ``key`` did in this request (ids and counts only, never text)."""
        await self.audit.append(
            action,
            request_id=REQUEST_ID.get(),
            key_id=key.id,
            tenant=key.tenant,
            **fields,
        )

    def audited(
        self, key: ApiKey, action: str, **fields: Any
    ) -> contextlib.AbstractAsyncContextManager[Outcome]:
        """Audit a destructive action: its intent before, its outcome (with the API's error
        code when it fails) after."""
        return self.audit.action(
            action,
            error_code=_error_code,
            request_id=REQUEST_ID.get(),
            key_id=key.id,
            **{"tenant": key.tenant, **fields},
        )


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ThreadlineError):
        return error_status(exc)[1]
    if isinstance(exc, ApiError):
        return exc.error
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return "internal"


def get_service(request: Request) -> Service:
    """The service the app's lifespan opened."""
    service: Service = request.app.state.service
    return service


async def principal(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer tl_<id>_<secret>")] = None,
    x_api_key: Annotated[str | None, Header(description="tl_<id>_<secret>")] = None,
) -> AsyncIterator[ApiKey]:
    """The caller's key, within its rate and concurrency limits."""
    service = get_service(request)
    presented = x_api_key
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <API key>'")
        presented = value
    if not presented:
        raise ApiError(401, "unauthenticated", "an API key is required (Authorization: Bearer ...)")
    try:
        key = await service.keys.authenticate(presented)
    except PermissionDeniedError as exc:
        raise ApiError(401, "unauthenticated", str(exc)) from exc
    request.state.key_id = key.id
    # Model calls and questions of this request (and of jobs it starts) count against the
    # key; the request's context ends with it, so nothing needs resetting.
    CALLER.set(UsageCaller(tenant=key.tenant, key_id=key.id))
    async with service.limits.admit(key.id):
        yield key


#: The authenticated caller of a route.
Caller = Annotated[ApiKey, Depends(principal)]
#: The running service.
Svc = Annotated[Service, Depends(get_service)]


async def redaction(service: Svc, key: Caller) -> Redactor:
    """What masks the caller's results: nothing for keys with the ``pii`` permission (and
    admin keys), else the personal data of its scope (:mod:`engine.redaction`)."""
    return await redactor_for(service.tl, key.access, pii=key.sees_pii)


#: The calling key's redactor; every route that returns text passes its result through it.
Redact = Annotated[Redactor, Depends(redaction)]


def require_admin(key: ApiKey) -> None:
    """Refuse (403) keys without admin rights."""
    if not key.admin:
        raise PermissionDeniedError("this needs an admin key")


def route_template(request: Request) -> str:
    """The matched route's path template (``/v1/jobs/{job_id}``), for metrics and logs."""
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")
