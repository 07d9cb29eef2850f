"""The usage ledger: every model call and every question, counted against tenant and key,
and the quotas checked against it.

One SQLite file, ``usage.sqlite`` in the data dir. A row is either a model ``call``
(purpose ``synthesis``, ``judge``, ``planner``, ``extraction`` or ``research``; the tokens
the model server reported, the model, the latency) or an ``ask`` (a question answered;
whether the answer came from the cache and the tokens that saved). Rows hold counts and
ids only: never a question, an answer or any text from a document.

Quotas (:class:`~engine.settings.QuotaSettings`, overridden per tenant or key by
:meth:`UsageLedger.set_quota`) are checked before a model call and before a question:
a tenant or key that has spent its tokens for the UTC day or month, or asked its
questions for the day, gets :class:`~graph.QuotaExceededError` with the time the quota
resets. A call that starts under a limit may end over it; the next one is refused.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, Self

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict

from engine import clock
from engine.control_db import ControlDb, Schema, SqliteFile, Tx
from engine.settings import QuotaLimits, QuotaSettings
from extractors.chat import Usage
from graph import InputError, QuotaExceededError

__all__ = [
    "GROUPS",
    "Caller",
    "Group",
    "Lookups",
    "QuotaState",
    "UsageCollector",
    "UsageLedger",
    "UsageRow",
]

Group = Literal["tenant", "key", "model", "purpose", "day"]
#: What a usage report can be grouped by.
GROUPS: tuple[Group, ...] = ("tenant", "key", "model", "purpose", "day")
_COLUMNS: dict[Group, str] = {
    "tenant": "tenant",
    "key": "key_id",
    "model": "model",
    "purpose": "purpose",
    "day": "day",
}
_NONE = "-"
_LIMITS = ("tokens_per_day", "tokens_per_month", "asks_per_day")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage ("
    " id INTEGER PRIMARY KEY, ts TEXT NOT NULL, day TEXT NOT NULL, tenant TEXT NOT NULL,"
    " key_id TEXT NOT NULL, kind TEXT NOT NULL, purpose TEXT NOT NULL, model TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " calls INTEGER NOT NULL, asks INTEGER NOT NULL, cache_hits INTEGER NOT NULL,"
    " saved_tokens INTEGER NOT NULL, ms REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS usage_tenant_day ON usage (tenant, day)",
    "CREATE INDEX IF NOT EXISTS usage_key_day ON usage (key_id, day)",
    "CREATE INDEX IF NOT EXISTS usage_day ON usage (day)",
    "CREATE TABLE IF NOT EXISTS quotas ("
    " scope TEXT NOT NULL, name TEXT NOT NULL, tokens_per_day INTEGER,"
    " tokens_per_month INTEGER, asks_per_day INTEGER, PRIMARY KEY (scope, name))",
)
#: Tokens today, tokens this month and questions today of one key or tenant.
_SPENT_SUMS = (
    "SELECT COALESCE(SUM(CASE WHEN day=? THEN prompt_tokens+completion_tokens END), 0), "
    "COALESCE(SUM(prompt_tokens+completion_tokens), 0), "
    "COALESCE(SUM(CASE WHEN day=? THEN asks END), 0) FROM usage "
)
_SPENT = {
    "key": _SPENT_SUMS + "WHERE key_id=? AND day>=?",
    "tenant": _SPENT_SUMS + "WHERE tenant=? AND day>=?",
}
_INSERT = (
    "INSERT INTO usage (ts, day, tenant, key_id, kind, purpose, model, prompt_tokens, "
    "completion_tokens, calls, asks, cache_hits, saved_tokens, ms) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a model call or question is counted against: a tenant (``None`` for an
    operator reading every tenant) and the API key (``None`` outside the API)."""

    tenant: str | None
    key_id: str | None = None


class UsageRow(BaseModel):
    """One line of a usage report: the sums of one group (a field not grouped by is
    ``None``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant: str | None = None
    key: str | None = None
    model: str | None = None
    purpose: str | None = None
    day: str | None = None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int
    asks: int
    cache_hits: int
    saved_tokens: int
    model_ms: float


class QuotaState(BaseModel):
    """A tenant's or key's limits and what it has spent of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Literal["tenant", "key"]
    name: str
    limits: QuotaLimits
    tokens_today: int
    tokens_this_month: int
    asks_today: int
    day_resets_at: str
    month_resets_at: str


class UsageLedger:
    """The ledger file. Open it with :meth:`open`; every method runs its SQL in a worker
    thread. ``tokens`` holds this process's totals by tenant for metrics."""

    def __init__(self, db: ControlDb, *, quotas: QuotaSettings | None = None) -> None:
        self._file = db
        self._defaults = quotas or QuotaSettings()
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.asks: defaultdict[tuple[str, str], int] = defaultdict(int)

    @classmethod
    async def open(cls, where: Path | ControlDb, *, quotas: QuotaSettings | None = None) -> Self:
        """Open (creating if needed) the ledger: a SQLite file, or the control plane's
        database (:func:`engine.control_db.open_db`)."""
        if isinstance(where, Path):
            where = SqliteFile(where, what="the usage ledger", opener="UsageLedger.open")
        ledger = cls(where, quotas=quotas)
        await where.open(Schema(_SCHEMA, sqlite=_setup))
        return ledger

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()

    # ------------------------------------------------------------------ recording

    async def record_call(
        self, caller: Caller, *, purpose: str, model: str, usage: Usage, ms: float
    ) -> None:
        """Count one model call's tokens (as the server reported them) and latency."""
        tenant = caller.tenant or _NONE
        self.tokens[(tenant, "prompt")] += usage.prompt_tokens
        self.tokens[(tenant, "completion")] += usage.completion_tokens
        await self._insert(
            caller,
            kind="call",
            purpose=purpose,
            model=model,
            prompt=usage.prompt_tokens,
            completion=usage.completion_tokens,
            calls=max(usage.calls, 1),
            ms=ms,
        )

    async def record_ask(
        self, caller: Caller, *, model: str, ms: float, cache_hit: bool, saved_tokens: int = 0
    ) -> None:
        """Count one question answered (its tokens are in the calls it made)."""
        self.asks[(caller.tenant or _NONE, "hit" if cache_hit else "miss")] += 1
        await self._insert(
            caller,
            kind="ask",
            purpose="ask",
            model=model,
            asks=1,
            cache_hits=int(cache_hit),
            saved=saved_tokens,
            ms=ms,
        )

    async def _insert(
        self,
        caller: Caller,
        *,
        kind: str,
        purpose: str,
        model: str,
        prompt: int = 0,
        completion: int = 0,
        calls: int = 0,
        asks: int = 0,
        cache_hits: int = 0,
        saved: int = 0,
        ms: float = 0.0,
    ) -> None:
        now = clock.now()
        row = (
            now.isoformat(),
            now.date().isoformat(),
            caller.tenant or _NONE,
            caller.key_id or _NONE,
            kind,
            purpose,
            model or _NONE,
            prompt,
            completion,
            calls,
            asks,
            cache_hits,
            saved,
            round(ms, 2),
        )
        await self._file.run(_INSERT, row)

    async def remove_before(self, cutoff: str) -> int:
        """Remove the rows recorded before ``cutoff`` (an ISO time); quotas stay."""

        def remove(db: Tx) -> int:
            return int(db.execute("DELETE FROM usage WHERE ts < ?", (cutoff,)).rowcount)

        removed = await self._file.call(remove)
        if self._file.dialect == "sqlite":
            await self._file.run("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    # ------------------------------------------------------------------ quotas

    async def check(self, caller: Caller, *, tokens: bool = True, asks: bool = False) -> None:
        """Raise :class:`QuotaExceededError` when ``caller``'s key or tenant has spent a
        token quota (``tokens``) or its questions for the day (``asks``)."""
        for state in await self.states(caller):
            spent = {
                "tokens_per_day": state.tokens_today if tokens else None,
                "tokens_per_month": state.tokens_this_month if tokens else None,
                "asks_per_day": state.asks_today if asks else None,
            }
            for limit in _LIMITS:
                cap, used = getattr(state.limits, limit), spent[limit]
                if cap is not None and used is not None and used >= cap:
                    raise _exceeded(state, limit, cap, used)

    async def states(self, caller: Caller) -> list[QuotaState]:
        """The limits of ``caller``'s key and tenant (key first) and what each has spent."""
        now = datetime.now(UTC)
        today = now.date()
        month_start = today.replace(day=1)
        day_reset = _stamp(today + timedelta(days=1))
        month_reset = _stamp(_next_month(today))
        scopes: list[tuple[Literal["tenant", "key"], str]] = []
        if caller.key_id:
            scopes.append(("key", caller.key_id))
        if caller.tenant:
            scopes.append(("tenant", caller.tenant))
        overrides = await self.quotas()

        def spent(db: Tx) -> list[tuple[int, int, int]]:
            out = []
            for scope, name in scopes:
                row = db.execute(
                    _SPENT[scope],
                    (today.isoformat(), today.isoformat(), name, month_start.isoformat()),
                ).fetchone()
                out.append((int(row[0]), int(row[1]), int(row[2])))
            return out

        sums = await self._file.call(spent)
        states = []
        for (scope, name), (day_tokens, month_tokens, day_asks) in zip(scopes, sums, strict=True):
            states.append(
                QuotaState(
                    scope=scope,
                    name=name,
                    limits=self._limits(scope, name, overrides),
                    tokens_today=day_tokens,
                    tokens_this_month=month_tokens,
                    asks_today=day_asks,
                    day_resets_at=day_reset,
                    month_resets_at=month_reset,
                )
            )
        return states

    def _limits(
        self, scope: str, name: str, overrides: dict[tuple[str, str], QuotaLimits]
    ) -> QuotaLimits:
        base = self._defaults.key if scope == "key" else self._defaults.tenant
        if scope == "tenant" and name in self._defaults.tenants:
            base = _merged(base, self._defaults.tenants[name])
        found = overrides.get((scope, name))
        return _merged(base, found) if found is not None else base

    async def set_quota(
        self, scope: Literal["tenant", "key"], name: str, limits: QuotaLimits
    ) -> None:
        """Set the limits of one tenant or key (``None`` fields: the settings' default)."""
        if not name.strip():
            raise InputError(f"name the {scope} whose quota to set")
        await self._file.run(
            "INSERT INTO quotas VALUES (?,?,?,?,?) ON CONFLICT (scope, name) DO UPDATE SET "
            "tokens_per_day=excluded.tokens_per_day, tokens_per_month=excluded.tokens_per_month,"
            " asks_per_day=excluded.asks_per_day",
            (scope, name, limits.tokens_per_day, limits.tokens_per_month, limits.asks_per_day),
        )

    async def quotas(self) -> dict[tuple[str, str], QuotaLimits]:
        """Every limit set with :meth:`set_quota`, by ``(scope, name)``."""
        rows = await self._file.run(
            "SELECT scope, name, tokens_per_day, tokens_per_month, asks_per_day FROM quotas"
        )
        return {
            (str(r[0]), str(r[1])): QuotaLimits(
                tokens_per_day=r[2], tokens_per_month=r[3], asks_per_day=r[4]
            )
            for r in rows
        }

    # ------------------------------------------------------------------ reports

    async def report(
        self,
        *,
        by: Sequence[Group] = GROUPS,
        since: date | None = None,
        until: date | None = None,
        tenant: str | None = None,
    ) -> list[UsageRow]:
        """Sums per group, from ``since`` to ``until`` (UTC days, both included),
        for one tenant or (``tenant=None``) all."""
        groups = list(dict.fromkeys(by))
        unknown = [g for g in groups if g not in _COLUMNS]
        if unknown:
            raise InputError(f"cannot group usage by {', '.join(unknown)}; use {', '.join(GROUPS)}")
        where, params = ["1=1"], []
        if since is not None:
            where.append("day>=?")
            params.append(since.isoformat())
        if until is not None:
            where.append("day<=?")
            params.append(until.isoformat())
        if tenant is not None:
            where.append("tenant=?")
            params.append(tenant)
        columns = [_COLUMNS[g] for g in groups]
        select = ", ".join([*columns, ""]) if columns else ""
        grouped = f" GROUP BY {', '.join(columns)} ORDER BY {', '.join(columns)}" if columns else ""
        sql = (
            f"SELECT {select}SUM(prompt_tokens), SUM(completion_tokens), SUM(calls), "  # noqa: S608
            "SUM(asks), SUM(cache_hits), SUM(saved_tokens), "
            "SUM(CASE WHEN kind='call' THEN ms ELSE 0 END), COUNT(*) "
            f"FROM usage WHERE {' AND '.join(where)}{grouped}"
        )
        rows = await self._file.run(sql, tuple(params))
        out = []
        for row in rows:
            if not row[len(groups) + 7]:
                continue  # no rows at all: SQLite's one empty aggregate
            named = dict(zip(groups, (str(v) for v in row[: len(groups)]), strict=True))
            sums = [int(v or 0) for v in row[len(groups) : len(groups) + 6]]
            out.append(
                UsageRow(
                    **named,
                    prompt_tokens=sums[0],
                    completion_tokens=sums[1],
                    total_tokens=sums[0] + sums[1],
                    calls=sums[2],
                    asks=sums[3],
                    cache_hits=sums[4],
                    saved_tokens=sums[5],
                    model_ms=round(float(row[len(groups) + 6] or 0.0), 2),
                )
            )
        return out


class Lookups(Protocol):
    """A cache's lookup counts (:class:`engine.cache.CacheStats`)."""

    hits: int
    misses: int


class UsageCollector:
    """Prometheus counters read at scrape time: model tokens by tenant and kind (prompt,
    completion), questions by tenant and answer-cache result, and each cache's lookups."""

    def __init__(self, ledger: UsageLedger, caches: Mapping[str, Lookups] | None = None) -> None:
        self._ledger = ledger
        self._caches = dict(caches or {})

    def collect(self) -> Iterator[Metric]:
        """The counters (``prometheus_client`` collector protocol)."""
        tokens = CounterMetricFamily(
            "threadline_model_tokens",
            "Model tokens the model server reported, by tenant and kind",
            labels=["tenant", "kind"],
        )
        for (tenant, kind), value in sorted(self._ledger.tokens.items()):
            tokens.add_metric([tenant, kind], value)
        yield tokens
        asks = CounterMetricFamily(
            "threadline_asks",
            "Questions answered, by tenant and answer-cache result",
            labels=["tenant", "cache"],
        )
        for (tenant, result), value in sorted(self._ledger.asks.items()):
            asks.add_metric([tenant, result], value)
        yield asks
        lookups = CounterMetricFamily(
            "threadline_cache_lookups",
            "Cache lookups by cache (answer, query_embedding) and result (hit, miss)",
            labels=["cache", "result"],
        )
        ratio = GaugeMetricFamily(
            "threadline_cache_hit_ratio", "Hits over lookups since start", labels=["cache"]
        )
        for name, stats in sorted(self._caches.items()):
            lookups.add_metric([name, "hit"], stats.hits)
            lookups.add_metric([name, "miss"], stats.misses)
            total = stats.hits + stats.misses
            ratio.add_metric([name], stats.hits / total if total else 0.0)
        yield lookups
        yield ratio

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the label values appear as usage does."""
        return ()


def _exceeded(state: QuotaState, limit: str, cap: int, used: int) -> QuotaExceededError:
    resets = state.month_resets_at if limit == "tokens_per_month" else state.day_resets_at
    whose = f"this key ({state.name})" if state.scope == "key" else f"tenant {state.name}"
    unit = limit.replace("_per_", " per ")
    return QuotaExceededError(
        f"{whose} has used its quota of {cap:,} {unit} ({used:,} used); it resets at "
        f"{resets}. Ask an administrator to raise it (threadline quota set)",
        scope=state.scope,
        limit=limit,
        resets_at=resets,
        retry_after=(_parse(resets) - datetime.now(UTC)).total_seconds(),
    )


def _merged(base: QuotaLimits, override: QuotaLimits) -> QuotaLimits:
    return QuotaLimits(
        **{
            name: getattr(override, name)
            if getattr(override, name) is not None
            else getattr(base, name)
            for name in _LIMITS
        }
    )


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _stamp(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    for statement in _SCHEMA:
        db.execute(statement)
