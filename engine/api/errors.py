"""Errors as HTTP responses: one table from the Threadline error tree to status and code.

Every error response is JSON ``{error, message, detail}`` and never carries a stack
trace. A :class:`~graph.ThreadlineError` is looked up in :data:`ERROR_STATUS` by walking
its class's MRO, so the most specific entry wins (``StoreUnavailableError`` is a 503
although ``StoreError`` is a 500). Errors that only exist over HTTP (no key, a body over
the limit, a rate limit) are :class:`ApiError`. Either may carry a ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api.schemas import ErrorBody
from graph import (
    ConfigError,
    ExtractionError,
    InputError,
    LLMError,
    ModelReplyError,
    NotFoundError,
    PermissionDeniedError,
    PlanningError,
    ProvenanceError,
    QuotaExceededError,
    RetryableLLMError,
    StoreCorruptedError,
    StoreError,
    StoreUnavailableError,
    ThreadlineError,
)

__all__ = [
    "ERROR_RESPONSES",
    "ERROR_STATUS",
    "ApiError",
    "error_body",
    "error_status",
    "field_errors",
    "install_error_handlers",
]

logger = logging.getLogger("threadline.api")

#: Status and error code for every class of the error tree; the nearest class in the
#: MRO wins, so a subclass without an entry answers as its parent.
ERROR_STATUS: dict[type[ThreadlineError], tuple[int, str]] = {
    ThreadlineError: (500, "error"),
    ConfigError: (500, "configuration"),
    InputError: (400, "invalid_input"),
    StoreError: (500, "store_error"),
    StoreUnavailableError: (503, "store_unavailable"),
    StoreCorruptedError: (500, "store_error"),
    NotFoundError: (404, "not_found"),
    ExtractionError: (500, "error"),
    PlanningError: (500, "error"),
    LLMError: (502, "model_error"),
    RetryableLLMError: (502, "model_error"),
    ModelReplyError: (502, "model_error"),
    ProvenanceError: (500, "error"),
    PermissionDeniedError: (403, "forbidden"),
    QuotaExceededError: (429, "quota_exceeded"),
}

#: Documented error responses of every operation.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody}
    for status in (400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504)
}


class ApiError(Exception):
    """An error that only exists over HTTP, with its status and machine-readable code."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers


def error_status(exc: ThreadlineError) -> tuple[int, str, dict[str, str] | None]:
    """The status, error code and extra headers (``Retry-After``) for ``exc``."""
    status, code = next(
        ERROR_STATUS[kind]
        for kind in type(exc).__mro__
        if kind in ERROR_STATUS  # ThreadlineError is in the table, so one always is
    )
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after >= 0:
        return status, code, {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return status, code, None


def error_body(error: str, message: str, detail: Any = None) -> dict[str, Any]:
    """The JSON of every error response."""
    return {"error": error, "message": message, "detail": detail}


def install_error_handlers(app: FastAPI, count: Callable[[Request, str], None]) -> None:
    """Answer every exception as an error body; ``count`` sees each error code sent."""

    def respond(
        request: Request,
        status: int,
        error: str,
        message: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        count(request, error)
        return JSONResponse(error_body(error, message, detail), status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc.status, exc.error, exc.message, headers=exc.headers)

    @app.exception_handler(ThreadlineError)
    async def threadline_error(request: Request, exc: ThreadlineError) -> JSONResponse:
        status, code, headers = error_status(exc)
        if status >= 500:
            logger.error("request failed", exc_info=exc)
        return respond(request, status, code, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = field_errors(exc.errors())
        return respond(request, 422, "invalid_request", "the request is not valid", detail)

    @app.exception_handler(ValidationError)
    async def invalid_value(request: Request, exc: ValidationError) -> JSONResponse:
        detail = field_errors(exc.errors())
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


def field_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """Validation errors without the rejected input (which may be large or sensitive)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors
    ]
