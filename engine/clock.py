"""The clock records are stamped and expired by: one function, so tests can move time
(``monkeypatch.setattr("engine.clock.now", ...)``) instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["now"]


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)
