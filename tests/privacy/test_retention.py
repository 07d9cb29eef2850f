"""Retention: records older than the privacy settings are removed by ``threadline
maintain`` (and by ``serve``), exactly those; the audit log keeps verifying after leading
records are pruned or fields redacted, legacy logs included, and tampering is still found.

Time is moved through :mod:`engine.clock` (a seam Threadline owns), never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.audit import AuditLog, prune, read_records, redact, verify
from engine.cache import AnswerCache, QueryEmbeddingCache
from engine.cli import app
from engine.feedback import FeedbackStore
from engine.usage import Caller, UsageLedger
from extractors import Embedder
from graph import Access, StoreCorruptedError
from graph.provenance import Answer

pytestmark = pytest.mark.privacy

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=UTC)


class Clock:
    """The time :func:`engine.clock.now` returns while a test runs."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def days_ago(self, days: float) -> None:
        self.at = T0 - timedelta(days=days)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("engine.clock.now", fake)
    return fake


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


async def _log_at(path: Path, clock: Clock, ages: list[tuple[float, str]]) -> None:
    log = await AuditLog.open(path)
    try:
        for age, action in ages:
            clock.days_ago(age)
            await log.append(action, key_id="k", tenant="acme")
    finally:
        await log.close()
    clock.at = T0


def _legacy_log(path: Path, ages: list[tuple[float, str]]) -> None:
    """A log as versions before checkpoints wrote it: each line's ``prev`` is the SHA-256
    of the line before."""
    previous, lines = "0" * 64, []
    for age, action in ages:
        record = {"ts": (T0 - timedelta(days=age)).isoformat(), "action": action, "prev": previous}
        record["key_id"] = "cli"
        line = json.dumps(record, sort_keys=True, ensure_ascii=False)
        lines.append(line)
        previous = hashlib.sha256(line.encode()).hexdigest()
    _write(path, lines)
    path.with_name("audit.head").write_text(previous + "\n")


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# ---------------------------------------------------------------------------- maintain


async def _fill_stores(data: Path, clock: Clock) -> list[str]:
    """Audit records, feedback and usage rows of several ages; the feedback ids kept."""
    await _log_at(
        data / "audit.log",
        clock,
        [(40, "old-1"), (35, "old-2"), (31, "old-3"), (29, "kept-1"), (1, "kept-2")],
    )
    feedback = await FeedbackStore.open(data / "feedback.sqlite")
    kept_feedback = []
    for age, keep in ((20, False), (15, False), (13, True), (0, True)):
        clock.days_ago(age)
        made = await feedback.add(key_id="k", tenant="acme", question="q", answer="a", rating=1)
        if keep:
            kept_feedback.append(made)
    await feedback.close()
    ledger = await UsageLedger.open(data / "usage.sqlite")
    for age in (9, 8, 6, 2, 0):
        clock.days_ago(age)
        await ledger.record_ask(Caller(tenant="acme"), model="m", ms=1.0, cache_hit=False)
    await ledger.close()
    return kept_feedback


async def _remaining(data: Path) -> tuple[list[str], int]:
    """The feedback ids and the questions counted in usage that are left."""
    feedback = await FeedbackStore.open(data / "feedback.sqlite")
    ids = [r["id"] for r in await feedback.texts()]
    await feedback.close()
    ledger = await UsageLedger.open(data / "usage.sqlite")
    (row,) = await ledger.report(by=())
    await ledger.close()
    return ids, row.asks


def test_maintain_removes_exactly_the_expired_records(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    kept_feedback = asyncio.run(_fill_stores(data, clock))
    clock.at = T0
    monkeypatch.setenv("THREADLINE_PRIVACY__AUDIT_DAYS", "30")
    monkeypatch.setenv("THREADLINE_PRIVACY__FEEDBACK_DAYS", "14")
    monkeypatch.setenv("THREADLINE_PRIVACY__USAGE_DAYS", "7")

    result = _invoke("maintain", "--data-dir", str(data), "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["audit"], report["feedback"], report["usage"]) == (3, 2, 2)
    actions = [r.fields["action"] for r in read_records(data / "audit.log")]
    assert actions == ["kept-1", "kept-2", "audit.checkpoint"]
    checked = _invoke("audit", "--data-dir", str(data))
    assert checked.exit_code == 0, checked.output
    assert "3 records, chain intact" in checked.stdout
    kept_ids, asks = asyncio.run(_remaining(data))
    assert sorted(kept_ids) == sorted(kept_feedback)
    assert asks == 3
    # Nothing more has expired: a second run removes nothing and writes no checkpoint.
    again = json.loads(_invoke("maintain", "--data-dir", str(data), "--json").stdout)
    assert (again["audit"], again["feedback"], again["usage"]) == (0, 0, 0)
    assert len(_lines(data / "audit.log")) == 3


def test_maintain_without_retention_settings_keeps_everything(tmp_path: Path) -> None:
    _legacy_log(tmp_path / "audit.log", [(4000, "ancient")])
    result = _invoke("maintain", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "kept for ever" in result.stdout
    assert verify(tmp_path / "audit.log") == 1


async def test_caches_expire_entries_filed_before_the_cutoff(
    clock: Clock, embedder: Embedder
) -> None:
    answers = AnswerCache()
    acme = Access(tenant="acme")
    for age, question in ((3, "old"), (1, "new")):
        clock.days_ago(age)
        key = answers.key(
            question,
            acme,
            mode="threadline",
            k=5,
            unsupported=False,
            model="extractive",
            prompts=(),
        )
        answers.put(
            key, Answer(question=question, answer="", mode="threadline", claims=(), evidence=())
        )
    queries = QueryEmbeddingCache(embedder)
    for age, text in ((3, "old question"), (1, "new question")):
        clock.days_ago(age)
        await queries.embed([text])
    cutoff = T0 - timedelta(days=2)
    assert answers.expire(cutoff) == 1
    assert [a.question for a in answers.answers()] == ["new"]
    assert queries.expire(cutoff) == 1
    assert queries.texts() == ["new question"]
    assert isinstance(await queries.embed(["new question"]), np.ndarray)


# ---------------------------------------------------------------------------- the chain


async def test_an_old_log_keeps_verifying_and_can_be_pruned_and_redacted(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "audit.log"
    _legacy_log(path, [(50, "legacy-old"), (10, "legacy-kept"), (9, "legacy-named")])
    assert verify(path) == 3
    await _log_at(path, clock, [(5, "new-1"), (1, "new-2")])
    assert verify(path) == 5

    assert prune(path, T0 - timedelta(days=30)) == 1
    done = redact(
        path, lambda r: ["key_id"] if r.fields["action"] in {"legacy-named", "new-1"} else []
    )
    assert len(done) == 2
    assert verify(path) == 6  # 4 kept, a checkpoint, a redaction record
    records = read_records(path)
    assert [r.fields["action"] for r in records] == [
        "legacy-kept",
        "legacy-named",
        "new-1",
        "new-2",
        "audit.checkpoint",
        "audit.redact",
    ]
    assert "key_id" not in records[2].fields
    assert records[3].fields["key_id"] == "k"
    # The log goes on after a rewrite: an appender that had it open follows the new file.
    log = await AuditLog.open(path)
    prune(path, T0 - timedelta(days=9, hours=12))
    await log.append("after", key_id="k")
    await log.close()
    assert read_records(path)[-1].fields["action"] == "after"
    assert verify(path) == 7


@pytest.fixture
async def pruned(tmp_path: Path, clock: Clock) -> Path:
    """A log with a legacy start, pruned once and redacted once: 6 lines."""
    path = tmp_path / "audit.log"
    _legacy_log(path, [(60, "legacy-1"), (50, "legacy-2")])
    await _log_at(path, clock, [(45, "a"), (20, "b"), (10, "c"), (5, "d"), (2, "e")])
    assert prune(path, T0 - timedelta(days=30)) == 3
    redact(path, lambda r: ["tenant"] if r.fields["action"] == "c" else [])
    assert verify(path) == 6
    return path


def _edit(path: Path, index: int, change: dict[str, Any]) -> None:
    lines = _lines(path)
    record = json.loads(lines[index])
    record.update(change)
    lines[index] = json.dumps(record, sort_keys=True, ensure_ascii=False)
    _write(path, lines)


def _index(path: Path, action: str) -> int:
    return next(i for i, r in enumerate(read_records(path)) if r.fields["action"] == action)


def test_editing_a_kept_record_is_found(pruned: Path) -> None:
    _edit(pruned, _index(pruned, "d"), {"tenant": "globex"})
    with pytest.raises(StoreCorruptedError, match="chain is broken"):
        verify(pruned)


def test_editing_a_redacted_record_is_found(pruned: Path) -> None:
    _edit(pruned, _index(pruned, "c"), {"key_id": "someone-else"})
    with pytest.raises(StoreCorruptedError, match="chain is broken"):
        verify(pruned)


def test_dropping_a_middle_record_is_found(pruned: Path) -> None:
    lines = _lines(pruned)
    _write(pruned, lines[:2] + lines[3:])
    with pytest.raises(StoreCorruptedError, match="chain is broken"):
        verify(pruned)


def test_dropping_a_kept_leading_record_is_found(pruned: Path) -> None:
    _write(pruned, _lines(pruned)[1:])
    with pytest.raises(StoreCorruptedError, match="does not start where"):
        verify(pruned)


@pytest.mark.parametrize(
    "forged",
    [{"removed": 1}, {"through": "f" * 64}, {"first": None}, {"cutoff": "2000-01-01T00:00:00"}],
)
def test_a_forged_checkpoint_is_found(pruned: Path, forged: dict[str, Any]) -> None:
    index = next(i for i, line in enumerate(_lines(pruned)) if "audit.checkpoint" in line)
    _edit(pruned, index, forged)
    with pytest.raises(StoreCorruptedError):
        verify(pruned)


def test_a_checkpoint_made_up_for_dropped_records_is_found(pruned: Path) -> None:
    """The attacker drops the first kept record and writes a checkpoint for it at the
    start (it cannot be chained without changing the head and every later link)."""
    lines = _lines(pruned)
    first = json.loads(lines[0])
    fake = {
        "action": "audit.checkpoint",
        "ts": first["ts"],
        "through": first["prev"],
        "first": None,
        "prev": first["prev"],
        "removed": 4,
        "v": 2,
        "nonce": "0" * 32,
    }
    _write(pruned, [json.dumps(fake, sort_keys=True), *lines[1:]])
    with pytest.raises(StoreCorruptedError):
        verify(pruned)


def test_a_redaction_without_its_audit_record_is_found(pruned: Path) -> None:
    """Hiding a field behind its own commitment (computable from the nonce) keeps the
    chain hash, but no audit.redact names it."""
    from engine.audit_records import redacted as _redacted  # the attacker's tool

    lines = _lines(pruned)
    index = next(i for i, line in enumerate(lines) if '"action": "d"' in line)
    record = json.loads(lines[index])
    digest = read_records(pruned)[index].digest
    lines[index] = json.dumps(_redacted(record, digest, ["tenant"]), sort_keys=True)
    _write(pruned, lines)
    with pytest.raises(StoreCorruptedError, match="redacted without"):
        verify(pruned)


def test_a_tampered_log_is_never_pruned_or_redacted(pruned: Path) -> None:
    _edit(pruned, 1, {"tenant": "globex"})
    before = pruned.read_bytes()
    with pytest.raises(StoreCorruptedError):
        prune(pruned, T0)
    with pytest.raises(StoreCorruptedError):
        redact(pruned, lambda r: ["tenant"])
    assert pruned.read_bytes() == before
