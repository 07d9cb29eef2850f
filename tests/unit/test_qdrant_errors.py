"""QdrantErrors: which driver errors mean "Qdrant cannot be reached" and which are plain failures.

Every case raises a real instance of the class the driver raises (qdrant-client's HTTP
exceptions, httpx, gRPC, the OS, and Qdrant Edge's plain ``Exception``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from pydantic import TypeAdapter, ValidationError
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from graph.backends.qdrant_common import QdrantErrors
from graph.errors import NotFoundError, StoreError, StoreUnavailableError

ROOT = Path(__file__).resolve().parents[2]
URL = "http://qdrant.internal:6333"
DIRECTORY = "/srv/threadline/vectors"
REMOTE = QdrantErrors(URL, remote=True)
LOCAL = QdrantErrors(DIRECTORY)


def _raised(
    errors: QdrantErrors, exc: BaseException, *, action: str = "search", opening: bool = False
) -> StoreError:
    with pytest.raises(StoreError) as caught, errors(action, opening=opening):
        raise exc
    assert caught.value.__cause__ is exc
    return caught.value


def _response(status: int, reason: str, body: bytes = b"") -> UnexpectedResponse:
    return UnexpectedResponse(status, reason, body, httpx.Headers())


def _rpc(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def _validation_error() -> ValidationError:
    try:
        TypeAdapter(int).validate_python("not a number")
    except ValidationError as exc:
        return exc
    raise AssertionError("the value validated")


UNREACHABLE = [
    # What qdrant-client raises for a refused connection: httpx's error, wrapped.
    pytest.param(
        ResponseHandlingException(httpx.ConnectError("All connection attempts failed")),
        id="wrapped-connect-error",
    ),
    pytest.param(httpx.ConnectError("All connection attempts failed"), id="connect-error"),
    pytest.param(ResponseHandlingException(httpx.ReadTimeout("timed out")), id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError("Server disconnected"), id="dropped"),
    pytest.param(ConnectionRefusedError(111, "Connection refused"), id="refused"),
    pytest.param(TimeoutError("timed out"), id="os-timeout"),
    pytest.param(_response(503, "Service Unavailable"), id="http-503"),
    pytest.param(_response(502, "Bad Gateway"), id="http-502"),
    pytest.param(_rpc(grpc.StatusCode.UNAVAILABLE, "failed to connect"), id="grpc-unavailable"),
    pytest.param(_rpc(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), id="grpc-deadline"),
]

REJECTED = [
    pytest.param(_response(401, "Unauthorized"), id="http-401"),
    pytest.param(_response(403, "Forbidden"), id="http-403"),
    pytest.param(_rpc(grpc.StatusCode.UNAUTHENTICATED, "bad api key"), id="grpc-unauthenticated"),
]

PLAIN = [
    pytest.param(
        _response(400, "Bad Request", b'{"status":{"error":"Wrong input: Vector dimension"}}'),
        id="http-400",
    ),
    pytest.param(_response(500, "Internal Server Error"), id="http-500"),
    pytest.param(_rpc(grpc.StatusCode.INVALID_ARGUMENT, "wrong vector"), id="grpc-invalid"),
    pytest.param(ResponseHandlingException(_validation_error()), id="unparsable-response"),
    pytest.param(ValueError("Collection chunks not found"), id="local-mode-value-error"),
    pytest.param(RuntimeError("QdrantLocal instance is closed"), id="local-mode-runtime-error"),
    pytest.param(Exception("Vector dimension error: expected dim: 4, got 3"), id="edge"),
]


@pytest.mark.parametrize("exc", UNREACHABLE)
def test_an_unreachable_server_is_unavailable(exc: Exception) -> None:
    error = _raised(REMOTE, exc)
    assert isinstance(error, StoreUnavailableError)
    message = str(error)
    assert f"cannot reach Qdrant at {URL} (search)" in message
    assert "THREADLINE_VECTOR__URL" in message


@pytest.mark.parametrize("exc", REJECTED)
def test_a_rejected_api_key_is_unavailable(exc: Exception) -> None:
    error = _raised(REMOTE, exc, action="upsert")
    assert isinstance(error, StoreUnavailableError)
    assert URL in str(error)
    assert "THREADLINE_VECTOR__API_KEY" in str(error)


@pytest.mark.parametrize("exc", PLAIN)
def test_other_driver_errors_are_store_errors(exc: Exception) -> None:
    error = _raised(REMOTE, exc, action="count")
    assert type(error) is StoreError
    assert str(error).startswith(f"Qdrant count at {URL} failed: ")


def test_the_message_keeps_the_driver_reason() -> None:
    wrapped = ResponseHandlingException(httpx.ConnectError("All connection attempts failed"))
    assert "ConnectError: All connection attempts failed" in str(_raised(REMOTE, wrapped))
    edge = Exception("Service runtime error: Shard is not initialized")
    assert str(_raised(LOCAL, edge)).endswith(": Service runtime error: Shard is not initialized")


def test_a_failed_open_is_unavailable() -> None:
    # Qdrant Edge reports a data dir held by another process as a plain Exception.
    locked = Exception("Service runtime error: failed to open WAL: Kind(WouldBlock)")
    error = _raised(LOCAL, locked, action="open", opening=True)
    assert isinstance(error, StoreUnavailableError)
    assert f"cannot open the Qdrant index at {DIRECTORY}" in str(error)
    assert "Another Threadline process" in str(error)
    remote = _raised(REMOTE, _response(500, "Internal Server Error"), opening=True)
    assert isinstance(remote, StoreUnavailableError)
    assert f"cannot open the Qdrant index at {URL}" in str(remote)


def test_an_os_error_under_a_driver_error_is_unavailable() -> None:
    # qdrant-client's local mode raises RuntimeError while handling the failed file lock.
    try:
        try:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        except BlockingIOError:
            raise RuntimeError(f"Storage folder {DIRECTORY} is already accessed") from None
    except RuntimeError as exc:
        suppressed = exc
    assert type(_raised(LOCAL, suppressed)) is StoreError  # "from None" hides the cause
    try:
        try:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        except BlockingIOError:
            raise RuntimeError(f"Storage folder {DIRECTORY} is already accessed")  # noqa: B904
    except RuntimeError as exc:
        chained = exc
    error = _raised(LOCAL, chained, action="upsert")
    assert isinstance(error, StoreUnavailableError)
    assert DIRECTORY in str(error)
    assert "writable" in str(error)


def test_threadline_errors_pass_through() -> None:
    mine = StoreUnavailableError("the collection has vector size 4, the embedder makes 8")
    with pytest.raises(StoreUnavailableError) as caught, REMOTE("open", opening=True):
        raise mine
    assert caught.value is mine
    other = NotFoundError("no such chunk")
    with pytest.raises(NotFoundError) as found, LOCAL("retrieve"):
        raise other
    assert found.value is other


def test_cancellation_passes_through() -> None:
    with pytest.raises(asyncio.CancelledError), REMOTE("search"):
        raise asyncio.CancelledError


def test_nothing_raised_nothing_mapped() -> None:
    with LOCAL("count"):
        result = 3
    assert result == 3


def test_the_embedded_index_does_not_import_qdrant_client() -> None:
    """Mapping errors must not cost the embedded index qdrant-client's import time."""
    code = (
        "import sys\n"
        "import graph.backends.qdrant_edge_index\n"
        "from graph.backends.qdrant_common import QdrantErrors\n"
        "error = QdrantErrors('/tmp/x').translate(Exception('boom'), 'search')\n"
        "assert type(error).__name__ == 'StoreError', error\n"
        "assert 'qdrant_client' not in sys.modules, 'qdrant_client was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
