"""The answerer seam: retrieved evidence in, a :class:`Draft` (answer + cited claims) out.

Two answerers implement :class:`Answerer`: the extractive one (no model; picks the
answer from retrieved sentences and graph facts) and the model synthesizer (a chat model
writes the answer and cites evidence ids). :class:`FallbackAnswerer` puts one in front of
the other. The query pipeline runs whichever it was given the same way: it streams the
draft, validates its claims, and finalizes the answer from the verdicts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from agents.retrieval import Retrieval
from extractors.chat import ModelReplyError, Usage
from graph import Access, ChunkId
from graph.provenance import Claim

__all__ = ["NOT_FOUND", "Answerer", "Draft", "FallbackAnswerer", "draft"]

logger = logging.getLogger(__name__)

#: The answer when no supported claim states one.
NOT_FOUND = "not found in the sources"


@dataclass(frozen=True, slots=True)
class Draft:
    """An answer before validation.

    Attributes:
        answer: the short answer text.
        claims: the statements that support it, each citing facts and spans.
        synthesis: which kind of answerer wrote it.
        problems: claim index → why its citations could not all be resolved (the
            validator reports them).
        cited_from: the chunks the answerer was shown; a claim citing any other chunk is
            not supported. ``None`` when the answerer cites only what it read itself.
        model: the model that wrote it, if any.
        usage: tokens spent writing it.
        prompts: ids (``name@version``) of the prompts used.
        note: why the draft is not what was asked for (e.g. a model reply was rejected
            and the answer was written extractively).
    """

    answer: str
    claims: tuple[Claim, ...]
    synthesis: Literal["extractive", "model"] = "extractive"
    problems: Mapping[int, str] = field(default_factory=dict)
    cited_from: frozenset[ChunkId] | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    prompts: tuple[str, ...] = ()
    note: str = ""


class Answerer(Protocol):
    """Writes a draft answer from retrieved evidence."""

    def stream(self, retrieval: Retrieval, access: Access) -> AsyncIterator[str | Draft]:
        """The answer text as it is written (answerers that write it piece by piece),
        then the :class:`Draft`, always last."""
        ...


async def draft(answerer: Answerer, retrieval: Retrieval, access: Access) -> Draft:
    """The draft of ``answerer``, without the streamed text."""
    result: Draft | None = None
    async for part in answerer.stream(retrieval, access):
        if isinstance(part, Draft):
            result = part
    if result is None:
        raise ModelReplyError("the answerer ended without a draft")
    return result


class FallbackAnswerer:
    """``primary``'s draft, or ``fallback``'s when ``primary``'s reply is unusable.

    Only an unusable model reply (:class:`ModelReplyError`) falls back; a failed call
    (server down, key refused) is an error the caller should see.
    """

    def __init__(self, primary: Answerer, fallback: Answerer) -> None:
        self.primary = primary
        self.fallback = fallback

    async def stream(self, retrieval: Retrieval, access: Access) -> AsyncIterator[str | Draft]:
        """The primary answerer's stream, or the fallback's with a note saying why."""
        try:
            async for part in self.primary.stream(retrieval, access):
                yield part
        except ModelReplyError as exc:
            note = f"the model's answer was rejected ({exc}); answered extractively"
            logger.warning("%s", note)
            async for part in self.fallback.stream(retrieval, access):
                yield replace(part, note=note) if isinstance(part, Draft) else part
