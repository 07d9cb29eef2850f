"""Per-key rate and concurrency limits, and the request-body size limit.

Each key has a token bucket (``THREADLINE_API__RATE_PER_MINUTE``, ``__BURST``) and a cap
on requests in flight (``__MAX_CONCURRENT_PER_KEY``); over either, the request is
refused with 429 and a ``Retry-After``. Bodies over ``__MAX_BODY_BYTES`` are refused with
413 before the app reads them. The counters live in this process; replicas behind a
gateway each keep their own.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import ApiError, error_body
from engine.settings import ApiSettings
from engine.telemetry import Metrics

__all__ = ["BodyLimit", "KeyLimits", "TokenBucket"]


class TokenBucket:
    """``burst`` requests at once, refilled at ``rate`` per second."""

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


class KeyLimits:
    """The rate and concurrency limits of every key, counted in ``metrics``."""

    def __init__(self, settings: ApiSettings, metrics: Metrics) -> None:
        self._settings, self._metrics = settings, metrics
        self._buckets: dict[str, TokenBucket] = {}
        self._active: defaultdict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def admit(self, key_id: str) -> Iterator[None]:
        """Hold one of the key's slots for the request, or raise a 429 :class:`ApiError`."""
        limits = self._settings
        bucket = self._buckets.setdefault(
            key_id, TokenBucket(limits.rate_per_minute / 60, limits.burst)
        )
        wait = bucket.take()
        if wait > 0:
            self._metrics.limited.labels("rate").inc()
            raise ApiError(
                429,
                "rate_limited",
                f"over {limits.rate_per_minute} requests per minute for this key",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        if self._active[key_id] >= limits.max_concurrent_per_key:
            self._metrics.limited.labels("concurrency").inc()
            raise ApiError(
                429,
                "too_many_concurrent",
                f"over {limits.max_concurrent_per_key} requests in flight for this key",
                headers={"Retry-After": "1"},
            )
        self._active[key_id] += 1
        try:
            yield
        finally:
            self._active[key_id] -= 1


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (413) before the app
    reads them, by the declared length or by counting what arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, error_body("too_large", self._message()))
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
