"""The usage ledger on its own: reports group and sum what was recorded, limits come from
the settings, per tenant, and from quotas set at run time (most specific wins), and a
spent quota names its scope, its limit and the next UTC day or month."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from engine.settings import QuotaLimits, QuotaSettings
from engine.usage import Caller, UsageLedger
from extractors.chat import Usage
from graph import InputError, QuotaExceededError

pytestmark = pytest.mark.ops

A1 = Caller(tenant="acme", key_id="k1")
A2 = Caller(tenant="acme", key_id="k2")
B1 = Caller(tenant="beta", key_id="k3")


async def _ledger(tmp_path: Path, quotas: QuotaSettings | None = None) -> UsageLedger:
    return await UsageLedger.open(tmp_path / "usage.sqlite", quotas=quotas)


async def test_reports_group_and_sum_what_was_recorded(tmp_path: Path) -> None:
    ledger = await _ledger(tmp_path)
    await ledger.record_call(A1, purpose="synthesis", model="m", usage=Usage(100, 20, 1), ms=5)
    await ledger.record_call(A1, purpose="judge", model="m", usage=Usage(30, 1, 1), ms=2)
    await ledger.record_call(A2, purpose="planner", model="n", usage=Usage(50, 10, 1), ms=3)
    await ledger.record_call(B1, purpose="synthesis", model="m", usage=Usage(7, 3, 1), ms=1)
    await ledger.record_ask(A1, model="m", ms=9, cache_hit=False)
    await ledger.record_ask(A1, model="m", ms=1, cache_hit=True, saved_tokens=151)

    by_tenant = {r.tenant: r for r in await ledger.report(by=["tenant"])}
    assert by_tenant["acme"].total_tokens == 211
    assert by_tenant["acme"].calls == 3
    assert by_tenant["acme"].asks == 2
    assert by_tenant["acme"].cache_hits == 1
    assert by_tenant["acme"].saved_tokens == 151
    assert by_tenant["beta"].total_tokens == 10
    by_key_model = await ledger.report(by=["key", "model"], tenant="acme")
    assert {(r.key, r.model): r.total_tokens for r in by_key_model} == {
        ("k1", "m"): 151,
        ("k2", "n"): 60,
    }
    purposes = {r.purpose for r in await ledger.report(by=["purpose"])}
    assert purposes == {"synthesis", "judge", "planner", "ask"}
    today = datetime.now(UTC).date()
    assert await ledger.report(by=["day"], since=today + timedelta(days=1)) == []
    assert [r.day for r in await ledger.report(by=["day"], until=today)] == [today.isoformat()]
    with pytest.raises(InputError, match="cannot group usage by"):
        await ledger.report(by=["question"])  # type: ignore[list-item]
    assert ledger.tokens[("acme", "prompt")] == 180
    await ledger.close()

    # Counts and ids only: the file holds no text but the names it is keyed by.
    db = sqlite3.connect(tmp_path / "usage.sqlite")
    columns = [row[1] for row in db.execute("PRAGMA table_info(usage)")]
    db.close()
    assert not {"question", "answer", "text"} & set(columns)


async def test_limits_come_from_settings_then_tenants_then_quotas_set(tmp_path: Path) -> None:
    settings = QuotaSettings(
        tenant=QuotaLimits(tokens_per_day=1000),
        key=QuotaLimits(asks_per_day=2),
        tenants={"beta": QuotaLimits(tokens_per_day=5)},
    )
    ledger = await _ledger(tmp_path, settings)
    await ledger.record_call(B1, purpose="synthesis", model="m", usage=Usage(4, 1, 1), ms=1)
    with pytest.raises(QuotaExceededError, match="tenant beta has used its quota of 5") as beta:
        await ledger.check(B1)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert beta.value.resets_at == f"{tomorrow.isoformat()}T00:00:00Z"
    assert 0 < beta.value.retry_after <= 86_400
    await ledger.check(A1)  # acme has 1000 tokens a day

    for _ in range(2):
        await ledger.check(A1, tokens=False, asks=True)
        await ledger.record_ask(A1, model="m", ms=1, cache_hit=False)
    with pytest.raises(QuotaExceededError, match=r"this key \(k1\)") as asks:
        await ledger.check(A1, tokens=False, asks=True)
    assert asks.value.scope == "key"
    assert asks.value.limit == "asks_per_day"
    await ledger.check(A2, tokens=False, asks=True)  # the sibling key has its own count

    await ledger.set_quota("key", "k1", QuotaLimits(asks_per_day=10))
    await ledger.set_quota("tenant", "beta", QuotaLimits(tokens_per_month=100))
    await ledger.check(A1, tokens=False, asks=True)
    states = {s.scope: s for s in await ledger.states(B1)}
    assert states["tenant"].limits == QuotaLimits(tokens_per_day=5, tokens_per_month=100)
    first = datetime.now(UTC).date().replace(day=1)
    month = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    assert states["tenant"].month_resets_at == f"{month.isoformat()}T00:00:00Z"
    await ledger.close()
