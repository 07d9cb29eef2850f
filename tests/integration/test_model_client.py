"""The model client's retry policy against a deliberately flaky OpenAI-compatible server
(real HTTP on 127.0.0.1): retryable failures are retried with backoff, others are not."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine import Settings, Threadline
from engine.llm import OpenAIChatClient
from engine.settings import ModelSettings
from graph import LLMError, RetryableLLMError
from tests.bolt_server import free_port


@dataclass
class Script:
    """Statuses the server answers with, in order (then 200 forever)."""

    statuses: list[int] = field(default_factory=list)
    calls: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)


def _app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, object]:
        return {"object": "list", "data": [{"id": "flaky-model", "object": "model"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        script.calls += 1
        body = await request.json()
        script.bodies.append(body)
        status = script.statuses.pop(0) if script.statuses else 200
        if status != 200:
            headers = {"Retry-After": "0"} if status == 429 else {}
            return JSONResponse({"error": {"message": f"scripted {status}"}}, status, headers)
        text = json.dumps({"answer": "ok", "claims": []})
        if body.get("tools"):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": body["tools"][0]["function"]["name"],
                    "arguments": '{"name": "Paris"}',
                },
            }
            return JSONResponse(
                {
                    "model": "flaky-model",
                    "choices": [
                        {
                            "message": {"content": None, "tool_calls": [call]},
                            "finish_reason": "tool_calls",
                        }
                    ],
                }
            )
        if body.get("stream"):

            def events() -> Iterator[str]:
                for piece in (text[:10], text[10:]):
                    chunk = {"model": "flaky-model", "choices": [{"delta": {"content": piece}}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                usage = {"prompt_tokens": 7, "completion_tokens": 5}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse(
            {
                "model": "flaky-model",
                "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5},
            }
        )

    return app


@pytest.fixture(scope="module")
def flaky() -> Iterator[tuple[str, Script]]:
    script = Script()
    server = uvicorn.Server(
        uvicorn.Config(_app(script), host="127.0.0.1", port=free_port(), log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the flaky server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}/v1", script
    server.should_exit = True
    thread.join(timeout=10)


def _client(base: str, retries: int = 3) -> OpenAIChatClient:
    return OpenAIChatClient(base_url=base, model="flaky-model", retries=retries, backoff_s=0.01)


HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(flaky: tuple[str, Script], status: int) -> None:
    base, script = flaky
    script.statuses, script.calls = [status, status], 0
    async with _client(base) as client:
        reply = await client.complete(HELLO)
    assert script.calls == 3
    assert json.loads(reply.text)["answer"] == "ok"
    assert client.usage.calls == 1
    assert client.usage.prompt_tokens == 7


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_other_failures_are_not_retried(flaky: tuple[str, Script], status: int) -> None:
    base, script = flaky
    script.statuses, script.calls = [status], 0
    async with _client(base) as client:
        with pytest.raises(LLMError) as caught:
            await client.complete(HELLO)
    assert not isinstance(caught.value, RetryableLLMError)
    assert script.calls == 1
    assert f"scripted {status}" in str(caught.value)
    if status == 401:
        assert "THREADLINE_MODEL__API_KEY" in str(caught.value)


async def test_retries_give_up_with_the_last_error(flaky: tuple[str, Script]) -> None:
    base, script = flaky
    script.statuses, script.calls = [503, 503, 503], 0
    async with _client(base, retries=2) as client:
        with pytest.raises(RetryableLLMError, match="503"):
            await client.complete(HELLO)
    assert script.calls == 3


async def test_a_stream_is_retried_before_its_first_delta(flaky: tuple[str, Script]) -> None:
    base, script = flaky
    script.statuses, script.calls = [503], 0
    async with _client(base) as client:
        parts = [p async for p in client.stream(HELLO, schema={"type": "object"})]
    assert script.calls == 2
    *deltas, final = parts
    assert "".join(str(d) for d in deltas) == json.dumps({"answer": "ok", "claims": []})
    assert final.usage.completion_tokens == 5  # type: ignore[union-attr]
    body = script.bodies[-1]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["response_format"]["type"] == "json_schema"  # type: ignore[index]


async def test_request_fields_are_the_openai_and_vllm_ones(flaky: tuple[str, Script]) -> None:
    base, script = flaky
    script.statuses = []
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    async with _client(base) as client:
        client.extra_body = {"top_k": 20}  # vLLM sampling extras pass through
        await client.complete(HELLO, schema=schema, schema_name="thing", max_tokens=33)
    body = script.bodies[-1]
    assert body["model"] == "flaky-model"
    assert body["max_tokens"] == 33
    assert body["top_k"] == 20
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }


async def test_a_wrong_model_name_lists_the_served_ones(flaky: tuple[str, Script]) -> None:
    base, _ = flaky
    async with OpenAIChatClient(base_url=base, model="other") as client:
        with pytest.raises(LLMError, match=r"does not serve 'other'.*'flaky-model'"):
            await client.check()


def test_a_base_url_that_is_not_http_is_a_config_error() -> None:
    from graph import ConfigError

    with pytest.raises(ConfigError, match="THREADLINE_MODEL__BASE_URL"):
        OpenAIChatClient(base_url="vllm:8000", model="m")


async def test_native_tool_calls_are_parsed(flaky: tuple[str, Script]) -> None:
    base, script = flaky
    script.statuses = []
    tools = [{"type": "function", "function": {"name": "facts", "parameters": {"type": "object"}}}]
    async with _client(base) as client:
        reply = await client.complete(HELLO, tools=tools)
    (call,) = reply.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_1",
        "facts",
        {"name": "Paris"},
    )
    assert script.bodies[-1]["tools"] == tools
    assert script.bodies[-1]["tool_choice"] == "auto"


async def test_a_refused_call_is_an_error_not_an_extractive_fallback(
    flaky: tuple[str, Script], tmp_path: Path
) -> None:
    """Only an unusable reply falls back to the extractive answer; a server refusing the
    call (here the API key) is reported."""
    base, script = flaky
    corpus = tmp_path / "pages.jsonl"
    corpus.write_text(
        json.dumps({"id": "a", "title": "Lotharingia", "text": "Lotharingia was a kingdom."})
        + "\n",
        encoding="utf-8",
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        model=ModelSettings(base_url=base, model="flaky-model", retries=0),
    )
    async with await Threadline.open(settings) as tl:
        await tl.ingest(tl.read([corpus]))
        script.statuses = [401]
        with pytest.raises(LLMError, match="THREADLINE_MODEL__API_KEY"):
            await tl.ask("What was Lotharingia?", llm=True)
