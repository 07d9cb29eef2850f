"""The audit log: an append-only, hash-chained JSON-lines file in the data dir.

Every ingest, delete, key operation and read (asks, searches, entity, neighbourhood and
path reads, document reads, job polls) appends a record: who (key id and tenant), what
(the action), when, and which documents or entities were involved, as ids and counts
only: never document text, names or question text, so the log is no side channel. A
destructive action writes its intent before it starts and its outcome (``status`` ``ok``
or ``failed`` with the error code) after, both chained.

Each line carries the SHA-256 of the previous line, and ``audit.head`` next to it holds
the hash of the last line, so any edit, deletion or reordering (the last line included)
is found by :func:`verify` (``threadline audit``). Several processes may append at once
(the server and ``threadline keys``): each append holds an exclusive ``flock`` on
``audit.lock``, reads the chain's head from the log itself under that lock, and fsyncs the
line and the head before releasing it. Nothing in the API can rewrite the log; against
someone with write access to the data dir, ship it (or just the head) to write-once
storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from graph import StoreCorruptedError, StoreError, StoreUnavailableError

__all__ = ["AuditLog", "Outcome", "verify"]

_GENESIS = "0" * 64
_TAIL_BLOCK = 8192


@dataclass
class Outcome:
    """Fields the outcome record of an audited action will carry; the action adds to
    ``fields`` as it learns them (what it removed, which documents it wrote), and sets
    ``error`` (a code) when it failed without raising."""

    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class AuditLog:
    """Appends records. Open it with :meth:`open`; appends run in a worker thread and are
    serialised within the process by a lock and across processes by ``flock``, so one
    log serves many requests and many processes at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._lock_fd: int | None = None

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the log for appending."""
        log = cls(path)
        await asyncio.to_thread(log._open_sync)
        return log

    def _open_sync(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(_lock_path(self._path), os.O_RDWR | os.O_CREAT, 0o640)
            self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            self._close_sync()
            raise StoreUnavailableError(f"cannot open the audit log {self._path}: {exc}") from exc

    @property
    def path(self) -> Path:
        return self._path

    async def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (line and head fsynced) and return it."""
        return await asyncio.to_thread(self._append_sync, action, fields)

    @contextlib.asynccontextmanager
    async def action(
        self,
        action: str,
        *,
        error_code: Callable[[BaseException], str] | None = None,
        **fields: Any,
    ) -> AsyncIterator[Outcome]:
        """Audit a destructive action: an ``intent`` record now, an ``outcome`` record
        (``status`` ``ok``, or ``failed`` with ``error``, the code ``error_code`` gives, by
        default the exception's class) when the block ends. The outcome names the intent
        by its hash. The block's exception, if any, propagates."""
        intent = await self.append(action, phase="intent", **fields)
        link = {"intent": self.digest(intent), **fields}
        outcome = Outcome()
        try:
            yield outcome
        except BaseException as exc:
            code = (error_code or _class_name)(exc)
            failed = self.append(
                action,
                **{**link, **outcome.fields, "phase": "outcome"},
                status="failed",
                error=code,
            )
            # Recorded even when the request is being cancelled.
            await asyncio.shield(failed)
            raise
        status = {"status": "failed", "error": outcome.error} if outcome.error else {"status": "ok"}
        await self.append(action, **{**link, **outcome.fields, "phase": "outcome", **status})

    @staticmethod
    def digest(record: dict[str, Any]) -> str:
        """The chain hash of a record :meth:`append` returned (an outcome names its intent
        by it)."""
        return hashlib.sha256(_line(record).encode()).hexdigest()

    def _append_sync(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._fd is None or self._lock_fd is None:
                raise StoreError("the audit log is closed; open it with AuditLog.open")
            try:
                with _flocked(self._lock_fd, fcntl.LOCK_EX):
                    previous = _chain_head(self._fd, self._path)
                    record = {"ts": datetime.now(UTC).isoformat(), "action": action, **fields}
                    record["prev"] = previous
                    line = _line(record)
                    _write_all(self._fd, (line + "\n").encode())
                    os.fsync(self._fd)
                    _write_head(self._path, hashlib.sha256(line.encode()).hexdigest())
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot append to the audit log {self._path}: {exc}"
                ) from exc
            return record

    async def close(self) -> None:
        """Close the files (appends already written stay durable)."""
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        with self._lock:
            fds = (self._fd, self._lock_fd)
            self._fd = self._lock_fd = None
        for fd in fds:
            if fd is not None:
                os.close(fd)


def _class_name(exc: BaseException) -> str:
    return type(exc).__name__


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


def _head(path: Path) -> Path:
    return path.with_name(path.stem + ".head")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.stem + ".lock")


@contextlib.contextmanager
def _flocked(fd: int, mode: int) -> Iterator[None]:
    fcntl.flock(fd, mode)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_head(path: Path, digest: str) -> None:
    """Replace ``audit.head`` atomically and durably: temp file, fsync, rename, fsync dir."""
    head = _head(path)
    temp = head.with_name(head.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        _write_all(fd, (digest + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(head)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _chain_head(fd: int, path: Path) -> str:
    """The hash of the log's last line, read from the file (another process may have
    appended since this one last did). A torn last line (a writer that died mid-write,
    before it updated the head) is cut off when the line before it matches the head."""
    size = os.fstat(fd).st_size
    if size == 0:
        return _GENESIS
    tail, start = _tail(fd, size)
    if tail.endswith(b"\n"):
        return hashlib.sha256(tail[:-1].rsplit(b"\n", 1)[-1]).hexdigest()
    # The last line has no newline: an append was interrupted before it finished.
    cut = tail.rfind(b"\n") + 1
    before = hashlib.sha256(tail[: cut - 1].rsplit(b"\n", 1)[-1]).hexdigest() if cut else _GENESIS
    head = _head(path)
    recorded = head.read_text().strip() if head.exists() else _GENESIS
    if recorded != before:
        raise StoreCorruptedError(
            f"{path}: the last line is incomplete and the line before it does not match "
            f"{head.name}; run `threadline audit` to find where the log was changed"
        )
    os.ftruncate(fd, start + cut)
    os.fsync(fd)
    return before


def _tail(fd: int, size: int) -> tuple[bytes, int]:
    """The end of the file, from where it starts, holding the last line and the whole
    line before it (or the file's start)."""
    start = size
    tail = b""
    while start > 0 and tail.count(b"\n", 0, max(len(tail) - 1, 0)) < 2:
        step = min(_TAIL_BLOCK, start)
        start -= step
        tail = os.pread(fd, step, start) + tail
    return tail, start


def verify(path: Path) -> int:
    """Check the hash chain; return the number of records or raise at the first break.

    Holds a shared lock on ``audit.lock`` (when it can be opened) so that an append in
    another process is not mistaken for a mismatched head."""
    try:
        lock_fd: int | None = os.open(_lock_path(path), os.O_RDONLY | os.O_CREAT, 0o640)
    except OSError:
        lock_fd = None  # a read-only data dir: nobody can be appending
    try:
        if lock_fd is None:
            return _verify(path)
        with _flocked(lock_fd, fcntl.LOCK_SH):
            return _verify(path)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _verify(path: Path) -> int:
    previous = _GENESIS
    count = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip(b"\n")
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise StoreCorruptedError(f"{path}:{number}: not a JSON record") from exc
            if not isinstance(record, dict) or record.get("prev") != previous:
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
