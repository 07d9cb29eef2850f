"""The seam to a chat model: what the extractors and agents need from one, and the one
way a prompt's reply is asked for and read.

Threadline talks to models through :class:`ChatModel` only; :mod:`engine.llm` implements
it for OpenAI-compatible servers (vLLM in production). Messages are plain dicts in the
OpenAI chat format. A call with a ``schema`` asks for JSON that conforms to it
(structured output).

Every prompt declares its reply as a pydantic model (:mod:`extractors.prompts`).
:class:`ReplyFormat` turns that model into the schema sent and parses the reply into the
same model, so the two cannot disagree; :func:`ask` does both around one call. A reply
that does not fit raises :class:`~graph.ModelReplyError` saying where.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from graph import ModelReplyError

__all__ = [
    "ChatModel",
    "Completion",
    "Message",
    "ModelReplyError",
    "ReplyFormat",
    "ToolCall",
    "Usage",
    "ask",
    "parse_json",
    "reply_usage",
    "salvage_json",
    "strict_schema",
]

R = TypeVar("R", bound=BaseModel)


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


@dataclass(frozen=True, slots=True)
class ReplyFormat(Generic[R]):
    """The reply a call asks for: a pydantic model, with some string fields optionally
    narrowed to the values this call offers.

    Attributes:
        model: the reply model (frozen, ``extra="forbid"``, its limits in its fields).
        name: the schema's name in the request (the prompt's name).
        enums: dotted field path → the values allowed there. Lists are walked through:
            ``"claims.evidence"`` is every id in every claim's ``evidence``. An empty
            collection on a list field allows no items.
    """

    model: type[R]
    name: str = "reply"
    enums: Mapping[str, Collection[str]] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """The JSON schema sent as structured output: the model's, made strict
        (:func:`strict_schema`), with the offered values as enums."""
        schema = strict_schema(self.model.model_json_schema())
        for path, values in self.enums.items():
            _narrow(schema, path.split("."), list(dict.fromkeys(values)), path)
        return schema

    def parse(self, text: str, *, salvage: bool = False) -> R:
        """The reply read into the model; with ``salvage`` a reply cut off at its token
        limit keeps its complete items (:func:`salvage_json`).

        Raises:
            ModelReplyError: not JSON, or JSON the schema does not admit (the message
                says where).
        """
        try:
            data = salvage_json(text) if salvage else parse_json(text)
        except ModelReplyError as exc:
            exc.reply = text
            raise
        try:
            value = self.model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the top level"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ModelReplyError(
                f"the model's JSON does not fit the {self.name} schema at {where}: "
                f"{first['msg']}{more}",
                reply=text,
            ) from exc
        dumped = value.model_dump(mode="json")
        for path, values in self.enums.items():
            allowed = set(values)
            for where, found in _values_at(dumped, path.split("."), ()):
                if found not in allowed:
                    raise ModelReplyError(
                        f"the model's JSON does not fit the {self.name} schema at {where}: "
                        f"{found!r} is not one of the values offered",
                        reply=text,
                    )
        return value


async def ask(
    model: ChatModel,
    messages: Sequence[Message],
    reply: ReplyFormat[R],
    *,
    max_tokens: int | None = None,
    salvage: bool = False,
) -> tuple[R, Completion]:
    """One call that asks for ``reply``'s schema and reads the answer into its model.

    Returns:
        The parsed reply and the completion it came from (its usage, its model).

    Raises:
        ModelReplyError: the reply does not fit (its ``completion`` is the reply, so its
            usage can still be counted: :func:`reply_usage`).
        LLMError: the call itself failed.
    """
    completion = await model.complete(
        messages, schema=reply.schema(), schema_name=reply.name, max_tokens=max_tokens
    )
    try:
        return reply.parse(completion.text, salvage=salvage), completion
    except ModelReplyError as exc:
        exc.completion = completion
        raise


def reply_usage(error: ModelReplyError) -> Usage:
    """The tokens a rejected reply used (none when the error carries no completion)."""
    completion = error.completion
    return completion.usage if isinstance(completion, Completion) else Usage()


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema in the shape OpenAI-style ``json_schema`` response formats
    take (vLLM, llama.cpp's ``llama-server``): ``$ref``s inlined and ``$defs`` dropped,
    no titles, and every object closed (``additionalProperties: false``) with its
    ``required`` list."""
    defs: Mapping[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = copy.deepcopy(defs[ref.removeprefix("#/$defs/")])
            return walk({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in {"$defs", "title"}:
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        if isinstance(out.get("properties"), dict):
            out.setdefault("additionalProperties", False)
            out.setdefault("required", [])
        return out

    return dict(walk(dict(schema)))


def _narrow(node: dict[str, Any], parts: list[str], values: list[str], path: str) -> None:
    """Puts ``values`` as the enum of the string field at ``parts`` (in place)."""
    while node.get("type") == "array" and isinstance(node.get("items"), dict):
        if not parts and not values:
            node["maxItems"] = 0  # nothing offered: no items
            return
        node = node["items"]
    if parts:
        props = node.get("properties", {})
        if parts[0] not in props:
            raise ValueError(f"enum path {path!r}: the reply has no field {parts[0]!r}")
        _narrow(props[parts[0]], parts[1:], values, path)
        return
    if node.get("type") != "string":
        raise ValueError(f"enum path {path!r} does not name a string field")
    if not values:
        raise ValueError(f"enum path {path!r}: a required string needs at least one value")
    node["enum"] = values


def _values_at(data: Any, parts: list[str], loc: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """``(location, value)`` of every value at the dotted path, lists walked through."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _values_at(item, parts, (*loc, str(i)))
    elif not parts:
        yield ".".join(loc), data
    elif isinstance(data, dict) and parts[0] in data:
        yield from _values_at(data[parts[0]], parts[1:], (*loc, parts[0]))
