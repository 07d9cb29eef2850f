"""The audit log: an append-only, hash-chained JSON-lines file in the data dir.

Every ingest, delete, ask and key operation appends one record (who, what, when, which
documents were involved or cited). The file is opened for appending only and each line
carries the SHA-256 of the previous line, and ``audit.head`` next to it holds the hash of
the last line, so any edit, deletion or reordering (the last line included) is found by
:func:`verify` (``threadline audit``). Nothing in the API can rewrite it; against someone
with write access to the data dir, ship the log (or just the head) to write-once storage.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from graph import StoreCorruptedError, StoreError, StoreUnavailableError

__all__ = ["AuditLog", "verify"]

_GENESIS = "0" * 64


class AuditLog:
    """Appends records. Open it with :meth:`open`; appends run in a worker thread and are
    serialised, so one log serves many requests at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._last = _GENESIS
        self._fd: int | None = None

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the log for appending, after its last record."""
        log = cls(path)
        await asyncio.to_thread(log._open_sync)
        return log

    def _open_sync(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._last = _last_hash(self._path)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot open the audit log {self._path}: {exc}") from exc

    @property
    def path(self) -> Path:
        return self._path

    async def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (fsync) and return it."""
        return await asyncio.to_thread(self._append_sync, action, fields)

    def _append_sync(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._fd is None:
                raise StoreError("the audit log is closed; open it with AuditLog.open")
            record = {"ts": datetime.now(UTC).isoformat(), "action": action, **fields}
            record["prev"] = self._last
            line = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
            os.write(self._fd, (line + "\n").encode())
            os.fsync(self._fd)
            self._last = hashlib.sha256(line.encode()).hexdigest()
            head = _head(self._path)
            head.with_suffix(".tmp").write_text(self._last + "\n")
            head.with_suffix(".tmp").replace(head)
            return record

    async def close(self) -> None:
        """Close the file (appends already written stay durable)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            await asyncio.to_thread(os.close, fd)


def _head(path: Path) -> Path:
    return path.with_name(path.stem + ".head")


def _last_hash(path: Path) -> str:
    if not path.exists():
        return _GENESIS
    last = _GENESIS
    with path.open("rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\n")
            if line:
                last = hashlib.sha256(line).hexdigest()
    return last


def verify(path: Path) -> int:
    """Check the hash chain; return the number of records or raise at the first break."""
    previous = _GENESIS
    count = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip(b"\n")
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise StoreCorruptedError(f"{path}:{number}: not a JSON record") from exc
            if record.get("prev") != previous:
                raise StoreCorruptedError(
                    f"{path}:{number}: the chain is broken (a record before it was changed, "
                    "removed or reordered)"
                )
            previous = hashlib.sha256(line).hexdigest()
            count += 1
    head = _head(path)
    if head.exists() and head.read_text().strip() != previous:
        raise StoreCorruptedError(
            f"{path}: the last record does not match {head.name} (it was changed or removed)"
        )
    return count
