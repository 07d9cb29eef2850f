"""Per-key rate and concurrency limits, and the request-body size limit.

Each key has a token bucket (``THREADLINE_API__RATE_PER_MINUTE``, ``__BURST``) and a cap
on requests in flight (``__MAX_CONCURRENT_PER_KEY``); over either, the request is
refused with 429 and a ``Retry-After``. Bodies over ``__MAX_BODY_BYTES`` are refused with
413 before the app reads them.

The buckets live in this process, or, with the shared control plane
(``THREADLINE_CONTROL__URL``), in PostgreSQL (:class:`SharedBuckets`): one bucket per key
across every replica, refilled by the database's clock, so a client spreading requests
over replicas gets the rate once, not once per replica. The in-flight cap stays per
process (a replica that dies cannot leave a shared count behind).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol, Self

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.errors import ApiError, error_body
from engine.control_db import ControlDb, Schema, Tx
from engine.settings import ApiSettings
from engine.telemetry import Metrics

__all__ = ["BodyLimit", "Buckets", "KeyLimits", "LocalBuckets", "SharedBuckets", "TokenBucket"]


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


class Buckets(Protocol):
    """Every key's token bucket."""

    async def take(self, key_id: str) -> float:
        """0 when the key's request may go ahead, else the seconds until it may."""
        ...

    async def close(self) -> None:
        """Release what the buckets hold."""
        ...


class LocalBuckets:
    """The buckets in this process's memory."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, burst
        self._buckets: dict[str, TokenBucket] = {}

    async def take(self, key_id: str) -> float:
        bucket = self._buckets.setdefault(key_id, TokenBucket(self._rate, self._burst))
        return bucket.take()

    async def close(self) -> None:
        self._buckets.clear()


_BUCKETS = Schema(
    (
        "CREATE TABLE IF NOT EXISTS rate_buckets (key_id TEXT PRIMARY KEY, "
        "tokens REAL NOT NULL, stamp REAL NOT NULL)",
    )
)
# Refill by the time since the bucket was last touched (the database's clock, the same
# for every replica), capped at the burst; a clock stepped back refills nothing (rather
# than draining every bucket). The row stays locked to the end of the transaction, so
# the take below sees exactly this refill.
_REFILL = (
    "INSERT INTO rate_buckets AS b (key_id, tokens, stamp) "
    "VALUES (?, ?, EXTRACT(EPOCH FROM clock_timestamp())) "
    "ON CONFLICT (key_id) DO UPDATE SET "
    "tokens = LEAST(?, b.tokens + GREATEST(EXCLUDED.stamp - b.stamp, 0) * ?), "
    "stamp = EXCLUDED.stamp "
    "RETURNING tokens"
)


class SharedBuckets:
    """The buckets in the shared control plane's PostgreSQL database: one per key for
    every replica. Open with :meth:`open`."""

    def __init__(self, db: ControlDb, rate: float, burst: int) -> None:
        self._db, self._rate, self._burst = db, rate, burst

    @classmethod
    async def open(cls, db: ControlDb, rate: float, burst: int) -> Self:
        await db.open(_BUCKETS)
        return cls(db, rate, burst)

    async def take(self, key_id: str) -> float:
        rate, burst = self._rate, self._burst

        def take(tx: Tx) -> float:
            tokens = float(tx.execute(_REFILL, (key_id, burst, burst, rate)).fetchone()[0])
            if tokens >= 1:
                tx.execute(
                    "UPDATE rate_buckets SET tokens = tokens - 1 WHERE key_id = ?", (key_id,)
                )
                return 0.0
            return (1 - tokens) / rate

        return await self._db.call(take)

    async def close(self) -> None:
        await self._db.close()


class KeyLimits:
    """The rate and concurrency limits of every key, counted in ``metrics``; the rate
    buckets are ``buckets`` (default: this process's)."""

    def __init__(
        self, settings: ApiSettings, metrics: Metrics, buckets: Buckets | None = None
    ) -> None:
        self._settings, self._metrics = settings, metrics
        self.buckets = buckets or LocalBuckets(settings.rate_per_minute / 60, settings.burst)
        self._active: defaultdict[str, int] = defaultdict(int)

    @contextlib.asynccontextmanager
    async def admit(self, key_id: str) -> AsyncIterator[None]:
        """Hold one of the key's slots for the request, or raise a 429 :class:`ApiError`."""
        limits = self._settings
        wait = await self.buckets.take(key_id)
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
