"""A scripted :class:`extractors.chat.ChatModel` (the seam Threadline owns): it replies
with the texts it was given, in order, and records what it was asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from extractors.chat import Completion, Message, Usage


class ScriptedModel:
    """Replies with ``replies`` in order (the last one repeats)."""

    def __init__(self, replies: Sequence[str], *, model: str = "scripted") -> None:
        self.model = model
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def _next(self, messages: Sequence[Message], schema: dict[str, Any] | None) -> str:
        self.calls.append({"messages": list(messages), "schema": schema})
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

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
        text = self._next(messages, schema)
        return Completion(text=text, model=self.model, usage=Usage(10, len(text) // 4, 1))

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "reply",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> AsyncIterator[str | Completion]:
        text = self._next(messages, schema)
        for i in range(0, len(text), 5):
            yield text[i : i + 5]
        yield Completion(text=text, model=self.model, usage=Usage(10, len(text) // 4, 1))

    async def close(self) -> None:
        """Nothing to close (a served model's client closes its connections)."""
