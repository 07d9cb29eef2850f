"""Opening the control plane: keys, jobs, rate-limit buckets, usage and quotas, feedback
and the audit chain, where the settings say they live.

Without ``THREADLINE_CONTROL__URL`` each store is a file in the data dir (``keys.sqlite``,
``jobs.sqlite``, ``usage.sqlite``, ``feedback.sqlite``, ``audit.log``) and rate limits are
counted in the process: one ``threadline serve`` and the CLI beside it. With it, every
store is a set of tables in one PostgreSQL database, so any number of replicas behind a
load balancer behave as one: a key created or revoked on one is seen by all, a job
started on one can be polled on any, a key's rate limit is one bucket across replicas,
and the audit log is one chain with one head (docs/production.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from engine.audit import AuditLog
from engine.audit_stores import PG_SCHEMA, Chain, FileChain, PgChain
from engine.control_db import ControlDb, open_db, postgres_db
from engine.feedback import FeedbackStore
from engine.keys import KeyStore
from engine.settings import Settings
from engine.usage import UsageLedger

__all__ = [
    "audit_chain",
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
    if settings.control.url is None:
        return FileChain(settings.data_dir / "audit.log")
    db = postgres_db(settings, "the audit log")
    await db.open(PG_SCHEMA)
    return PgChain(db)
