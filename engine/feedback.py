"""Answer feedback: ratings and comments callers leave on answers, kept for evaluation.

One SQLite file, ``feedback.sqlite`` in the data dir, one row per rating. The table and
its columns are fixed: data dirs written by earlier versions open as they are.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from engine.sqlite_file import SqliteFile

__all__ = ["FeedbackStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feedback (id TEXT PRIMARY KEY, ts TEXT, key_id TEXT, "
    "tenant TEXT, question TEXT, answer TEXT, rating INTEGER, comment TEXT, request_id TEXT)"
)


class FeedbackStore:
    """The feedback table. Open it with :meth:`open`; writes run in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._file = SqliteFile(path, what="the feedback store", opener="FeedbackStore.open")

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the feedback file."""
        store = cls(path)
        await store._file.open(_setup)
        return store

    async def add(
        self,
        *,
        key_id: str,
        tenant: str | None,
        question: str,
        answer: str,
        rating: int,
        comment: str = "",
        request_id: str | None = None,
    ) -> str:
        """Store one rating and return its id."""
        feedback_id = uuid.uuid4().hex
        row = (
            feedback_id,
            datetime.now(UTC).isoformat(),
            key_id,
            tenant,
            question,
            answer,
            rating,
            comment,
            request_id,
        )
        await self._file.run("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?)", row)
        return feedback_id

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()


def _setup(db: sqlite3.Connection) -> None:
    db.execute(_SCHEMA)
