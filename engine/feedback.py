"""Answer feedback: ratings and comments callers leave on answers, kept for evaluation.

One SQLite file, ``feedback.sqlite`` in the data dir, one row per rating. The table and
its columns are fixed: data dirs written by earlier versions open as they are.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from graph import StoreError, StoreUnavailableError

__all__ = ["FeedbackStore"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feedback (id TEXT PRIMARY KEY, ts TEXT, key_id TEXT, "
    "tenant TEXT, question TEXT, answer TEXT, rating INTEGER, comment TEXT, request_id TEXT)"
)


class FeedbackStore:
    """The feedback table. Open it with :meth:`open`; writes run in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the feedback file."""
        store = cls(path)
        await asyncio.to_thread(store._open_sync)
        return store

    def _open_sync(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailableError(
                f"cannot open the feedback store {self._path}: {exc}"
            ) from exc
        self._db = db

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
        await asyncio.to_thread(self._insert, row)
        return feedback_id

    def _insert(self, row: tuple[str | int | None, ...]) -> None:
        with self._lock:
            if self._db is None:
                raise StoreError("the feedback store is closed; open it with FeedbackStore.open")
            self._db.execute("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?,?)", row)

    async def close(self) -> None:
        """Close the file."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)
