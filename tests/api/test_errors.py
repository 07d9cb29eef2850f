"""The error table: every class of the Threadline error tree answers with its status and
code, the most specific class wins, and ``Retry-After`` is sent when the error says."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import graph.errors
from engine.api import create_app
from engine.api.errors import ERROR_STATUS, error_status
from engine.settings import Settings
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

pytestmark = pytest.mark.api

EXPECTED: list[tuple[ThreadlineError, int, str]] = [
    (ThreadlineError("x"), 500, "error"),
    (ConfigError("x"), 500, "configuration"),
    (InputError("x"), 400, "invalid_input"),
    (StoreError("x"), 500, "store_error"),
    (StoreUnavailableError("x"), 503, "store_unavailable"),
    (StoreCorruptedError("x"), 500, "store_error"),
    (NotFoundError("x"), 404, "not_found"),
    (ExtractionError("x"), 500, "error"),
    (PlanningError("x"), 500, "error"),
    (LLMError("x"), 502, "model_error"),
    (RetryableLLMError("x"), 502, "model_error"),
    (ModelReplyError("x"), 502, "model_error"),
    (ProvenanceError("x"), 500, "error"),
    (PermissionDeniedError("x"), 403, "forbidden"),
]


@pytest.mark.parametrize(("exc", "status", "code"), EXPECTED, ids=lambda v: type(v).__name__)
def test_each_error_has_its_status_and_code(exc: ThreadlineError, status: int, code: str) -> None:
    assert error_status(exc) == (status, code, None)


def test_every_class_of_the_tree_is_in_the_table() -> None:
    tree = {getattr(graph.errors, name) for name in graph.errors.__all__}
    assert tree <= set(ERROR_STATUS)
    assert {type(exc) for exc, _, _ in EXPECTED} | {QuotaExceededError} == set(ERROR_STATUS)


def test_a_spent_quota_is_a_429_with_when_it_resets() -> None:
    spent = QuotaExceededError(
        "x", scope="key", limit="tokens_per_day", resets_at="2026-12-02T00:00Z", retry_after=3599.2
    )
    assert error_status(spent) == (429, "quota_exceeded", {"Retry-After": "3600"})


def test_the_most_specific_class_wins() -> None:
    class LockedStoreError(StoreUnavailableError):
        pass

    class BothError(NotFoundError, StoreError):
        pass

    assert error_status(LockedStoreError("x"))[:2] == (503, "store_unavailable")
    assert error_status(BothError("x"))[:2] == (404, "not_found")


def test_retry_after_is_sent_when_the_error_carries_it() -> None:
    assert error_status(RetryableLLMError("slow down", retry_after=2.2))[2] == {"Retry-After": "3"}
    assert error_status(RetryableLLMError("slow down", retry_after=0))[2] == {"Retry-After": "1"}
    assert error_status(RetryableLLMError("slow down"))[2] is None


async def test_errors_over_http_have_the_body_and_headers(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    raised: list[Exception] = [
        RetryableLLMError("the model server is busy", retry_after=7),
        StoreUnavailableError("the graph store is down"),
        RuntimeError("secret internals"),
    ]

    @app.get("/boom/{n}")
    async def boom(n: int) -> None:
        raise raised[n]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        busy = await client.get("/boom/0")
        down = await client.get("/boom/1")
        crash = await client.get("/boom/2", headers={"X-Request-ID": "req-1"})
    assert busy.status_code == 502
    assert busy.headers["Retry-After"] == "7"
    assert busy.json() == {
        "error": "model_error",
        "message": "the model server is busy",
        "detail": None,
    }
    assert down.status_code == 503
    assert down.json()["error"] == "store_unavailable"
    assert "Retry-After" not in down.headers
    assert crash.status_code == 500
    assert crash.json() == {
        "error": "internal",
        "message": "internal error; quote the request id when reporting it",
        "detail": {"request_id": "req-1"},
    }
    assert "secret internals" not in crash.text
