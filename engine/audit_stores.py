"""Where an audit chain's lines are kept: a JSON-lines file in the data dir
(:class:`FileChain`, the embedded default), or a table in the control plane's PostgreSQL
database (:class:`PgChain`, shared by every API replica).

A :class:`Chain` appends a record built on the chain's head, serialised against every
other writer (``flock`` on ``audit.lock`` for the file; a row lock on the head for
PostgreSQL, so replicas append to one chain with one head); reads a consistent snapshot
of the lines and the recorded head; and rewrites the lines as a whole (prune, redact).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from engine.audit_records import GENESIS, line_digest, record_digest, to_line
from engine.control_db import PostgresDb, Schema, Tx
from graph import StoreCorruptedError, StoreError, StoreUnavailableError

__all__ = ["PG_SCHEMA", "Chain", "Edit", "FileChain", "PgChain"]

_TAIL_BLOCK = 8192

#: Given a chain's lines and recorded head: the new lines, or ``None`` to leave them.
Edit = Callable[[list[bytes], str | None], list[bytes] | None]


class Chain(Protocol):
    """The storage of one audit chain."""

    @property
    def name(self) -> str:
        """How messages name the chain (a path, or ``postgresql host:port/db``)."""
        ...

    @property
    def head_name(self) -> str:
        """How messages name the recorded head."""
        ...

    def exists(self) -> bool:
        """Whether anything was ever written."""
        ...

    def append(self, build: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """Write the record ``build`` makes from the head's chain hash; return it."""
        ...

    def read(self) -> tuple[list[bytes], str | None]:
        """The lines and the recorded head (``None`` when none is recorded)."""
        ...

    def rewrite(self, edit: Edit) -> None:
        """Replace the lines with what ``edit`` returns, appends held off meanwhile."""
        ...

    def close(self) -> None:
        """Release what :meth:`append` holds open."""
        ...


class FileChain:
    """``audit.log`` with ``audit.head`` and ``audit.lock`` beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._lock_fd: int | None = None

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def head_name(self) -> str:
        return _head(self.path).name

    def exists(self) -> bool:
        return self.path.exists()

    def open(self) -> None:
        """Open the log for appending (creating it and its folder)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(_lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o640)
            self._fd = _open_append(self.path)
        except OSError as exc:
            self.close()
            raise StoreUnavailableError(f"cannot open the audit log {self.path}: {exc}") from exc

    def append(self, build: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if self._fd is None or self._lock_fd is None:
                raise StoreError("the audit log is closed; open it with AuditLog.open")
            try:
                with _flocked(self._lock_fd, fcntl.LOCK_EX):
                    self._follow_rewrite()
                    record = build(_chain_head(self._fd, self.path))
                    _write_all(self._fd, (to_line(record) + "\n").encode())
                    os.fsync(self._fd)
                    _write_head(self.path, record_digest(record))
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot append to the audit log {self.path}: {exc}"
                ) from exc
            return record

    def _follow_rewrite(self) -> None:
        """Reopen the log when a prune or redaction replaced its file (under the flock)."""
        if self._fd is None:
            return
        try:
            current = self.path.stat().st_ino
        except FileNotFoundError:
            current = -1
        if current != os.fstat(self._fd).st_ino:
            os.close(self._fd)
            self._fd = None
            self._fd = _open_append(self.path)

    def read(self) -> tuple[list[bytes], str | None]:
        # A shared lock, so an append in another process is not taken for a bad head.
        with _locked(self.path, fcntl.LOCK_SH):
            return _read_lines(self.path), _recorded_head(self.path)

    def rewrite(self, edit: Edit) -> None:
        with _locked(self.path, fcntl.LOCK_EX):
            lines = _read_lines(self.path)
            if lines and lines[-1] == b"":
                lines.pop()
            new_lines = edit(lines, _recorded_head(self.path))
            if new_lines is None:
                return
            _replace_durably(self.path, b"".join(line + b"\n" for line in new_lines))
            _write_head(self.path, line_digest(new_lines[-1]) if new_lines else GENESIS)

    def close(self) -> None:
        with self._lock:
            fds = (self._fd, self._lock_fd)
            self._fd = self._lock_fd = None
        for fd in fds:
            if fd is not None:
                os.close(fd)


def _open_append(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)


def _recorded_head(path: Path) -> str | None:
    head = _head(path)
    return head.read_text().strip() if head.exists() else None


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


def _replace_durably(target: Path, data: bytes) -> None:
    """Replace ``target`` atomically and durably: temp file, fsync, rename, fsync dir."""
    temp = target.with_name(target.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    temp.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_head(path: Path, digest: str) -> None:
    _replace_durably(_head(path), (digest + "\n").encode())


def _chain_head(fd: int, path: Path) -> str:
    """The hash of the log's last record, read from the file (another process may have
    appended since this one last did). A torn last line (a writer that died mid-write,
    before it updated the head) is cut off when the line before it matches the head."""
    size = os.fstat(fd).st_size
    if size == 0:
        return _empty_head(path)
    tail, start = _tail(fd, size)
    if tail.endswith(b"\n"):
        return line_digest(tail[:-1].rsplit(b"\n", 1)[-1])
    # The last line has no newline: an append was interrupted before it finished.
    cut = tail.rfind(b"\n") + 1
    before = line_digest(tail[: cut - 1].rsplit(b"\n", 1)[-1]) if cut else _empty_head(path)
    if _empty_head(path) != before:
        raise StoreCorruptedError(
            f"{path}: the last line is incomplete and the line before it does not match "
            f"{_head(path).name}; run `threadline audit` to find where the log was changed"
        )
    os.ftruncate(fd, start + cut)
    os.fsync(fd)
    return before


def _empty_head(path: Path) -> str:
    """The head of an empty log: the genesis hash, unless the head file says otherwise
    (then a later append breaks the chain, and ``threadline audit`` reports it)."""
    recorded = _recorded_head(path)
    return GENESIS if recorded is None else recorded


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


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    """``audit.lock`` held in ``mode`` (shared without a lock file in a read-only dir)."""
    try:
        lock_fd: int | None = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o640)
    except OSError:
        if mode == fcntl.LOCK_EX:
            raise
        lock_fd = None  # a read-only data dir: nobody can be appending
    try:
        if lock_fd is None:
            yield
        else:
            with _flocked(lock_fd, mode):
                yield
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _read_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [raw.rstrip(b"\n") for raw in handle]


# ---------------------------------------------------------------------- PostgreSQL

#: The chain's lines in order, and its head: one row, locked by every append.
PG_SCHEMA = Schema(
    (
        "CREATE TABLE IF NOT EXISTS audit_log (seq INTEGER PRIMARY KEY, line TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS audit_head (id SMALLINT PRIMARY KEY, digest TEXT NOT NULL)",
        "INSERT INTO audit_head VALUES (1, repeat('0', 64)) ON CONFLICT (id) DO NOTHING",
    )
)


class PgChain:
    """The audit chain in the control plane's PostgreSQL database (open ``db`` with
    :data:`PG_SCHEMA` first). Appends from any number of replicas take the head row's
    lock in turn, so there is one chain with one head."""

    def __init__(self, db: PostgresDb) -> None:
        self._db = db

    @property
    def name(self) -> str:
        return f"the audit chain in PostgreSQL at {self._db.where}"

    @property
    def head_name(self) -> str:
        return "the audit_head row"

    def exists(self) -> bool:
        return True

    def append(self, build: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        def write(tx: Tx) -> dict[str, Any]:
            record = build(_head_digest(tx, " FOR UPDATE"))
            tx.execute("INSERT INTO audit_log (line) VALUES (?)", (to_line(record),))
            tx.execute("UPDATE audit_head SET digest=? WHERE id=1", (record_digest(record),))
            return record

        return self._db.call_sync(write)

    def read(self) -> tuple[list[bytes], str | None]:
        def snapshot(tx: Tx) -> tuple[list[bytes], str | None]:
            # One snapshot for the head and the lines, taking no lock: reading a long
            # chain (`threadline audit`) never holds off the replicas' appends.
            tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            head = _head_digest(tx)
            rows = tx.execute("SELECT line FROM audit_log ORDER BY seq").fetchall()
            return [str(r[0]).encode() for r in rows], head

        return self._db.call_sync(snapshot)

    def rewrite(self, edit: Edit) -> None:
        # First on a snapshot, without the lock: when nothing would change (the hourly
        # prune of every replica but the first), appends are never held off.
        lines, head = self.read()
        if edit(lines, head) is None:
            return

        def replace(tx: Tx) -> None:
            # Verifying a long chain takes a while: no idle limit for this transaction.
            tx.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            head = _head_digest(tx, " FOR UPDATE")
            rows = tx.execute("SELECT seq, line FROM audit_log ORDER BY seq").fetchall()
            old = [(int(r[0]), str(r[1]).encode()) for r in rows]
            new_lines = edit([line for _, line in old], head)
            if new_lines is None:
                return
            _write_changes(tx, old, new_lines)
            last = line_digest(new_lines[-1]) if new_lines else GENESIS
            tx.execute("UPDATE audit_head SET digest=? WHERE id=1", (last,))

        self._db.call_sync(replace)

    def close(self) -> None:
        self._db.close_sync()


def _head_digest(tx: Tx, lock: str = "") -> str:
    """The head row's digest (``lock``: "" for a snapshot read, " FOR UPDATE" to hold it)."""
    row = tx.execute(f"SELECT digest FROM audit_head WHERE id=1{lock}").fetchone()  # noqa: S608 - fixed clauses
    if row is None:
        raise StoreCorruptedError("the audit chain's head row is missing from PostgreSQL")
    return str(row[0])


def _write_changes(tx: Tx, old: list[tuple[int, bytes]], new: list[bytes]) -> None:
    """Turn the rows ``old`` (seq, line) into the lines ``new`` writing only what
    changed: the rows before ``old[start]`` are deleted, the rest are kept in order
    (updated where their line differs) and ``new``'s remaining lines appended. Any
    ``start`` from ``len(old) - len(new)`` on gives the same lines; the first kept line
    picks it (a prune's), so a prune deletes a run and a redaction updates a few rows."""
    lowest = max(0, len(old) - len(new))
    start = next(
        (i for i in range(lowest, len(old)) if new and old[i][1] == new[0]),
        lowest,
    )
    if start < len(old):
        tx.execute("DELETE FROM audit_log WHERE seq < ?", (old[start][0],))
    else:
        tx.execute("DELETE FROM audit_log")
    kept = old[start:]
    for (seq, line), wanted in zip(kept, new, strict=False):
        if line != wanted:
            tx.execute("UPDATE audit_log SET line=? WHERE seq=?", (wanted.decode(), seq))
    for raw in new[len(kept) :]:
        tx.execute("INSERT INTO audit_log (line) VALUES (?)", (raw.decode(),))
