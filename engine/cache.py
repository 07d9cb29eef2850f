"""Caches around the query pipeline: answers to repeated questions, and query embeddings.

An answer is reused only for the same question (normalised: Unicode NFC, whitespace
collapsed; case is kept, entity recognition reads it), the same mode, depth and options,
the same model and prompt versions, the same access scope (tenant, sorted groups, or
operator access) and the same corpus version of that scope. An ingest or delete bumps
the version of each tenant it touched (and the operators' version, who see every tenant)
and drops that scope's entries at once, so no answer built from a deleted document
outlives it. Two callers whose access differs in any way never share an entry.

Both caches live in this process's memory: nothing cached is written to disk, and the
data-dir lock means one process answers from a data dir at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from agents import Mode
from engine import clock
from engine.metering import CALLER, Spend, caller_for, metered_steps
from engine.query import AskEvent, QueryPipeline, checked_question
from engine.usage import Caller, UsageLedger
from extractors import Embedder
from graph import Access
from graph.provenance import Answer

__all__ = ["AnswerCache", "AnswerKey", "CacheStats", "MeteredAsks", "QueryEmbeddingCache"]

_SPACES = re.compile(r"\s+")


@dataclass(slots=True)
class CacheStats:
    """Lookups of one cache since the process started."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over lookups (0 before the first lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True, slots=True)
class AnswerKey:
    """Where one answer is filed: its digest, the tenant whose changes drop it (``None``:
    operator access, dropped by any change) and the corpus version it was built from."""

    digest: str
    tenant: str | None
    version: int


@dataclass(slots=True)
class _Entry:
    answer: Answer
    tenant: str | None
    tokens: int
    # Read at call time, so a test that moves engine.clock moves it here too.
    at: datetime = field(default_factory=lambda: clock.now())  # noqa: PLW0108


@dataclass(slots=True)
class AnswerCache:
    """Answers by question, options, model, prompts, access scope and corpus version."""

    max_entries: int = 2048
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _versions: dict[str, int] = field(default_factory=dict)
    _every: int = 0  # bumped by any change: the operators' scope

    def version(self, tenant: str | None) -> int:
        """The corpus version of a tenant's scope (``None``: every tenant)."""
        return self._every if tenant is None else self._versions.get(tenant, 0)

    def key(
        self,
        question: str,
        access: Access,
        *,
        mode: Mode,
        k: int,
        unsupported: bool,
        model: str,
        prompts: Sequence[str],
        config: str = "",
    ) -> AnswerKey:
        """The key of an answer to ``question`` as ``access`` would get it now."""
        version = self.version(access.tenant)
        scope = {
            "tenant": access.tenant,
            "groups": sorted(access.groups),
            "operator": access.is_admin,
        }
        body = {
            "question": normalize_question(question),
            "mode": mode,
            "k": k,
            "unsupported": unsupported,
            "model": model,
            "prompts": sorted(prompts),
            "config": config,
            "scope": scope,
            "version": version,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return AnswerKey(digest=digest, tenant=access.tenant, version=version)

    def get(self, key: AnswerKey) -> tuple[Answer, int] | None:
        """The answer filed under ``key`` and the tokens it cost, or None."""
        entry = self._entries.get(key.digest)
        if entry is None or key.version != self.version(key.tenant):
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key.digest)
        self.stats.hits += 1
        return entry.answer, entry.tokens

    def put(self, key: AnswerKey, answer: Answer, *, tokens: int = 0) -> None:
        """File ``answer`` unless the corpus changed since ``key`` was made."""
        if key.version != self.version(key.tenant):
            return  # built from a corpus that has changed since: never reused
        self._entries[key.digest] = _Entry(answer, key.tenant, tokens)
        self._entries.move_to_end(key.digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def changed(self, tenants: Iterable[str]) -> int:
        """Documents of ``tenants`` were ingested or deleted: bump their versions and
        the operators', and drop their entries. Returns how many were dropped."""
        touched = set(tenants)
        for tenant in touched:
            self._versions[tenant] = self._versions.get(tenant, 0) + 1
        self._every += 1
        stale = [d for d, e in self._entries.items() if e.tenant is None or e.tenant in touched]
        for digest in stale:
            del self._entries[digest]
        return len(stale)

    def answers(self) -> list[Answer]:
        """The cached answers (for subject requests)."""
        return [e.answer for e in self._entries.values()]

    def drop(self, match: Callable[[Answer], bool]) -> int:
        """Drop the entries whose answer ``match`` picks; returns how many."""
        stale = [d for d, e in self._entries.items() if match(e.answer)]
        for digest in stale:
            del self._entries[digest]
        return len(stale)

    def expire(self, before: datetime) -> int:
        """Drop the entries filed before ``before`` (retention); returns how many."""
        stale = [d for d, e in self._entries.items() if e.at < before]
        for digest in stale:
            del self._entries[digest]
        return len(stale)

    def __len__(self) -> int:
        return len(self._entries)


class QueryEmbeddingCache:
    """An :class:`~extractors.Embedder` that remembers the vectors of single texts (the
    questions the retriever embeds), per tenant of the current caller; batches pass
    through."""

    def __init__(self, inner: Embedder, *, max_entries: int = 8192) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._vectors: OrderedDict[tuple[str | None, str], np.ndarray] = OrderedDict()
        self._at: dict[tuple[str | None, str], datetime] = {}

    @property
    def dimension(self) -> int:
        """Vector size."""
        return self.inner.dimension

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; a single text is looked up first."""
        if len(texts) != 1:
            return await self.inner.embed(texts)
        caller = CALLER.get()
        key = (caller.tenant if caller else None, texts[0])
        found = self._vectors.get(key)
        if found is not None:
            self._vectors.move_to_end(key)
            self.stats.hits += 1
            return found.copy()
        self.stats.misses += 1
        vectors = await self.inner.embed(texts)
        self._vectors[key] = vectors.copy()
        self._at[key] = clock.now()
        while len(self._vectors) > self.max_entries:
            self._at.pop(self._vectors.popitem(last=False)[0], None)
        return vectors

    def texts(self) -> list[str]:
        """The texts (questions) whose vectors are cached."""
        return [text for _, text in self._vectors]

    def drop(self, match: Callable[[str], bool]) -> int:
        """Drop the vectors of the texts ``match`` picks; returns how many."""
        stale = [key for key in self._vectors if match(key[1])]
        for key in stale:
            del self._vectors[key]
            self._at.pop(key, None)
        return len(stale)

    def expire(self, before: datetime) -> int:
        """Drop the vectors cached before ``before`` (retention); returns how many."""
        stale = [key for key in self._vectors if self._at.get(key, before) < before]
        for key in stale:
            del self._vectors[key]
            del self._at[key]
        return len(stale)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Blocking embeddings (not cached)."""
        return self.inner.embed_sync(texts)


class MeteredAsks:
    """Questions through the answer cache, the quotas and the usage ledger.

    Each question is counted against its caller (quota ``asks_per_day`` first); a cached
    answer is served without a model call, otherwise the token quotas are checked when
    the pipeline will call a model, and the pipeline's answer is filed for next time.
    """

    def __init__(self, cache: AnswerCache | None) -> None:
        self.cache = cache
        self.ledger: UsageLedger | None = None
        # Changes per tenant and in all, kept whether or not answers are cached: what is
        # built per scope from the corpus (redaction's masks) is rebuilt when they move.
        self._changes: dict[str, int] = {}
        self._every = 0

    async def stream(
        self,
        pipeline: QueryPipeline,
        question: str,
        access: Access,
        *,
        k: int,
        mode: Mode,
        unsupported: bool,
        model: str,
        prompts: Sequence[str],
        config: str,
    ) -> AsyncIterator[AskEvent]:
        """The pipeline's events, or a cached answer's (evidence, answer, claims, done)."""
        text = checked_question(question)
        caller = caller_for(access)
        started = time.perf_counter()
        if self.ledger is not None:
            await self.ledger.check(caller, tokens=False, asks=True)
        key = None
        if self.cache is not None:
            key = self.cache.key(
                text,
                access,
                mode=mode,
                k=k,
                unsupported=unsupported,
                model=model,
                prompts=prompts,
                config=config,
            )
            cached = await self._cached(key, caller, started)
            if cached is not None:
                for event in _replay(cached):
                    yield event
                return
        if self.ledger is not None and prompts:
            await self.ledger.check(caller, tokens=True)
        spend = Spend()
        events = pipeline.stream(text, access, k=k, mode=mode, unsupported=unsupported)
        async for event in metered_steps(caller, spend, events):
            if event.kind == "done" and event.answer is not None:
                # Filed and counted before "done" is yielded: a consumer may stop
                # reading at the answer.
                await self._answered(key, event.answer, caller, started, spend.tokens)
            yield event

    async def _cached(self, key: AnswerKey, caller: Caller, started: float) -> Answer | None:
        """The cached answer (counted as a question), or None."""
        found = self.cache.get(key) if self.cache is not None else None
        if found is None:
            return None
        cached, tokens = found
        lookup = round(_ms(started), 2)
        # What this answer cost: a lookup, no tokens.
        answer = cached.model_copy(
            update={"timings_ms": {"cache": lookup, "total": lookup}, "usage": {}}
        )
        if self.ledger is not None:
            await self.ledger.record_ask(
                caller, model=_model(answer), ms=lookup, cache_hit=True, saved_tokens=tokens
            )
        return answer

    async def _answered(
        self, key: AnswerKey | None, answer: Answer, caller: Caller, started: float, tokens: int
    ) -> None:
        if key is not None and self.cache is not None:
            self.cache.put(key, answer, tokens=tokens)
        if self.ledger is not None:
            await self.ledger.record_ask(
                caller, model=_model(answer), ms=_ms(started), cache_hit=False
            )

    def changed(self, tenants: Iterable[str]) -> None:
        """Documents of ``tenants`` were ingested or deleted."""
        touched = set(tenants)
        for tenant in touched:
            self._changes[tenant] = self._changes.get(tenant, 0) + 1
        self._every += 1
        if self.cache is not None:
            self.cache.changed(touched)

    def version(self, tenant: str | None) -> int:
        """How often the documents of ``tenant`` (``None``: of any tenant) have changed
        since open."""
        return self._every if tenant is None else self._changes.get(tenant, 0)


def normalize_question(question: str) -> str:
    """A question as the answer cache compares it: NFC, whitespace collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", question)).strip()


def _replay(answer: Answer) -> list[AskEvent]:
    kinds: tuple[Literal["evidence", "answer", "claims"], ...] = ("evidence", "answer", "claims")
    events = [
        AskEvent(kind=kinds[0], evidence=answer.evidence),
        AskEvent(kind=kinds[1], text=answer.answer),
        AskEvent(kind=kinds[2], claims=answer.claims, text=answer.answer),
    ]
    return [*events, AskEvent(kind="done", answer=answer, text=answer.answer)]


def _model(answer: Answer) -> str:
    return answer.model or "extractive"


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
