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

__all__ = ["ChatModel", "Completion", "Message", "Usage", "parse_json"]

#: ``{"role": "system" | "user" | "assistant", "content": "..."}``
Message = dict[str, str]


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
class Completion:
    """A model's reply: its text, why it stopped, and what it cost."""

    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    ms: float = 0.0


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
    ) -> Completion:
        """One reply. With ``schema`` the server is asked for JSON conforming to it."""
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
        LLMError: the reply is not JSON (the message quotes its start).
    """
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body.removeprefix("json").strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        shown = body[:120].replace("\n", " ")
        raise LLMError(f"the model did not reply with JSON ({exc.msg}): {shown!r}") from exc
