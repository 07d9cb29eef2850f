"""The seam to a language model: what the extractors and agents need from one.

Threadline talks to models through this protocol only; :mod:`engine.llm` implements it
for OpenAI-compatible servers (vLLM in production). Messages are plain dicts in the
OpenAI chat format. A call with a ``schema`` asks for JSON that conforms to it
(structured output); the caller still validates what comes back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from graph import LLMError

__all__ = [
    "ChatModel",
    "Completion",
    "Message",
    "ModelReplyError",
    "ToolCall",
    "Usage",
    "parse_json",
    "salvage_json",
]


class ModelReplyError(LLMError):
    """The model answered, but not with what was asked: not JSON, or JSON that does not fit
    the schema. (Unlike a failed call, asking again may help.)"""


#: ``{"role": "system" | "user" | "assistant" | "tool", "content": "...", ...}`` (an
#: assistant message may carry ``tool_calls``, a tool message a ``tool_call_id``).
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call (or a sum of calls) used, as the server counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function the model asked to call (OpenAI tool calling)."""

    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's reply: its text, the tools it wants called, why it stopped, its cost."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    ms: float = 0.0
    tool_calls: tuple[ToolCall, ...] = ()


@runtime_checkable
class ChatModel(Protocol):
    """A chat model behind an OpenAI-compatible API (or anything that behaves like one)."""

    model: str

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
        """One reply. With ``schema`` the server is asked for JSON conforming to it; with
        ``tools`` (OpenAI function definitions) it may ask for calls instead."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "reply",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> AsyncIterator[str | Completion]:
        """The reply as text deltas, then one :class:`Completion` with the whole text."""
        ...


def parse_json(text: str) -> Any:
    """The JSON value of a model's reply; a fenced block (```json ... ```) is unwrapped.

    Raises:
        ModelReplyError: the reply is not JSON (the message quotes its start).
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body.removeprefix("json").strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        shown = body[:120].replace("\n", " ")
        raise ModelReplyError(f"the model did not reply with JSON ({exc.msg}): {shown!r}") from exc


def salvage_json(text: str) -> Any:
    """The JSON of a reply that may have been cut off at its token limit: the longest
    prefix that ends after a complete value, with its open brackets closed. Only whole
    items survive (a half-written object is dropped, never guessed at).

    Raises:
        ModelReplyError: not even a prefix of the reply is JSON.
    """
    try:
        return parse_json(text)
    except ModelReplyError:
        pass
    body = text.strip()
    ends = [i for i, ch in enumerate(body) if ch in "}]"]
    for end in reversed(ends[-200:]):
        prefix = body[: end + 1]
        closers = _open_brackets(prefix)
        if closers is None:
            continue
        try:
            return json.loads(prefix + closers)
        except json.JSONDecodeError:
            continue
    return parse_json(text)  # raises with the original error


def _open_brackets(prefix: str) -> str | None:
    """The closing brackets ``prefix`` lacks (None when it ends inside a string)."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in prefix:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack:
                return None
            stack.pop()
    return None if in_string else "".join(reversed(stack))
