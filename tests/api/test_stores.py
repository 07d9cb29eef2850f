"""The API's control-plane stores (keys, audit log, feedback): constructors touch nothing,
``open()`` does the I/O, closed stores refuse work, and existing data dirs still open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.audit import AuditLog, verify
from engine.feedback import FeedbackStore
from engine.keys import KeyStore
from graph import PermissionDeniedError, StoreError

pytestmark = pytest.mark.api


def test_constructors_do_no_io(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    KeyStore(data_dir / "keys.sqlite")
    AuditLog(data_dir / "audit.log")
    FeedbackStore(data_dir / "feedback.sqlite")
    assert not data_dir.exists()


async def test_keys_round_trip_and_closed_store_refuses(tmp_path: Path) -> None:
    store = await KeyStore.open(tmp_path / "data" / "keys.sqlite")
    made = await store.create(tenant="acme", groups=("legal",), name="bi")
    assert (await store.authenticate(made.secret)).groups == ("legal",)
    await store.revoke(made.key.id)
    with pytest.raises(PermissionDeniedError, match="revoked"):
        await store.authenticate(made.secret)
    assert [k.id for k in await store.all()] == [made.key.id]
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.all()


async def test_audit_log_continues_the_chain_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "data" / "audit.log"
    for action in ("first", "second"):
        log = await AuditLog.open(path)
        await log.append(action, key_id="k")
        await log.close()
    assert verify(path) == 2
    with pytest.raises(StoreError, match="closed"):
        await log.append("third")


async def test_feedback_opens_an_existing_table(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE feedback (id TEXT PRIMARY KEY, ts TEXT, key_id TEXT, "
        "tenant TEXT, question TEXT, answer TEXT, rating INTEGER, comment TEXT, "
        "request_id TEXT)"
    )
    db.execute(
        "INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?)",
        ("old", "2025-01-01T00:00:00+00:00", "k", "acme", "q", "a", 3, "", None),
    )
    db.commit()
    db.close()
    store = await FeedbackStore.open(path)
    new_id = await store.add(
        key_id="k2", tenant="acme", question="Who?", answer="Ada", rating=5, request_id="r1"
    )
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.add(key_id="k", tenant=None, question="q", answer="", rating=1)
    db = sqlite3.connect(path)
    rows = db.execute("SELECT id, key_id, rating, request_id FROM feedback ORDER BY ts").fetchall()
    db.close()
    assert rows[0] == ("old", "k", 3, None)
    assert rows[1] == (new_id, "k2", 5, "r1")
