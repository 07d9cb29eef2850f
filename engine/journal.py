"""Crash safety across the two stores, and one process per data dir.

The graph store is the source of truth. Before vectors are written or deleted for a
document, its id goes into the journal (its own SQLite file); after both stores agree it
is cleared. On open, every id still in the journal is repaired the same way: when the
graph does not hold the document, its vectors are deleted. A killed ingest therefore
leaves either whole documents or no trace of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

from graph import DocumentId, StoreError, StoreUnavailableError

__all__ = ["DataDirLock", "IngestJournal"]


class DataDirLock:
    """An exclusive lock on a data dir, held for the life of a Threadline instance."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "threadline.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or fail at once with a message naming the holder."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreUnavailableError(
                f"the data dir {self._path.parent} is in use by another Threadline process "
                f"(pid {holder}); wait for it to finish or use another --data-dir"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.truncate(0)
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class IngestJournal:
    """Ids of documents whose vectors may disagree with the graph store."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the journal file."""
        journal = cls(path)
        await asyncio.to_thread(journal._open_sync)
        return journal

    def _open_sync(self) -> None:
        try:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS pending (document_id TEXT PRIMARY KEY)")
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(
                f"cannot open the ingest journal {self._path}: {exc}"
            ) from exc
        self._db = db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the ingest journal is closed")
        return self._db

    async def add(self, ids: Sequence[DocumentId]) -> None:
        """Record that these documents' vectors are about to change."""
        await asyncio.to_thread(
            self._conn().executemany,
            "INSERT OR IGNORE INTO pending VALUES (?)",
            [(i,) for i in ids],
        )

    async def clear(self, ids: Sequence[DocumentId]) -> None:
        """Record that the stores agree again about these documents."""
        await asyncio.to_thread(
            self._conn().executemany, "DELETE FROM pending WHERE document_id=?", [(i,) for i in ids]
        )

    async def pending(self) -> list[DocumentId]:
        """Ids left behind by an interrupted write."""
        rows = await asyncio.to_thread(
            lambda: self._conn().execute("SELECT document_id FROM pending").fetchall()
        )
        return [DocumentId(r[0]) for r in rows]

    async def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)
