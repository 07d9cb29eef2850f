"""Opening the control plane: keys, jobs, rate-limit buckets, usage and quotas, feedback
and the audit chain, where the settings say they live.

Without ``THREADLINE_CONTROL__URL`` each store is a file in the data dir (``keys.sqlite``,
``jobs.sqlite``, ``usage.sqlite``, ``feedback.sqlite``, ``audit.log``) and rate limits are
counted in the process: one ``threadline serve`` and the CLI beside it. With it, every
store is a set of tables in one PostgreSQL database, so any number of replicas behind a
load balancer behave as one: a key created or revoked on one is seen by all, a job
started on one can be polled on any, a key's rate limit is one bucket across replicas,
and the audit log is one chain with one head (docs/production.md).
:func:`import_data_dir` moves a data dir's stores into an empty shared database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from engine.audit import AuditLog
from engine.audit_records import checked, line_digest
from engine.audit_stores import PG_SCHEMA, Chain, FileChain, PgChain
from engine.control_db import ControlDb, Tx, open_db, postgres_db
from engine.feedback import FeedbackStore
from engine.keys import KeyStore
from engine.settings import Settings
from engine.usage import UsageLedger
from graph import InputError

__all__ = [
    "audit_chain",
    "import_data_dir",
    "is_shared",
    "open_audit",
    "open_feedback",
    "open_keys",
    "open_usage",
    "store_db",
]


def is_shared(settings: Settings) -> bool:
    """Whether the control plane is the PostgreSQL database replicas share."""
    return settings.control.url is not None


def store_db(settings: Settings, name: str, what: str) -> ControlDb:
    """The (unopened) database of one store: ``name.sqlite`` or the shared PostgreSQL."""
    return open_db(settings, name, what=what, opener=f"the {name} store's open()")


async def open_keys(settings: Settings) -> KeyStore:
    """The API keys."""
    return await KeyStore.open(store_db(settings, "keys", "the key store"))


async def open_feedback(settings: Settings) -> FeedbackStore:
    """Answer feedback."""
    return await FeedbackStore.open(store_db(settings, "feedback", "the feedback store"))


async def open_usage(settings: Settings) -> UsageLedger:
    """The usage ledger and quotas."""
    return await UsageLedger.open(
        store_db(settings, "usage", "the usage ledger"), quotas=settings.quota
    )


async def open_audit(settings: Settings) -> AuditLog:
    """The audit log, open for appending."""
    return await AuditLog.open(await _open_chain(settings))


@contextlib.asynccontextmanager
async def audit_chain(settings: Settings) -> AsyncIterator[Chain]:
    """The audit chain for reading and rewriting (``verify``, ``prune``, ``redact``),
    closed when the block ends."""
    chain = await _open_chain(settings)
    try:
        yield chain
    finally:
        await asyncio.to_thread(chain.close)


async def _open_chain(settings: Settings) -> Chain:
    if not is_shared(settings):
        return FileChain(settings.data_dir / "audit.log")
    db = postgres_db(settings, "the audit log")
    await db.open(PG_SCHEMA)
    return PgChain(db)


#: The tables of each data-dir file, and columns the database numbers itself.
_FILES: dict[str, tuple[str, ...]] = {
    "keys.sqlite": ("keys",),
    "usage.sqlite": ("usage", "quotas"),
    "feedback.sqlite": ("feedback", "feedback_spans"),
}
_NUMBERED = {"usage": "id"}


async def import_data_dir(settings: Settings, source: Path) -> dict[str, int]:
    """Copy a data dir's control plane (keys, usage and quotas, feedback, the audit log)
    into the shared PostgreSQL one; return the rows copied per table.

    Refuses (:class:`InputError`) unless ``THREADLINE_CONTROL__URL`` is set and every
    table it would write is empty, so nothing stored is overwritten or doubled; the audit
    log must verify and is copied line for line (the chain and its hashes stay as they
    were), followed by a ``control.import`` record.
    """
    if not is_shared(settings):
        raise InputError("set THREADLINE_CONTROL__URL to the PostgreSQL database to import into")
    # Every table exists (and is empty) before anything is copied.
    await (await open_keys(settings)).close()
    await (await open_usage(settings)).close()
    await (await open_feedback(settings)).close()
    rows = await asyncio.to_thread(_file_rows, source)
    lines = await asyncio.to_thread(_audit_lines, source / "audit.log")
    db = postgres_db(settings, "the control plane import")
    await db.open(PG_SCHEMA)
    try:
        copied = await db.call(lambda tx: _copy(tx, rows, lines))
    finally:
        await db.close()
    log = await open_audit(settings)
    try:
        await log.append("control.import", key_id="cli", tenant=None, **copied)
    finally:
        await log.close()
    return copied


def _copy(
    tx: Tx, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], lines: list[bytes]
) -> dict[str, int]:
    # The chain's head stays locked to the end: a replica appending meanwhile either wrote
    # first (its record is found below and the import refused) or builds on the import.
    tx.execute("SELECT digest FROM audit_head WHERE id=1 FOR UPDATE")
    for table in [*rows, "audit_log"]:
        # Table names come from _FILES, never from the caller.
        if tx.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
            raise InputError(
                f"the shared control plane already holds {table} rows; import into an "
                "empty schema (THREADLINE_CONTROL__SCHEMA_NAME)"
            )
    copied: dict[str, int] = {}
    for table, (columns, values) in rows.items():
        marks = ",".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})"  # noqa: S608
        for value in values:
            tx.execute(sql, value)
        copied[table] = len(values)
    for raw in lines:
        tx.execute("INSERT INTO audit_log (line) VALUES (?)", (raw.decode(),))
    if lines:
        tx.execute("UPDATE audit_head SET digest=? WHERE id=1", (line_digest(lines[-1]),))
    copied["audit_log"] = len(lines)
    return copied


def _audit_lines(path: Path) -> list[bytes]:
    chain = FileChain(path)
    if not chain.exists():
        return []
    # Read once, and those very lines verified: a log that does not verify is not carried.
    lines, head = chain.read()
    checked(chain.name, lines, head, chain.head_name)
    return [line for line in lines if line]


def _file_rows(source: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    if not source.is_dir():
        raise InputError(f"{source} is not a data dir; name the folder that holds keys.sqlite")
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for name, tables in _FILES.items():
        path = source / name
        if not path.exists():
            continue
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        try:
            for table in tables:
                info = db.execute(f"PRAGMA table_info({table})").fetchall()
                columns = [str(c[1]) for c in info if str(c[1]) != _NUMBERED.get(table)]
                if not columns:
                    continue
                select = f"SELECT {','.join(columns)} FROM {table}"  # noqa: S608 - fixed names
                out[table] = (columns, db.execute(select).fetchall())
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        finally:
            db.close()
    return out
