"""One SQLite file of the control plane (keys, feedback): open, run, close.

The connection is shared by worker threads under one lock, so a store serves many
requests at once without blocking the event loop. Driver errors on open become
:class:`StoreUnavailableError`; use after close is a :class:`StoreError` that says how
to open the store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from graph import StoreError, StoreUnavailableError

__all__ = ["SqliteFile"]

T = TypeVar("T")


class SqliteFile:
    """A SQLite file opened with :meth:`open` and used from worker threads.

    Args:
        path: the file; its folder is created when missing.
        what: the store's name in messages ("the key store").
        opener: how to open the store, for the message after close ("KeyStore.open").
    """

    def __init__(self, path: Path, *, what: str, opener: str) -> None:
        self.path = path
        self._what = what
        self._opener = opener
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Connect (autocommit) and run ``setup`` (schema, migrations) on the connection."""
        await asyncio.to_thread(self._open_sync, setup)

    def _open_sync(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailableError(f"cannot open {self._what} {self.path}: {exc}") from exc
        try:
            setup(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreUnavailableError(f"cannot open {self._what} {self.path}: {exc}") from exc
        with self._lock:
            self._db = db

    async def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in a worker thread; its rows."""
        return await self.call(lambda db: db.execute(sql, params).fetchall())

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection in a worker thread, holding the lock."""
        return await asyncio.to_thread(self._call_sync, work)

    def _call_sync(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._db is None:
                raise StoreError(f"{self._what} is closed; open it with {self._opener}")
            return work(self._db)

    async def close(self) -> None:
        """Close the file (closing twice is harmless)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)
