"""The control plane's stores on a real PostgreSQL server, and on SQLite the same way.

Every store (keys, feedback, usage and quotas, jobs) is driven through one scenario on
both engines; the audit chain, rate-limit buckets and job records are then shared by two
"replicas" (two independently opened pools, as two ``threadline serve`` processes hold),
attacked (edited, dropped and reordered rows) and given bad URLs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from engine.api.jobs import STALE_AFTER, Job, JobStore
from engine.api.limits import SharedBuckets
from engine.audit import prune, read_records, redact, verify
from engine.control import (
    audit_chain,
    import_data_dir,
    open_audit,
    open_feedback,
    open_keys,
    open_usage,
    store_db,
)
from engine.control_db import postgres_db
from engine.ingest import IngestReport
from engine.settings import ControlSettings, QuotaLimits, Settings
from engine.usage import Caller
from extractors.chat import Usage
from graph import (
    InputError,
    PermissionDeniedError,
    QuotaExceededError,
    StoreCorruptedError,
    StoreUnavailableError,
)

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["sqlite", "postgres"])
def either(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A replica's settings on each control-plane engine."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    shared: Settings = request.getfixturevalue("shared_settings")
    return shared


async def test_every_store_behaves_the_same_on_both_engines(either: Settings) -> None:
    keys = await open_keys(either)
    try:
        made = await keys.create(tenant="acme", groups=("legal",), name="analyst")
        again = await keys.authenticate(made.secret)
        assert again.id == made.key.id
        assert again.groups == ("legal",)
        assert not again.admin
        assert again.tenant == "acme"
        with pytest.raises(PermissionDeniedError, match="unknown API key"):
            await keys.authenticate(made.secret[:-2] + "xx")
        await keys.revoke(made.key.id)
        with pytest.raises(PermissionDeniedError, match="revoked"):
            await keys.authenticate(made.secret)
        with pytest.raises(InputError, match="already revoked"):
            await keys.revoke(made.key.id)
        assert [k.id for k in await keys.all()] == [made.key.id]
    finally:
        await keys.close()

    feedback = await open_feedback(either)
    try:
        kept = await feedback.add(
            key_id="k1",
            tenant="acme",
            question="Who?",
            answer="Ada",
            rating=1,
            comment="no",
            spans=[{"document_id": "d1", "start": 0, "end": 3}],
        )
        await feedback.add(key_id="k1", tenant="acme", question="Q", answer="A", rating=5)
        low = await feedback.low_rated(2)
        assert [r["id"] for r in low] == [kept]
        assert low[0]["spans"] == [{"document_id": "d1", "start": 0, "end": 3}]
        assert await feedback.rewrite({kept: {"comment": "[masked]"}}) == 1
        assert (await feedback.low_rated(2))[0]["comment"] == "[masked]"
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        assert await feedback.remove_before(future) == 2
        assert await feedback.texts() == []
    finally:
        await feedback.close()

    ledger = await open_usage(either)
    try:
        caller = Caller(tenant="acme", key_id="k1")
        await ledger.set_quota("key", "k1", QuotaLimits(tokens_per_day=100))
        await ledger.record_call(
            caller,
            purpose="synthesis",
            model="m",
            usage=Usage(prompt_tokens=70, completion_tokens=40, calls=1),
            ms=12.5,
        )
        await ledger.record_ask(caller, model="m", ms=20.0, cache_hit=False)
        with pytest.raises(QuotaExceededError):
            await ledger.check(caller)
        rows = await ledger.report(by=("tenant", "purpose"))
        totals = {(r.tenant, r.purpose): (r.total_tokens, r.calls, r.asks) for r in rows}
        assert totals == {("acme", "ask"): (0, 0, 1), ("acme", "synthesis"): (110, 1, 0)}
        assert isinstance(rows[0].model_ms, float)
    finally:
        await ledger.close()


def _job(job_id: str, tenant: str = "acme") -> Job:
    return Job(
        id=job_id,
        tenant=tenant,
        groups=("legal",),
        owner="k1",
        created_at=datetime.now(UTC),
    )


async def test_a_job_written_by_one_replica_is_read_by_another(shared_settings: Settings) -> None:
    one = await JobStore.open(store_db(shared_settings, "jobs", "the job store"))
    two = await JobStore.open(store_db(shared_settings, "jobs", "the job store"))
    try:
        job = _job("j1")
        job.status, job.done, job.total = "running", 3, 10
        await one.save(job)
        seen = await two.load("j1")
        assert seen is not None
        assert (seen.status, seen.done, seen.total, seen.groups) == ("running", 3, 10, ("legal",))
        report = IngestReport(
            documents_read=10,
            added=10,
            replaced=0,
            unchanged=0,
            chunks=12,
            mentions=40,
            relations=5,
            vectors=12,
            seconds=1.5,
            document_ids=("d1",),
        )
        job.status, job.done, job.report = "succeeded", 10, report
        job.finished_at = datetime.now(UTC)
        await one.save(job)
        done = await two.load("j1")
        assert done is not None
        assert done.status == "succeeded"
        assert done.report == report
        assert await two.load("nope") is None
    finally:
        await one.close()
        await two.close()


async def test_a_job_whose_replica_stopped_reads_as_interrupted(shared_settings: Settings) -> None:
    store = await JobStore.open(store_db(shared_settings, "jobs", "the job store"))
    try:
        job = _job("j2")
        job.status = "running"
        await store.save(job)
        fresh = await store.load("j2")
        assert fresh is not None
        assert fresh.status == "running"
        # The replica died: nothing has written the job since, past the stale limit.
        stale = (datetime.now(UTC) - STALE_AFTER - timedelta(seconds=5)).isoformat()
        _sql(shared_settings, "UPDATE jobs SET beat_at=%s WHERE id='j2'", (stale,))
        cut = await store.load("j2")
        assert cut is not None
        assert cut.status == "failed"
        assert cut.error is not None
        assert cut.error.error == "interrupted"
        assert "ingest the same documents again" in cut.error.message
    finally:
        await store.close()


async def test_one_rate_bucket_per_key_across_replicas(control: ControlSettings) -> None:
    settings = Settings(control=control)
    replicas = [
        await SharedBuckets.open(postgres_db(settings, "the rate limits"), rate=1 / 60, burst=3)
        for _ in range(2)
    ]
    try:
        waits = [await replicas[n % 2].take("k1") for n in range(4)]
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert 50 < waits[3] <= 60  # one token a minute: the fourth waits about that long
        assert await replicas[1].take("k2") == 0.0  # another key has its own bucket
        # Concurrent takes never hand out more than the burst.
        many = await asyncio.gather(*(replicas[n % 2].take("k3") for n in range(10)))
        assert sum(1 for w in many if w == 0.0) == 3
    finally:
        for buckets in replicas:
            await buckets.close()


def _sql(settings: Settings, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    assert settings.control.url is not None
    with psycopg.connect(settings.control.url.get_secret_value(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.control.schema_name}"')
        cursor = conn.execute(sql.encode(), params)  # type: ignore[call-overload]
        return list(cursor.fetchall()) if cursor.description else []


async def test_replicas_append_to_one_chain_that_verifies(shared_settings: Settings) -> None:
    logs = [await open_audit(shared_settings) for _ in range(2)]
    try:

        def append(number: int) -> None:
            log = logs[number % 2]
            asyncio.run(log.append("ask", key_id=f"k{number % 2}", tenant="acme", n=number))

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(append, range(60)))
        async with audit_chain(shared_settings) as chain:
            assert verify(chain) == 60
            records = read_records(chain)
        assert sorted(r.fields["n"] for r in records) == list(range(60))
        assert {r.fields["key_id"] for r in records} == {"k0", "k1"}
        # The head is the last record's hash; each record names the one before it.
        head = _sql(shared_settings, "SELECT digest FROM audit_head")[0][0]
        assert head == records[-1].digest
    finally:
        for log in logs:
            await log.close()


async def test_prune_and_redact_keep_the_shared_chain_verifiable(
    shared_settings: Settings,
) -> None:
    log = await open_audit(shared_settings)
    try:
        for n in range(5):
            await log.append("ask", key_id="k1", tenant="acme", question_hash=f"h{n}")
        async with audit_chain(shared_settings) as chain:
            done = redact(
                chain,
                lambda r: ["question_hash"] if r.fields.get("question_hash") == "h3" else [],
                key_id="admin",
                reason="subject.erase",
            )
            assert len(done) == 1
            assert verify(chain) == 6
            assert all(r.fields.get("question_hash") != "h3" for r in read_records(chain))
            removed = prune(chain, datetime.now(UTC) + timedelta(days=1), key_id="retention")
            assert removed == 6
            records = read_records(chain)
        assert [r.fields["action"] for r in records] == ["audit.checkpoint"]
        await log.append("ask", key_id="k1", tenant="acme")  # appends go on after a rewrite
        async with audit_chain(shared_settings) as chain:
            assert verify(chain) == 2
    finally:
        await log.close()


async def test_an_edited_dropped_or_reordered_row_is_found(shared_settings: Settings) -> None:
    log = await open_audit(shared_settings)
    try:
        for n in range(4):
            await log.append("key.create", key_id="cli", tenant=f"t{n}")
    finally:
        await log.close()
    rows = _sql(shared_settings, "SELECT seq, line FROM audit_log ORDER BY seq")
    seqs = [int(str(r[0])) for r in rows]

    async def broken() -> str:
        async with audit_chain(shared_settings) as chain:
            with pytest.raises(StoreCorruptedError) as caught:
                verify(chain)
        return str(caught.value)

    edited = json.loads(str(rows[1][1]))
    edited["tenant"] = "evil"
    _sql(
        shared_settings,
        "UPDATE audit_log SET line=%s WHERE seq=%s",
        (json.dumps(edited, sort_keys=True), seqs[1]),
    )
    assert "chain is broken" in await broken()
    _sql(shared_settings, "UPDATE audit_log SET line=%s WHERE seq=%s", (rows[1][1], seqs[1]))
    _sql(shared_settings, "DELETE FROM audit_log WHERE seq=%s", (seqs[-1],))
    assert "audit_head" in await broken()  # the last record is gone: the head says so
    _sql(shared_settings, "INSERT INTO audit_log VALUES (%s, %s)", (seqs[-1], rows[-1][1]))
    _sql(shared_settings, "UPDATE audit_log SET seq=-seq WHERE seq=%s", (seqs[2],))  # first
    assert "chain is broken" in await broken()


async def test_a_bad_or_unreachable_url_says_what_to_check(tmp_path: Path) -> None:
    unreachable = Settings(
        data_dir=tmp_path / "data",
        control=ControlSettings(
            url=f"postgresql://threadline:hunter2@/threadline?host={tmp_path}/nowhere",
            connect_timeout=2,
        ),
    )
    for opener in (open_keys, open_audit):
        with pytest.raises(StoreUnavailableError) as caught:
            await opener(unreachable)
        message = str(caught.value)
        assert "THREADLINE_CONTROL__URL" in message
        assert "hunter2" not in message
    with pytest.raises(ValueError, match="schema_name"):
        ControlSettings(url="postgresql:///x", schema_name='x"; DROP TABLE keys; --')


async def test_a_data_dir_moves_into_the_shared_control_plane(
    tmp_path: Path, shared_settings: Settings
) -> None:
    local = Settings(data_dir=tmp_path / "single")
    keys = await open_keys(local)
    kept = await keys.create(tenant="acme", name="kept")
    gone = await keys.create(tenant="acme", name="gone")
    await keys.revoke(gone.key.id)
    await keys.close()
    ledger = await open_usage(local)
    caller = Caller(tenant="acme", key_id=kept.key.id)
    await ledger.record_call(
        caller, purpose="synthesis", model="m", usage=Usage(prompt_tokens=5), ms=1.0
    )
    await ledger.set_quota("tenant", "acme", QuotaLimits(asks_per_day=7))
    await ledger.close()
    feedback = await open_feedback(local)
    await feedback.add(key_id=kept.key.id, tenant="acme", question="Q", answer="A", rating=1)
    await feedback.close()
    log = await open_audit(local)
    for n in range(3):
        await log.append("ask", key_id=kept.key.id, tenant="acme", n=n)
    await log.close()

    copied = await import_data_dir(shared_settings, local.data_dir)
    assert copied == {
        "keys": 2,
        "usage": 1,
        "quotas": 1,
        "feedback": 1,
        "feedback_spans": 0,
        "audit_log": 3,
    }
    keys = await open_keys(shared_settings)
    try:
        assert (await keys.authenticate(kept.secret)).id == kept.key.id
        with pytest.raises(PermissionDeniedError, match="revoked"):
            await keys.authenticate(gone.secret)
    finally:
        await keys.close()
    ledger = await open_usage(shared_settings)
    try:
        assert [r.total_tokens for r in await ledger.report(by=("tenant",))] == [5]
        assert (await ledger.quotas())[("tenant", "acme")].asks_per_day == 7
        await ledger.record_ask(caller, model="m", ms=1.0, cache_hit=False)  # ids go on
    finally:
        await ledger.close()
    async with audit_chain(shared_settings) as chain:
        records = read_records(chain)
    # The same chain, hashes and all, and then the import itself.
    assert [r.fields.get("n") for r in records[:3]] == [0, 1, 2]
    assert records[-1].fields["action"] == "control.import"
    async with audit_chain(local) as chain:
        assert [r.digest for r in read_records(chain)] == [r.digest for r in records[:3]]

    again = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "engine", "control", "import", str(local.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "THREADLINE_CONTROL__URL": shared_settings.control.url.get_secret_value(),
            "THREADLINE_CONTROL__SCHEMA_NAME": shared_settings.control.schema_name,
        },
    )
    assert again.returncode == 1
    assert "already holds" in again.stderr + again.stdout
    with pytest.raises(InputError, match="THREADLINE_CONTROL__URL"):
        await import_data_dir(local, local.data_dir)
