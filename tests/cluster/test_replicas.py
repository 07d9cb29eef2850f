"""Two ``threadline serve`` processes on one PostgreSQL control plane behave as one API:
keys made and revoked anywhere hold everywhere, a job started on one is polled on the
other, a key's rate limit is one bucket, and the audit log is one verifiable chain.

Each replica has its own data dir (its own embedded graph and vectors); in production
they share Neo4j and Qdrant as well. The keys and the audit check go through the CLI
with the same settings, as an operator would run them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.audit import AuditRecord, read_records
from engine.control import audit_chain
from engine.settings import ControlSettings, Settings
from tests.servers import key_client, serve_processes, wait_job

pytestmark = [pytest.mark.cluster, pytest.mark.subprocess]

#: Requests a key may make at once; refilled at one a minute (so nothing refills).
BURST = 40


@dataclass
class Replicas:
    bases: list[str]
    env: dict[str, str]
    root: Path
    control: ControlSettings

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args, "--data-dir", str(self.root / "cli")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=self.env,
        )

    def new_key(self, *args: str) -> str:
        made = self.cli("keys", "create", *args)
        assert made.returncode == 0, made.stderr
        return next(w for w in made.stdout.split() if w.startswith("tl_"))

    def client(self, replica: int, secret: str) -> httpx.Client:
        return key_client(self.bases[replica], secret)


@pytest.fixture(scope="module")
def replicas(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    control = ControlSettings(url=postgres_url, schema_name="replicas")
    env = {
        **os.environ,
        "THREADLINE_CONTROL__URL": postgres_url,
        "THREADLINE_CONTROL__SCHEMA_NAME": control.schema_name,
        "THREADLINE_API__RATE_PER_MINUTE": "1",
        "THREADLINE_API__BURST": str(BURST),
    }
    dirs = [root / f"replica{n}" for n in range(2)]
    with serve_processes(dirs, env, root) as bases:
        yield Replicas(bases=bases, env=env, root=root, control=control)


def test_a_key_made_or_revoked_anywhere_holds_on_every_replica(replicas: Replicas) -> None:
    secret = replicas.new_key("--tenant", "acme")
    for n in range(2):
        with replicas.client(n, secret) as client:
            assert client.get("/v1/documents").status_code == 200
    key_id = secret.split("_")[1]
    revoked = replicas.cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    for n in range(2):
        with replicas.client(n, secret) as client:
            refused = client.get("/v1/documents")
            assert refused.status_code == 401
            assert "revoked" in refused.json()["message"]


def test_a_job_started_on_one_replica_is_polled_on_the_other(replicas: Replicas) -> None:
    acme = replicas.new_key("--tenant", "acme")
    globex = replicas.new_key("--tenant", "globex")
    document = {
        "id": "memo-1",
        "title": "memo-1.txt",
        "text": "Globex acquired Initech in 2019. Hank Scorpio is the chief executive of Globex.",
    }
    with replicas.client(0, acme) as first:
        started = first.post("/v1/documents", json={"documents": [document]})
        assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    with replicas.client(1, acme) as second:
        finished = wait_job(second, job_id, interval=1.0)
    assert finished["status"] == "succeeded", finished
    assert finished["report"]["added"] == 1
    assert finished["total"] == 1
    # Another tenant's key learns nothing of the job, on either replica.
    for n in range(2):
        with replicas.client(n, globex) as other:
            hidden = other.get(f"/v1/jobs/{job_id}")
            assert hidden.status_code == 404
            assert "acme" not in hidden.text
            assert "memo" not in hidden.text


def test_a_keys_rate_limit_is_one_bucket_across_replicas(replicas: Replicas) -> None:
    secret = replicas.new_key("--tenant", "acme")
    codes = []
    for n in range(BURST + 2):
        with replicas.client(n % 2, secret) as client:
            codes.append(client.get("/v1/documents").status_code)
    # Per replica the key would get BURST each (2 x BURST); shared, it gets BURST in all.
    assert codes[:BURST] == [200] * BURST
    assert codes[BURST:] == [429, 429]
    with replicas.client(0, secret) as client:
        limited = client.get("/v1/documents")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


def test_both_replicas_write_one_audit_chain_that_verifies(replicas: Replicas) -> None:
    secret = replicas.new_key("--tenant", "acme")
    request_ids = []
    for n in range(4):
        with replicas.client(n % 2, secret) as client:
            found = client.get("/v1/documents", headers={"X-Request-ID": f"replica{n % 2}-{n}"})
            assert found.status_code == 200
            request_ids.append(found.headers["X-Request-ID"])
    checked = replicas.cli("audit")
    assert checked.returncode == 0, checked.stderr
    assert "chain intact" in checked.stdout
    assert "PostgreSQL" in checked.stdout

    async def records() -> list[AuditRecord]:
        async with audit_chain(Settings(control=replicas.control)) as chain:
            return read_records(chain)

    logged = asyncio.run(records())
    assert f"{len(logged)} records, chain intact" in checked.stdout
    # Both replicas' reads are in the one chain, in the order they were made.
    mine = [r.fields["request_id"] for r in logged if r.fields.get("request_id") in request_ids]
    assert mine == request_ids
