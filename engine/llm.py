"""The model client: one async client for OpenAI-compatible servers, vLLM first of all.

* chat completions, with ``response_format: {"type": "json_schema", ...}`` for structured
  output (vLLM and llama.cpp's ``llama-server`` both constrain decoding to the schema);
* streaming (server-sent events), with token usage from the final chunk
  (``stream_options.include_usage``);
* timeouts, bounded concurrency (a semaphore per client), retries with exponential
  backoff and jitter on retryable failures only (connection errors, timeouts, 408, 429,
  5xx; ``Retry-After`` is honoured), and token usage recorded per call and in total;
* embeddings through ``/v1/embeddings`` (:class:`OpenAIEmbedder`), an alternative to the
  packaged sentence-transformers model.

Errors say what to do: an unreachable server names the URL and how to start one, a
wrong model name lists the models the server does serve.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
import numpy as np

from extractors.chat import Completion, Message, ToolCall, Usage
from graph import ConfigError, LLMError, RetryableLLMError

__all__ = ["OpenAIChatClient", "OpenAIEmbedder"]

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_START_HINT = (
    "start it (`threadline serve-model-local` runs a local one) or point "
    "THREADLINE_MODEL__BASE_URL at your vLLM server"
)


class OpenAIChatClient:
    """Chat completions from an OpenAI-compatible server (``base_url`` ends in ``/v1``).

    Use as ``async with OpenAIChatClient(...) as model:``; :meth:`check` verifies that the
    server is up and serves ``model``. ``usage`` sums every call's tokens.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        concurrency: int = 4,
        max_tokens: int = 512,
        retries: int = 2,
        backoff_s: float = 0.5,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"the model base URL {base_url!r} is not an http(s) URL; "
                "set THREADLINE_MODEL__BASE_URL, e.g. http://vllm:8000/v1"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_tokens = max_tokens
        self.retries = retries
        self.backoff_s = backoff_s
        self.extra_body = dict(extra_body or {})
        self.usage = Usage()
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_bearer(api_key),
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=concurrency * 2),
        )
        self._slots = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def models(self) -> list[str]:
        """The model ids the server serves (``GET /models``)."""
        reply = await self._send("GET", "/models", None)
        return [str(m.get("id")) for m in reply.get("data", []) if isinstance(m, dict)]

    async def check(self) -> None:
        """Raise :class:`LLMError` unless the server is reachable and serves ``model``."""
        served = await self.models()
        if self.model not in served:
            raise LLMError(
                f"the model server at {self.base_url} does not serve {self.model!r}; it serves "
                f"{', '.join(map(repr, served)) or 'nothing'} — set THREADLINE_MODEL__MODEL"
            )

    # ------------------------------------------------------------------ chat

    def _body(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any] | None,
        schema_name: str,
        max_tokens: int | None,
        temperature: float,
        stream: bool,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": temperature,
            **self.extra_body,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        if tools:
            body["tools"] = list(tools)
            body["tool_choice"] = "auto"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "reply",
        max_tokens: int | None = None,
        temperature: float = 0.0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Completion:
        """One reply (see :class:`extractors.chat.ChatModel`)."""
        body = self._body(
            messages, schema, schema_name, max_tokens, temperature, stream=False, tools=tools
        )
        started = time.perf_counter()
        reply = await self._send("POST", "/chat/completions", body)
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise LLMError(
                f"the model server sent a reply without choices: {reply!r:.200}"
            ) from exc
        usage = _usage(reply.get("usage"))
        self.usage += usage
        return Completion(
            text=text,
            model=str(reply.get("model") or self.model),
            usage=usage,
            finish_reason=choice.get("finish_reason"),
            ms=round((time.perf_counter() - started) * 1000, 2),
            tool_calls=_tool_calls(choice["message"].get("tool_calls")),
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "reply",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> AsyncIterator[str | Completion]:
        """Text deltas as they arrive, then the whole :class:`Completion`.

        A failure before the first delta is retried like :meth:`complete`; after it, the
        error is raised (half an answer cannot be retried transparently).
        """
        body = self._body(messages, schema, schema_name, max_tokens, temperature, stream=True)
        started = time.perf_counter()
        for attempt in range(self.retries + 1):
            state = _Streamed(model=self.model)
            try:
                async for delta in self._stream_once(body, state):
                    yield delta
            except LLMError as exc:
                retry = isinstance(exc, RetryableLLMError) and attempt < self.retries
                if state.parts or not retry:
                    raise
                await self._pause(attempt, exc)
                continue
            usage = state.usage if state.usage.calls else Usage(calls=1)
            self.usage += usage
            yield Completion(
                text="".join(state.parts),
                model=state.model,
                usage=usage,
                finish_reason=state.finish,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return

    async def _stream_once(self, body: dict[str, Any], state: _Streamed) -> AsyncIterator[str]:
        try:
            async with (
                self._slots,
                self._http.stream("POST", "/chat/completions", json=body) as resp,
            ):
                if resp.status_code >= 400:
                    await resp.aread()
                    self._raise_for(resp)
                async for line in resp.aiter_lines():
                    chunk = _event(line)
                    if chunk is None:
                        continue
                    if chunk.get("usage"):
                        state.usage = _usage(chunk["usage"])
                    state.model = str(chunk.get("model") or state.model)
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        state.finish = choice.get("finish_reason") or state.finish
                        if delta:
                            state.parts.append(delta)
                            yield delta
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    # ------------------------------------------------------------------ transport

    async def _send(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            try:
                async with self._slots:
                    resp = await self._http.request(method, path, json=body)
                if resp.status_code >= 400:
                    self._raise_for(resp)
                try:
                    data = resp.json()
                except ValueError as exc:
                    raise LLMError(
                        f"the model server at {self.base_url} answered {path} with something "
                        f"that is not JSON: {resp.text[:200]!r}"
                    ) from exc
            except RetryableLLMError as exc:
                if attempt == self.retries:
                    raise
                await self._pause(attempt, exc)
                continue
            except httpx.HTTPError as exc:
                error = self._transport_error(exc)
                if attempt == self.retries or not isinstance(error, RetryableLLMError):
                    raise error from exc
                await self._pause(attempt, error)
                continue
            if not isinstance(data, dict):
                raise LLMError(f"the model server answered {path} with {data!r:.200}")
            return data
        raise LLMError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _pause(self, attempt: int, error: LLMError) -> None:
        after = error.retry_after if isinstance(error, RetryableLLMError) else None
        wait = min(after, 30.0) if after else self.backoff_s * 2**attempt
        wait *= 1 + random.random() * 0.25  # noqa: S311 - jitter, not security
        logger.warning("model call failed (%s); retry %d in %.2fs", error, attempt + 1, wait)
        await asyncio.sleep(wait)

    def _transport_error(self, exc: httpx.HTTPError) -> LLMError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return RetryableLLMError(
                f"cannot reach the model server at {self.base_url} ({exc}); {_START_HINT}"
            )
        if isinstance(exc, httpx.TimeoutException):
            return RetryableLLMError(
                f"the model server at {self.base_url} did not answer in time "
                f"({type(exc).__name__}); raise THREADLINE_MODEL__TIMEOUT_S or lower "
                "THREADLINE_MODEL__MAX_TOKENS"
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            return RetryableLLMError(f"the model server at {self.base_url} dropped the call: {exc}")
        return LLMError(f"calling the model server at {self.base_url} failed: {exc}")

    def _raise_for(self, resp: httpx.Response) -> None:
        detail = _server_message(resp)
        status = resp.status_code
        if status in _RETRYABLE_STATUS:
            retry_after = resp.headers.get("retry-after", "")
            raise RetryableLLMError(
                f"the model server at {self.base_url} answered {status}: {detail}",
                retry_after=float(retry_after) if retry_after.isdigit() else None,
            )
        if status in {401, 403}:
            raise LLMError(
                f"the model server at {self.base_url} refused the API key ({status}: {detail}); "
                "set THREADLINE_MODEL__API_KEY"
            )
        if status == 404:
            raise LLMError(
                f"the model server at {self.base_url} answered 404 ({detail}); check "
                f"THREADLINE_MODEL__BASE_URL (it ends in /v1) and THREADLINE_MODEL__MODEL "
                f"({self.model!r})"
            )
        raise LLMError(
            f"the model server at {self.base_url} rejected the call ({status}): {detail}"
        )


@dataclass(slots=True)
class _Streamed:
    model: str
    parts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish: str | None = None


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM serves
    embedding models), as unit-length float32 rows — an :class:`extractors.Embedder`."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        batch_size: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size = batch_size
        self._headers = _bearer(api_key)
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        """Vector size (asks the server once)."""
        if self._dimension is None:
            self._dimension = int(self.embed_sync(["dimension probe"]).shape[1])
        return self._dimension

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Blocking embeddings (worker threads)."""
        with httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=self._timeout
        ) as http:
            rows: list[list[float]] = []
            for i in range(0, len(texts), self.batch_size):
                try:
                    resp = http.post(
                        "/embeddings",
                        json={"model": self.model, "input": list(texts[i : i + self.batch_size])},
                    )
                except httpx.HTTPError as exc:
                    raise LLMError(
                        f"cannot reach the embedding server at {self.base_url} ({exc}); "
                        "check THREADLINE_EMBEDDING__BASE_URL"
                    ) from exc
                rows += self._rows(resp)
        return _unit(rows, self.dimension if self._dimension else None)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings (``(len(texts), dimension)``, unit rows)."""
        return await asyncio.to_thread(self.embed_sync, texts)

    def _rows(self, resp: httpx.Response) -> list[list[float]]:
        if resp.status_code >= 400:
            raise LLMError(
                f"the embedding server at {self.base_url} answered {resp.status_code}: "
                f"{_server_message(resp)}; check THREADLINE_EMBEDDING__MODEL ({self.model!r})"
            )
        data = resp.json().get("data", [])
        ordered = sorted(data, key=lambda d: d.get("index", 0))
        return [list(map(float, d["embedding"])) for d in ordered]


def _bearer(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _unit(rows: list[list[float]], dimension: int | None) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2 or (dimension is not None and matrix.shape[1] != dimension):
        raise LLMError(f"the embedding server returned vectors of shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def _event(line: str) -> dict[str, Any] | None:
    """One server-sent event's JSON (``data: {...}``), or None for keep-alives and [DONE]."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if not payload or payload == "[DONE]":
        return None
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise LLMError(
            f"the model server streamed something that is not JSON: {payload[:200]!r}"
        ) from exc
    if isinstance(chunk, dict) and "error" in chunk:
        raise LLMError(f"the model server failed mid-stream: {chunk['error']}")
    return chunk if isinstance(chunk, dict) else None


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    calls = []
    for n, item in enumerate(raw or ()):
        function = item.get("function") or {} if isinstance(item, dict) else {}
        name = function.get("name")
        if not name:
            continue
        arguments = function.get("arguments") or "{}"
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(
            ToolCall(id=str(item.get("id") or f"call_{n}"), name=str(name), arguments=arguments)
        )
    return tuple(calls)


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage(calls=1)
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0), 1)


def _server_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or data)[:300]
