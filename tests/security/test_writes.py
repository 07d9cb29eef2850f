"""Authorized writes, over real HTTP: a key writes only where it may read.

One server for the module (uvicorn on 127.0.0.1, the real pipeline) with two tenants and
keys for groups g1 and g2. Each test is an attack that a key with the wrong scope tries:
planting a document in another group, replacing or probing another group's document by
its source id, deleting it, reading another group's job, writing tenant-wide without the
permission. The key store's migration of files without the permissions column is checked
on a real SQLite file, and the CLI's ``--permission`` and ``delete`` access as a subprocess.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Threadline
from engine.keys import KeyStore
from engine.readers import SourceDocument
from engine.settings import Settings
from graph import Access, NotFoundError, PermissionDeniedError
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.security

G2_TEXT = "The Zorblax board approved the merger with Quintar Shipping in Oslo on Tuesday."
G2_SOURCE = "board-memo"


@dataclass
class Server:
    base: str
    keys: dict[str, str]  # name -> secret

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)


def _ingest(
    client: httpx.Client, source: str, text: str, groups: list[str], **extra: Any
) -> httpx.Response:
    body = {"documents": [{"id": source, "text": text}], "groups": groups, **extra}
    return client.post("/v1/documents", json=body)


def _ingested(client: httpx.Client, source: str, text: str, groups: list[str]) -> dict[str, Any]:
    response = _ingest(client, source, text, groups)
    assert response.status_code == 202, response.text
    done = wait_job(client, response.json()["id"])
    assert done["status"] == "succeeded", done
    return done


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("writes") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            "admin": {"tenant": None, "admin": True},
            "g1": {"tenant": "acme", "groups": ("g1",)},
            "g2": {"tenant": "acme", "groups": ("g2",)},
            "acme": {"tenant": "acme"},
            "globex": {"tenant": "globex"},
        },
    )
    with running_api(config) as base:
        running = Server(base=base, keys=keys)
        with running.client("g2") as g2:
            _ingested(g2, G2_SOURCE, G2_TEXT, ["g2"])
        yield running


def _g2_document(server: Server) -> dict[str, Any]:
    with server.client("g2") as g2:
        listed = g2.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        [doc] = [d for d in listed if d["source"] == G2_SOURCE and d["groups"] == ["g2"]]
        return dict(g2.get(f"/v1/documents/{doc['id']}").json())


def test_a_key_cannot_write_into_a_group_it_does_not_hold(server: Server) -> None:
    with server.client("g1") as g1:
        for groups in (["g2"], ["g1", "g2"]):
            refused = _ingest(g1, "planted", "Quintar Shipping was sold to Globex.", groups)
            assert refused.status_code == 403, refused.text
            message = refused.json()["message"]
            assert "g2" in message, message
            assert "g1" in message, message
        upload = g1.post(
            "/v1/documents/upload",
            files=[("files", ("planted.txt", b"Quintar Shipping was sold.", "text/plain"))],
            data={"groups": ["g2"]},
        )
        assert upload.status_code == 403, upload.text
    with server.client("globex") as globex:
        other = _ingest(globex, "planted", "Quintar.", [], tenant="acme")
        assert other.status_code == 403, other.text
    with server.client("g2") as g2:
        listed = g2.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        assert all(d["source"] != "planted" for d in listed)


def test_admin_keys_still_ingest_for_a_named_tenant_and_groups(server: Server) -> None:
    with server.client("admin") as admin:
        response = _ingest(admin, "admin-note", "Ada Lovelace met Babbage.", ["g2"], tenant="acme")
        assert response.status_code == 202, response.text
        job = response.json()
        assert wait_job(admin, job["id"])["status"] == "succeeded"
    with server.client("g2") as g2:
        assert g2.get(f"/v1/jobs/{job['id']}").status_code == 200
    with server.client("g1") as g1:
        assert g1.get(f"/v1/jobs/{job['id']}").status_code == 404


def test_resending_another_groups_source_id_creates_a_separate_document(server: Server) -> None:
    before = _g2_document(server)
    with server.client("g1") as g1:
        # The guessed text, exactly: neither "unchanged" nor a version may confirm it.
        done = _ingested(g1, G2_SOURCE, G2_TEXT, ["g1"])
        report = done["report"]
        assert (report["added"], report["replaced"], report["unchanged"]) == (1, 0, 0), report
        assert before["id"] not in report["document_ids"]
        mine = g1.get(f"/v1/documents/{report['document_ids'][0]}").json()
        assert mine["version"] == 1
        assert mine["groups"] == ["g1"]
        assert g1.get(f"/v1/documents/{before['id']}").status_code == 404
        # Changed text from g1 again: a new version of g1's document only.
        changed = _ingested(g1, G2_SOURCE, "Quintar Shipping denies any merger.", ["g1"])
        assert changed["report"]["replaced"] == 1
        newer = g1.get(f"/v1/documents/{changed['report']['document_ids'][0]}").json()
        assert newer["version"] == 2
    after = _g2_document(server)
    assert (after["id"], after["text"], after["version"]) == (before["id"], G2_TEXT, 1)
    with server.client("g2") as g2:
        # Within its own scope a source id still deduplicates.
        same = _ingested(g2, G2_SOURCE, G2_TEXT, ["g2"])["report"]
        assert (same["added"], same["unchanged"]) == (0, 1)


def test_a_key_cannot_delete_or_see_another_groups_document_or_job(server: Server) -> None:
    doc = _g2_document(server)
    with server.client("g2") as g2:
        response = _ingest(g2, "g2-second", "Quintar Shipping opened an office in Bergen.", ["g2"])
        job_id = response.json()["id"]
        wait_job(g2, job_id)
    for name in ("g1", "acme", "globex"):
        with server.client(name) as other:
            deleted = other.delete(f"/v1/documents/{doc['id']}")
            assert deleted.status_code == 404, (name, deleted.text)
            job = other.get(f"/v1/jobs/{job_id}")
            assert job.status_code == 404, (name, job.text)
    assert _g2_document(server)["text"] == G2_TEXT


def test_tenant_wide_writes_need_the_permission(server: Server) -> None:
    with server.client("g1") as g1:
        refused = _ingest(g1, "wide", "Quintar Shipping is based in Oslo.", [])
        assert refused.status_code == 403, refused.text
        assert "write:tenant" in refused.json()["message"]
    with server.client("admin") as admin:
        made = admin.post(
            "/v1/keys",
            json={"tenant": "acme", "groups": ["g1"], "permissions": ["write:tenant"]},
        )
        assert made.status_code == 201, made.text
        assert made.json()["key"]["permissions"] == ["write:tenant"]
        bad = admin.post("/v1/keys", json={"tenant": "acme", "permissions": ["write:all"]})
        assert bad.status_code == 422, bad.text
        [problem] = bad.json()["detail"]
        assert problem["loc"] == ["body", "permissions", 0]
        assert "write:tenant" in problem["msg"]
    server.keys["g1-wide"] = made.json()["secret"]
    with server.client("g1-wide") as wide:
        assert _ingested(wide, "wide", "Quintar Shipping is based in Oslo.", [])["status"] == (
            "succeeded"
        )
    with server.client("acme") as acme:
        # A key without groups reads the tenant's public documents and may write them.
        assert _ingested(acme, "wide-2", "Quintar Shipping has ten ships.", [])["status"] == (
            "succeeded"
        )
        sources = {d["source"] for d in acme.get("/v1/documents").json()["documents"]}
        assert {"wide", "wide-2"} <= sources


# ---------------------------------------------------------------------------- key store


_OLD_SCHEMA = """
CREATE TABLE keys (
    id TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL, name TEXT NOT NULL,
    tenant TEXT, groups TEXT NOT NULL, admin INTEGER NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
"""


async def test_key_files_without_permissions_open_and_work(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_OLD_SCHEMA)
    digest = hashlib.sha256(b"salt" + b"secret").hexdigest()
    db.execute(
        "INSERT INTO keys VALUES (?,?,?,?,?,?,?,?,NULL)",
        ("abc123", "salt", digest, "old", "acme", json.dumps(["g1"]), 0, "2025-01-01T00:00:00"),
    )
    db.commit()
    db.close()
    # Two opens at once (the server and the CLI) both migrate without tripping.
    first, second = await asyncio.gather(KeyStore.open(path), KeyStore.open(path))
    try:
        old = await first.authenticate("tl_abc123_secret")
        assert old.groups == ("g1",)
        assert old.permissions == ()
        old.check_write("acme", ["g1"])
        with pytest.raises(PermissionDeniedError, match="write:tenant"):
            old.check_write("acme", [])
        made = await second.create(tenant="acme", groups=("g1",), permissions={"write:tenant"})
        again = await first.authenticate(made.secret)
        assert again.permissions == ("write:tenant",)
        again.check_write("acme", [])
    finally:
        await first.close()
        await second.close()


# ---------------------------------------------------------------------------- CLI and Python


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "THREADLINE_DATA_DIR": "/nonexistent-should-be-overridden"},
        check=False,
    )


async def test_delete_needs_access_and_the_cli_keys_take_permissions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with await Threadline.open(Settings(data_dir=data)) as tl:
        source = SourceDocument(source=G2_SOURCE, title="memo", text=G2_TEXT, origin="test")
        report = await tl.ingest([source], tenant="acme", groups=["g2"])
        [doc_id] = report.document_ids
        with pytest.raises(NotFoundError):
            await tl.delete([doc_id], Access(tenant="acme", groups=frozenset({"g1"})))
        with pytest.raises(NotFoundError):
            await tl.delete([doc_id], Access(tenant="globex", groups=frozenset({"g2"})))
    hidden = _cli("delete", doc_id, "--tenant", "acme", "--group", "g1", data_dir=data)
    assert hidden.returncode == 1, hidden.stderr
    assert "no document" in hidden.stderr, hidden.stderr
    made = _cli(
        "keys",
        "create",
        "--tenant",
        "acme",
        "--group",
        "g1",
        "--permission",
        "write:tenant",
        "--json",
        data_dir=data,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["key"]["permissions"] == ["write:tenant"]
    wrong = _cli("keys", "create", "--tenant", "acme", "--permission", "nope", data_dir=data)
    assert wrong.returncode != 0
    assert "nope" in wrong.stderr, wrong.stderr
    removed = _cli("delete", doc_id, "--tenant", "acme", "--group", "g2", "--json", data_dir=data)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout)["documents"] == 1
