"""Observability: request ids, JSON logs, OpenTelemetry traces, Prometheus metrics.

Log records pass :class:`PiiFilter` before they are written: personal data in a message,
its extra fields or a traceback (a question or a model reply quoted in an error) is
masked, so no log line holds it.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from engine.settings import TelemetrySettings

__all__ = ["REQUEST_ID", "Metrics", "PiiFilter", "configure_logging", "configure_tracing"]

#: The id of the request being served (for logs, errors and audit records).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    _SKIP = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            payload["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in self._SKIP and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        return json.dumps(payload, default=str, ensure_ascii=False)


class PiiFilter(logging.Filter):
    """Masks personal data in a record's message, string extras and traceback (the
    detector's direct identifiers by default); the record is kept."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
    # Extras the service sets itself, never text from a caller or a document.
    _SAFE = frozenset({"method", "route", "status", "ms", "key_id", "request_id"})

    def __init__(self, mask: Callable[[str], str] | None = None) -> None:
        super().__init__()
        self._mask = mask

    def _text(self, value: str) -> str:
        if self._mask is None:
            from engine.redaction import detector_for  # noqa: PLC0415 - loads Presidio

            self._mask = detector_for().mask
        return self._mask(value)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always keep it."""
        record.msg = self._text(record.getMessage())
        record.args = None
        if record.exc_info:
            traceback = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._text(traceback)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key in self._STANDARD or key in self._SAFE or key.startswith("_"):
                continue
            if isinstance(value, str):
                setattr(record, key, self._text(value))
        return True


def configure_logging(settings: TelemetrySettings, level: int = logging.INFO) -> None:
    """JSON lines (or plain text) on stderr for the ``threadline`` and ``uvicorn`` loggers."""
    handler = logging.StreamHandler()
    handler.addFilter(PiiFilter())
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
    for name in ("threadline", "engine", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the request log replaces it


def configure_tracing(settings: TelemetrySettings) -> None:
    """Export spans to the OTLP/HTTP collector at ``settings.otlp_endpoint``, once per process.

    Without an endpoint the OpenTelemetry API stays a no-op, unless the embedding
    application installed its own tracer provider (which is then used as is).
    """
    global _configured  # noqa: PLW0603 - the global tracer provider can be set once
    if _configured or settings.otlp_endpoint is None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    endpoint = settings.otlp_endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True


class Metrics:
    """The service's Prometheus metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "threadline_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "threadline_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.errors = Counter(
            "threadline_http_errors",
            "Requests that ended in an error response",
            ["route", "error"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "threadline_http_in_flight", "Requests being served", registry=self.registry
        )
        self.limited = Counter(
            "threadline_rate_limited",
            "Requests refused by a per-key limit",
            ["reason"],
            registry=self.registry,
        )
        self.stage = Histogram(
            "threadline_ask_stage_seconds",
            "Time spent in each stage of answering",
            ["stage"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.claims = Counter(
            "threadline_claims",
            "Claims returned, by verdict",
            ["verdict"],
            registry=self.registry,
        )
        self.ingested = Counter(
            "threadline_ingested_documents",
            "Documents processed by ingest jobs",
            ["result"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "threadline_ingest_jobs", "Ingest jobs finished", ["status"], registry=self.registry
        )
