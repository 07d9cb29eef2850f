"""Retention: audit records, feedback, usage records and cached answers older than the
``privacy.*_days`` settings are removed.

``threadline maintain`` runs :func:`apply_retention` once over the data dir's files;
``threadline serve`` runs it every hour (:func:`retention_loop`), and also expires its
in-memory caches. A setting left unset keeps those records for ever. The audit log keeps
verifying: its expired leading records are removed behind a chained checkpoint
(:func:`engine.audit.prune`). The time comes from :mod:`engine.clock`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from engine import clock
from engine.audit import prune
from engine.control import audit_chain, is_shared, open_feedback, open_usage
from engine.feedback import FeedbackStore
from engine.settings import PrivacySettings, Settings
from engine.threadline import Threadline
from engine.usage import UsageLedger
from graph import ThreadlineError

__all__ = ["RetentionReport", "apply_retention", "retention_loop"]

logger = logging.getLogger(__name__)

#: How often ``serve`` applies retention.
INTERVAL_S = 3600.0


class RetentionReport(BaseModel):
    """What one retention run removed (``None``: that store has no retention set)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: str
    audit: int | None = None
    feedback: int | None = None
    usage: int | None = None
    cache: int | None = None


def _cutoff(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


async def apply_retention(
    settings: Settings,
    *,
    tl: Threadline | None = None,
    feedback: FeedbackStore | None = None,
) -> RetentionReport:
    """Remove what the privacy settings no longer keep, as of :func:`engine.clock.now`.

    Opens the data dir's feedback and usage files unless the running service passes its
    own (``tl`` for the usage ledger and the in-memory caches, ``feedback``).
    """
    policy: PrivacySettings = settings.privacy
    now = clock.now()
    found: dict[str, int | None] = {}
    audit_cut = _cutoff(now, policy.audit_days)
    if audit_cut is not None:
        removed = 0
        async with audit_chain(settings) as chain:
            if await asyncio.to_thread(chain.exists):
                removed = await asyncio.to_thread(
                    prune, chain, audit_cut, key_id="retention", days=policy.audit_days
                )
        found["audit"] = removed
    feedback_cut = _cutoff(now, policy.feedback_days)
    if feedback_cut is not None:
        found["feedback"] = await _feedback(settings, feedback, feedback_cut)
    usage_cut = _cutoff(now, policy.usage_days)
    if usage_cut is not None:
        ledger = tl.usage if tl is not None else None
        found["usage"] = await _usage(settings, ledger, usage_cut)
    cache_cut = _cutoff(now, policy.cache_days)
    if cache_cut is not None:
        found["cache"] = _caches(tl, cache_cut)
    report = RetentionReport(at=_stamp(now), **found)
    logger.info("retention applied: %s", report.model_dump(exclude_none=True))
    return report


async def _feedback(settings: Settings, store: FeedbackStore | None, cutoff: datetime) -> int:
    if store is not None:
        return await store.remove_before(_stamp(cutoff))
    if not await _kept(settings, "feedback.sqlite"):
        return 0
    opened = await open_feedback(settings)
    try:
        return await opened.remove_before(_stamp(cutoff))
    finally:
        await opened.close()


async def _usage(settings: Settings, ledger: UsageLedger | None, cutoff: datetime) -> int:
    if ledger is not None:
        return await ledger.remove_before(_stamp(cutoff))
    if not await _kept(settings, "usage.sqlite"):
        return 0
    opened = await open_usage(settings)
    try:
        return await opened.remove_before(_stamp(cutoff))
    finally:
        await opened.close()


async def _kept(settings: Settings, name: str) -> bool:
    """Whether the store may hold records (a file never written holds none)."""
    return is_shared(settings) or await asyncio.to_thread((settings.data_dir / name).exists)


def _caches(tl: Threadline | None, cutoff: datetime) -> int:
    """The answer and query-embedding caches live in the serving process only."""
    if tl is None:
        return 0
    removed = tl.query_cache.expire(cutoff)
    if tl.answer_cache is not None:
        removed += tl.answer_cache.expire(cutoff)
    return removed


async def retention_loop(
    settings: Settings,
    *,
    tl: Threadline,
    feedback: FeedbackStore,
    interval_s: float = INTERVAL_S,
) -> None:
    """Apply retention now and then every ``interval_s`` until cancelled; a failed run is
    logged and retried at the next interval."""
    while True:
        try:
            await apply_retention(settings, tl=tl, feedback=feedback)
        except ThreadlineError:
            logger.exception("retention failed; retrying in %s s", interval_s)
        await asyncio.sleep(interval_s)
