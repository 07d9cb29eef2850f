"""The audit log under attack and under load: a real ``threadline serve`` and the CLI
append to one log at once and the chain still verifies; destructive actions write their
intent before their outcome; reads and searches are recorded as ids and counts, never as
text; any edit is found."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.audit import AuditLog, verify
from engine.keys import KeyStore
from graph import StoreCorruptedError
from tests.servers import serve_processes, wait_job

pytestmark = pytest.mark.security

QUESTION = "Who designed the Analytical Engine with Ada Lovelace?"
DOCUMENTS = [
    {
        "id": "engine-notes",
        "title": "Engine notes",
        "text": "Charles Babbage designed the Analytical Engine in London. "
        "Ada Lovelace wrote the first program for the Analytical Engine.",
    },
    {
        "id": "lovelace-letters",
        "title": "Letters",
        "text": "Ada Lovelace corresponded with Charles Babbage for many years. "
        "Mary Somerville introduced Ada Lovelace to Charles Babbage.",
    },
    {
        "id": "quarterly-memo",
        "title": "Memo",
        "text": "The Royal Society met in London. Mary Somerville spoke at the Royal Society.",
    },
]


@dataclass
class Server:
    base: str
    data_dir: Path
    secrets: dict[str, str]
    key_ids: dict[str, str]

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.secrets[key]}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def records(self) -> list[dict[str, Any]]:
        lines = (self.data_dir / "audit.log").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _create_keys(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Keys made before the server opens the store: (name -> secret, name -> key id)."""

    async def create() -> tuple[dict[str, str], dict[str, str]]:
        store = await KeyStore.open(path)
        try:
            made = {
                "admin": await store.create(tenant=None, admin=True, name="ops"),
                "acme": await store.create(tenant="acme"),
                "globex": await store.create(tenant="globex"),
            }
        finally:
            await store.close()
        return {k: m.secret for k, m in made.items()}, {k: m.key.id for k, m in made.items()}

    return asyncio.run(create())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("audit") / "data"
    secrets, key_ids = _create_keys(data_dir / "keys.sqlite")
    env = {
        **os.environ,
        "THREADLINE_API__RATE_PER_MINUTE": "100000",
        "THREADLINE_API__BURST": "10000",
    }
    with serve_processes([data_dir], env, data_dir.parent) as (base,):
        running = Server(base=base, data_dir=data_dir, secrets=secrets, key_ids=key_ids)
        with running.client("acme") as client:
            job = client.post("/v1/documents", json={"documents": DOCUMENTS})
            assert job.status_code == 202, job.text
            assert wait_job(client, job.json()["id"])["status"] == "succeeded"
        yield running


def test_cli_and_server_append_at_once_and_the_chain_verifies(server: Server) -> None:
    def reads(number: int) -> int:
        with server.client("acme" if number % 2 else "globex") as client:
            asked = client.post("/v1/ask", json={"question": QUESTION, "k": 3})
            found = client.post("/v1/search", json={"query": "Analytical Engine", "k": 3})
            listed = client.get("/v1/documents")
            return max(asked.status_code, found.status_code, listed.status_code)

    def create_key(number: int) -> subprocess.CompletedProcess[str]:
        return cli("keys", "create", "--tenant", f"t{number}", data_dir=server.data_dir)

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = [pool.submit(create_key, n) for n in range(4)]
        served = [pool.submit(reads, n) for n in range(12)]
        with server.client("acme") as client:  # an ingest while the CLI appends
            more = {"id": "extra", "title": "Extra", "text": "Ada Lovelace lived in London."}
            job = client.post("/v1/documents", json={"documents": [more]})
            assert wait_job(client, job.json()["id"])["status"] == "succeeded"
        assert [f.result() for f in served] == [200] * 12
        for future in made:
            proc = future.result()
            assert proc.returncode == 0, proc.stderr
    # The server appends again after every CLI append: its head must be the log's.
    with server.client("acme") as client:
        assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200

    records = server.records()
    actions = [r["action"] for r in records]
    last_cli = max(i for i, r in enumerate(records) if r["key_id"] == "cli")
    assert actions.count("key.create") == 4
    assert any(r["key_id"] != "cli" for r in records[last_cli + 1 :])
    checked = cli("audit", data_dir=server.data_dir)
    assert checked.returncode == 0, checked.stderr
    assert f"{len(records)} records, chain intact" in checked.stdout


def test_intent_is_written_before_the_outcome_of_a_delete(server: Server) -> None:
    with server.client("acme") as client:
        listed = client.get("/v1/documents").json()["documents"]
        doc = next(d for d in listed if d["source"] == "quarterly-memo")
        assert client.delete(f"/v1/documents/{doc['id']}").status_code == 200
    lines = (server.data_dir / "audit.log").read_text(encoding="utf-8").splitlines()
    deletes = [(n, json.loads(line)) for n, line in enumerate(lines)]
    deletes = [
        (n, r) for n, r in deletes if r["action"] == "delete" and doc["id"] in r["documents"]
    ]
    assert [r["phase"] for _, r in deletes] == ["intent", "outcome"]
    (at_intent, intent), (at_outcome, outcome) = deletes
    assert at_intent < at_outcome
    assert "status" not in intent
    assert outcome["status"] == "ok"
    assert outcome["removed"]["documents"] == 1
    assert outcome["intent"] == hashlib.sha256(lines[at_intent].encode()).hexdigest()
    assert intent["request_id"] == outcome["request_id"]


def test_a_failed_destructive_action_records_its_error_code(server: Server) -> None:
    with server.client("admin") as admin:
        made = admin.post("/v1/keys", json={"tenant": "acme"}).json()
        assert admin.delete(f"/v1/keys/{made['key']['id']}").status_code == 200
        again = admin.delete(f"/v1/keys/{made['key']['id']}")
    assert again.status_code >= 400
    revokes = [
        r
        for r in server.records()
        if r["action"] == "key.revoke" and r.get("revoked") == made["key"]["id"]
    ]
    assert [(r["phase"], r.get("status")) for r in revokes] == [
        ("intent", None),
        ("outcome", "ok"),
        ("intent", None),
        ("outcome", "failed"),
    ]
    assert revokes[-1]["error"] == again.json()["error"]


def test_reads_and_searches_are_audited_as_ids_and_counts(server: Server) -> None:
    query = "Who corresponded with Charles Babbage for many years?"
    tag = uuid.uuid4().hex

    def rid(name: str) -> dict[str, str]:
        return {"X-Request-ID": f"{tag}-{name}"}

    with server.client("acme") as client:
        docs = client.get("/v1/documents", headers=rid("list")).json()["documents"]
        client.get(f"/v1/documents/{docs[0]['id']}", headers=rid("doc")).raise_for_status()
        client.post("/v1/ask", json={"question": query}, headers=rid("ask")).raise_for_status()
        hits = client.post("/v1/search", json={"query": query}, headers=rid("search")).json()
        people = client.get("/v1/entities", params={"q": "babbage"}, headers=rid("ents")).json()
        babbage = people["entities"][0]["id"]
        client.get(f"/v1/entities/{babbage}", headers=rid("entity")).raise_for_status()
        hood = f"/v1/entities/{babbage}/neighborhood"
        client.get(hood, headers=rid("hood")).raise_for_status()
        paths = {"source": "Ada Lovelace", "target": "Charles Babbage"}
        client.get("/v1/paths", params=paths, headers=rid("paths")).raise_for_status()
        job = client.post(
            "/v1/documents", json={"documents": [DOCUMENTS[0]]}, headers=rid("ingest")
        ).json()
        client.get(f"/v1/jobs/{job['id']}", headers=rid("job")).raise_for_status()
        wait_job(client, job["id"])

    text = (server.data_dir / "audit.log").read_text(encoding="utf-8")
    mine = {
        r["request_id"].removeprefix(f"{tag}-"): r
        for r in server.records()
        if str(r.get("request_id", "")).startswith(tag) and r.get("phase") != "intent"
    }
    expected = {
        "list": "documents.list",
        "doc": "document.read",
        "ask": "ask",
        "search": "search",
        "ents": "entities.search",
        "entity": "entity.read",
        "hood": "entity.neighborhood",
        "paths": "paths",
        "job": "job.read",
        "ingest": "ingest",
    }
    assert {name: mine[name]["action"] for name in expected if name in mine} == expected
    for record in mine.values():
        assert record["tenant"] == "acme"
        assert record["key_id"] == server.key_ids["acme"]
    assert set(mine["list"]["documents"]) == {d["id"] for d in docs}
    assert mine["doc"]["documents"] == [docs[0]["id"]]
    assert mine["search"]["hits"] == len(hits["hits"])
    assert set(mine["search"]["documents"]) == {h["document_id"] for h in hits["hits"]}
    assert mine["ents"]["entities"] == [e["id"] for e in people["entities"]]
    assert mine["entity"]["entities"] == [babbage]
    assert mine["job"]["job_id"] == job["id"]
    # Ids and counts only: no question, query, name or document text in the log.
    sha = hashlib.sha256(query.encode()).hexdigest()
    assert mine["ask"]["question_sha256"] == sha == mine["search"]["query_sha256"]
    for secret in (query, QUESTION, "corresponded", "Ada Lovelace", "babbage", "Babbage"):
        assert secret not in text


def test_an_edited_or_truncated_log_fails_verification(server: Server, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("audit.log", "audit.head"):
        shutil.copy(server.data_dir / name, copy / name)
    original = (copy / "audit.log").read_text(encoding="utf-8")
    assert cli("audit", data_dir=copy).returncode == 0
    lines = original.splitlines()
    edited = json.loads(lines[3])
    edited["key_id"] = "someone-else"
    lines[3] = json.dumps(edited, sort_keys=True, ensure_ascii=False)
    (copy / "audit.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    broken = cli("audit", data_dir=copy)
    assert broken.returncode == 1
    assert "chain is broken" in broken.stderr + broken.stdout
    (copy / "audit.log").write_text("".join(original.splitlines(True)[:-1]), encoding="utf-8")
    cut = cli("audit", data_dir=copy)
    assert cut.returncode == 1
    assert "audit.head" in cut.stderr + cut.stdout


async def test_an_interrupted_append_is_cut_off_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = await AuditLog.open(path)
    await log.append("first", key_id="k")
    await log.close()
    with path.open("ab") as handle:
        handle.write(b'{"action": "torn", "pr')  # a writer died mid-line
    log = await AuditLog.open(path)
    await log.append("second", key_id="k")
    await log.close()
    assert verify(path) == 2
    assert b"torn" not in path.read_bytes()


async def test_a_torn_line_after_a_changed_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    log = await AuditLog.open(path)
    await log.append("first", key_id="k")
    await log.append("second", key_id="k")
    await log.close()
    lines = path.read_bytes().splitlines(True)
    path.write_bytes(lines[0] + b'{"action": "torn"')  # the last record replaced
    log = await AuditLog.open(path)
    with pytest.raises(StoreCorruptedError, match="incomplete"):
        await log.append("third", key_id="k")
    await log.close()
