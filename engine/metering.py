"""Metering: who is calling, and a chat model that checks quotas and counts every call.

The caller (tenant and API key) travels in a context variable: the API sets it when it
authenticates a key, :class:`~engine.threadline.Threadline` sets it from the access of a
question or an ingest when nothing has. :class:`MeteredChatModel` wraps the model client
every part of Threadline calls (synthesis, the support judge, the planner, model
extraction, the research agent): before each call it checks the caller's quotas, after it
records the tokens the server reported in the :class:`~engine.usage.UsageLedger`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from engine.llm import OpenAIChatClient
from engine.usage import Caller, UsageLedger
from extractors.chat import Completion, Message, Usage
from graph import Access

__all__ = [
    "CALLER",
    "MeteredChatModel",
    "Spend",
    "acting_as",
    "caller_for",
    "metered_steps",
    "spending",
]

T = TypeVar("T")

#: The tenant and key the current work is counted against.
CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


@dataclass(slots=True)
class Spend:
    """Tokens spent inside one :func:`spending` block (every call, whatever its purpose)."""

    tokens: int = 0


_SPEND: contextvars.ContextVar[Spend | None] = contextvars.ContextVar("spend", default=None)

#: A prompt's name → the purpose its calls are counted under.
_PURPOSES = {
    "synthesize": "synthesis",
    "support": "judge",
    "plan": "planner",
    "extract": "extraction",
    "research": "research",
    "report": "research",
}


def caller_for(access: Access) -> Caller:
    """The caller already set (the API's key), else the tenant of ``access``."""
    return CALLER.get() or Caller(tenant=access.tenant)


@contextlib.contextmanager
def acting_as(caller: Caller) -> Iterator[None]:
    """Count the model calls made inside the block against ``caller``."""
    token = CALLER.set(caller)
    try:
        yield
    finally:
        # An async generator closed from another task runs this in another context,
        # where the token does not apply; that context never saw the value either.
        with contextlib.suppress(ValueError):
            CALLER.reset(token)


@contextlib.contextmanager
def spending() -> Iterator[Spend]:
    """Sum the tokens of every model call made inside the block."""
    spend = Spend()
    token = _SPEND.set(spend)
    try:
        yield spend
    finally:
        with contextlib.suppress(ValueError):
            _SPEND.reset(token)


async def metered_steps(caller: Caller, spend: Spend, steps: AsyncIterator[T]) -> AsyncIterator[T]:
    """``steps``, each one computed as ``caller`` with its tokens summed in ``spend``.

    The caller is set around each step only, never across a ``yield``: a consumer that
    stops reading early (and leaves this generator suspended) keeps its own caller.
    """
    while True:
        who, spent = CALLER.set(caller), _SPEND.set(spend)
        try:
            step = await anext(steps)
        except StopAsyncIteration:
            return
        finally:
            _SPEND.reset(spent)
            CALLER.reset(who)
        yield step


class MeteredChatModel:
    """A :class:`~extractors.chat.ChatModel` that checks quotas before each call and
    records each call in the ledger (when one is open)."""

    def __init__(self, client: OpenAIChatClient) -> None:
        self.client = client
        self.model = client.model
        self.ledger: UsageLedger | None = None

    @property
    def usage(self) -> Usage:
        """Every call's tokens since the client was made (all callers)."""
        return self.client.usage

    async def check(self) -> None:
        """Raise unless the server is reachable and serves the model (no tokens spent)."""
        await self.client.check()

    async def models(self) -> list[str]:
        """The model ids the server serves."""
        return await self.client.models()

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.close()

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
        """One reply (see :class:`extractors.chat.ChatModel`), counted."""
        caller = await self._admit()
        completion = await self.client.complete(
            messages,
            schema=schema,
            schema_name=schema_name,
            max_tokens=max_tokens,
            temperature=temperature,
            tools=tools,
        )
        purpose = "research" if tools else _PURPOSES.get(schema_name, schema_name)
        await self._record(caller, purpose, completion)
        return completion

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        schema: dict[str, Any] | None = None,
        schema_name: str = "reply",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> AsyncIterator[str | Completion]:
        """Text deltas, then the whole :class:`Completion`, counted."""
        caller = await self._admit()
        async for part in self.client.stream(
            messages,
            schema=schema,
            schema_name=schema_name,
            max_tokens=max_tokens,
            temperature=temperature,
        ):
            if isinstance(part, Completion):
                await self._record(caller, _PURPOSES.get(schema_name, schema_name), part)
            yield part

    async def _admit(self) -> Caller:
        caller = CALLER.get() or Caller(tenant=None)
        if self.ledger is not None:
            await self.ledger.check(caller, tokens=True)
        return caller

    async def _record(self, caller: Caller, purpose: str, completion: Completion) -> None:
        spend = _SPEND.get()
        if spend is not None:
            spend.tokens += completion.usage.total_tokens
        if self.ledger is not None:
            await self.ledger.record_call(
                caller,
                purpose=purpose,
                model=completion.model,
                usage=completion.usage,
                ms=completion.ms,
            )
