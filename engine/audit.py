"""The audit log: an append-only, hash-chained JSON-lines file in the data dir.

Every ingest, delete, key operation and read (asks, searches, entity, neighbourhood and
path reads, document reads, job polls) appends a record: who (key id and tenant), what
(the action), when, and which documents or entities were involved, as ids and counts
only: never document text, names or question text, so the log is no side channel. A
destructive action writes its intent before it starts and its outcome (``status`` ``ok``
or ``failed`` with the error code) after, both chained.

Each record carries the chain hash of the record before it (``prev``), and ``audit.head``
next to the log holds the chain hash of the last one, so any edit, deletion or reordering
(the last record included) is found by :func:`verify` (``threadline audit``). A record's
chain hash covers a salted commitment to each of its fields (``v: 2`` records; the salts
derive from the record's ``nonce``), not the field values themselves. That is what lets
two operations change the log while everything left still verifies:

* :func:`redact` (a subject erase) replaces fields with their commitments: the record's
  chain hash is unchanged, its ``nonce`` is dropped (the kept fields' salts are stored
  instead, so the redacted value cannot be confirmed by guessing), and an
  ``audit.redact`` record naming the redacted records is chained at the end. A redacted
  record that no later ``audit.redact`` names is tampering.
* :func:`prune` (retention) removes a run of leading records and chains an
  ``audit.checkpoint`` naming the last removed record (``through``) and the first kept
  one (``first``). A log that does not start from the genesis hash must start exactly
  where its last checkpoint says.

Records written before ``v: 2`` (their chain hash is the SHA-256 of the line) verify as
they always did, and a legacy record that must be redacted is replaced whole by a marker
keeping its hash, time and action.

Several processes may append at once (the server and ``threadline keys``): each append
holds an exclusive ``flock`` on ``audit.lock``, reads the chain's head from the log itself
under that lock, and fsyncs the line and the head before releasing it; a rewrite (prune,
redact) writes a new file and renames it over the log under the same lock, and appenders
reopen the log when its file was replaced. Nothing in the API can rewrite the log except
those two audited operations; against someone with write access to the data dir, ship the
head (or the whole log) to write-once storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from engine import clock
from graph import StoreCorruptedError, StoreError, StoreUnavailableError

__all__ = ["AuditLog", "AuditRecord", "Outcome", "prune", "read_records", "redact", "verify"]

_GENESIS = "0" * 64
_TAIL_BLOCK = 8192
#: Fields of a record's line that are not the record's own: its chain bookkeeping.
_META = frozenset({"prev", "v", "nonce", "salts", "redacted", "digest"})
CHECKPOINT = "audit.checkpoint"
REDACT = "audit.redact"


@dataclass
class Outcome:
    """Fields the outcome record of an audited action will carry; the action adds to
    ``fields`` as it learns them (what it removed, which documents it wrote), and sets
    ``error`` (a code) when it failed without raising."""

    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record as read back: its line number, chain hash and fields (bookkeeping
    removed; redacted fields are absent)."""

    line: int
    digest: str
    fields: dict[str, Any]


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
            self._fd = _open_append(self._path)
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
        """The SHA-256 of the line of a record :meth:`append` returned, as written (an
        outcome names its intent by it)."""
        return hashlib.sha256(_line(record).encode()).hexdigest()

    def _append_sync(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._fd is None or self._lock_fd is None:
                raise StoreError("the audit log is closed; open it with AuditLog.open")
            try:
                with _flocked(self._lock_fd, fcntl.LOCK_EX):
                    self._follow_rewrite()
                    previous = _chain_head(self._fd, self._path)
                    record = _new_record(action, fields, previous)
                    line = _line(record)
                    _write_all(self._fd, (line + "\n").encode())
                    os.fsync(self._fd)
                    _write_head(self._path, _record_digest(record))
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot append to the audit log {self._path}: {exc}"
                ) from exc
            return record

    def _follow_rewrite(self) -> None:
        """Reopen the log when a prune or redaction replaced its file (under the flock)."""
        if self._fd is None:
            return
        try:
            current = self._path.stat().st_ino
        except FileNotFoundError:
            current = -1
        if current != os.fstat(self._fd).st_ino:
            os.close(self._fd)
            self._fd = None
            self._fd = _open_append(self._path)

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


def _open_append(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)


def _class_name(exc: BaseException) -> str:
    return type(exc).__name__


def _new_record(action: str, fields: dict[str, Any], previous: str) -> dict[str, Any]:
    record = {"ts": clock.now().isoformat(), "action": action, **fields}
    record.update(prev=previous, v=2, nonce=secrets.token_hex(16))
    return record


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


def _canonical(value: Any) -> str:
    # Through a JSON round trip first, so a value hashes the same as written and as read.
    return json.dumps(json.loads(_line({"": value})), sort_keys=True, ensure_ascii=False)


def _salt(nonce: str, name: str) -> str:
    return hmac.new(nonce.encode(), name.encode(), hashlib.sha256).hexdigest()


def _commit(salt: str, name: str, value: Any) -> str:
    return hashlib.sha256(f"{salt}\x00{name}\x00{_canonical(value)}".encode()).hexdigest()


def _record_digest(record: dict[str, Any]) -> str:
    """The chain hash of a ``v: 2`` record or of a redacted legacy record."""
    version = record.get("v")
    if version == 1:
        return _legacy_digest(record)
    if version != 2:
        raise StoreCorruptedError(f"unknown audit record version {version!r}")
    nonce, salts, hidden = record.get("nonce"), record.get("salts", {}), record.get("redacted", {})
    if not isinstance(salts, dict) or not isinstance(hidden, dict):
        raise StoreCorruptedError("a record with malformed salts or redactions")
    commitments: dict[str, Any] = {}
    for name, value in record.items():
        if name in _META:
            continue
        if name in salts:
            salt = salts[name]
        elif isinstance(nonce, str):
            salt = _salt(nonce, name)
        else:
            raise StoreCorruptedError(f"the field {name!r} has no salt")
        commitments[name] = _commit(str(salt), name, value)
    for name, commitment in hidden.items():
        if name in commitments:
            raise StoreCorruptedError(f"the field {name!r} is both kept and redacted")
        commitments[name] = commitment
    body = {"prev": record.get("prev"), "fields": commitments}
    return hashlib.sha256(_line(body).encode()).hexdigest()


def _legacy_digest(record: dict[str, Any]) -> str:
    digest = record.get("digest")
    if not isinstance(digest, str):
        raise StoreCorruptedError("a redacted legacy record without its hash")
    return digest


def _parse(raw: bytes) -> tuple[dict[str, Any], str]:
    """A line's record and chain hash (the SHA-256 of the line for legacy records)."""
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise StoreCorruptedError("not a JSON object")
    if "v" in record:
        return record, _record_digest(record)
    return record, hashlib.sha256(raw).hexdigest()


def _line_digest(raw: bytes) -> str:
    try:
        return _parse(raw)[1]
    except ValueError as exc:
        raise StoreCorruptedError(f"the audit log's last record is not JSON: {exc}") from exc


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
        return _line_digest(tail[:-1].rsplit(b"\n", 1)[-1])
    # The last line has no newline: an append was interrupted before it finished.
    cut = tail.rfind(b"\n") + 1
    before = _line_digest(tail[: cut - 1].rsplit(b"\n", 1)[-1]) if cut else _empty_head(path)
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


def _empty_head(path: Path) -> str:
    """The head of an empty log: the genesis hash, unless the head file says otherwise
    (then a later append breaks the chain, and ``threadline audit`` reports it)."""
    head = _head(path)
    return head.read_text().strip() if head.exists() else _GENESIS


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


# ---------------------------------------------------------------------- verification


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


def verify(path: Path) -> int:
    """Check the hash chain; return the number of records or raise at the first break.

    Holds a shared lock on ``audit.lock`` so that an append in another process is not
    mistaken for a mismatched head."""
    with _locked(path, fcntl.LOCK_SH):
        return len(_checked(path, _read_lines(path)))


def _read_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [raw.rstrip(b"\n") for raw in handle]


def _checked(path: Path, lines: Sequence[bytes]) -> list[tuple[dict[str, Any], str]]:
    """Each line's record and chain hash, once the whole log has verified."""
    out: list[tuple[dict[str, Any], str]] = []
    previous: str | None = None
    pending: dict[str, int] = {}  # redacted records not yet named by an audit.redact
    checkpoint: tuple[int, dict[str, Any]] | None = None
    for number, line in enumerate(lines, 1):
        try:
            record, digest = _parse(line)
        except (ValueError, StoreCorruptedError) as exc:
            raise StoreCorruptedError(f"{path}:{number}: not a valid audit record ({exc})") from exc
        if previous is not None and record.get("prev") != previous:
            raise StoreCorruptedError(
                f"{path}:{number}: the chain is broken (a record before it was changed, "
                "removed or reordered)"
            )
        _track_redactions(record, digest, number, pending)
        if record.get("action") == CHECKPOINT:
            checkpoint = (number, record)
        out.append((record, digest))
        previous = digest
    if out:
        _check_start(path, out, checkpoint)
    if pending:
        number = min(pending.values())
        raise StoreCorruptedError(
            f"{path}:{number}: a record was redacted without an audit.redact record naming it"
        )
    head = _head(path)
    last = previous or _GENESIS
    if head.exists() and head.read_text().strip() != last:
        raise StoreCorruptedError(
            f"{path}: the last record does not match {head.name} (it was changed or removed)"
        )
    return out


def _track_redactions(
    record: dict[str, Any], digest: str, number: int, pending: dict[str, int]
) -> None:
    """Note a redacted record; an ``audit.redact`` record clears the ones it names."""
    if "redacted" in record or record.get("v") == 1:
        pending[digest] = number
    if record.get("action") == REDACT and isinstance(record.get("records"), list):
        for named in record["records"]:
            pending.pop(str(named), None)


def _check_start(
    path: Path,
    records: Sequence[tuple[dict[str, Any], str]],
    checkpoint: tuple[int, dict[str, Any]] | None,
) -> None:
    """The log starts at the genesis hash, or exactly where its last checkpoint says."""
    first, first_digest = records[0]
    if first.get("prev") == _GENESIS and checkpoint is None:
        return
    if checkpoint is None:
        raise StoreCorruptedError(
            f"{path}:1: the chain is broken (records before it were removed, and no "
            "audit.checkpoint says so)"
        )
    number, mark = checkpoint
    starts_here = mark.get("first") == first_digest or (mark.get("first") is None and number == 1)
    if mark.get("through") != first.get("prev") or not starts_here:
        raise StoreCorruptedError(
            f"{path}:1: the log does not start where its last audit.checkpoint "
            f"(line {number}) says: records were removed or the checkpoint was changed"
        )


def read_records(path: Path) -> list[AuditRecord]:
    """Every record of a log that verifies (:class:`StoreCorruptedError` otherwise)."""
    if not path.exists():
        return []
    with _locked(path, fcntl.LOCK_SH):
        checked = _checked(path, _read_lines(path))
    return [
        AuditRecord(line=n, digest=d, fields={k: v for k, v in r.items() if k not in _META})
        for n, (r, d) in enumerate(checked, 1)
    ]


# ---------------------------------------------------------------------- rewrites


def _rewrite(
    path: Path,
    change: Callable[[list[bytes], list[tuple[dict[str, Any], str]]], tuple[list[bytes], Any]],
) -> Any:
    """Under the exclusive lock: verify the log, let ``change`` produce the new lines
    (and a result), append nothing else, and replace the file and head atomically."""
    if not path.exists():
        return None
    with _locked(path, fcntl.LOCK_EX):
        lines = _read_lines(path)
        if lines and lines[-1] == b"":
            lines.pop()
        checked = _checked(path, lines)
        new_lines, result = change(lines, checked)
        if new_lines is lines:
            return result
        data = b"".join(line + b"\n" for line in new_lines)
        _replace_durably(path, data)
        _write_head(path, _line_digest(new_lines[-1]) if new_lines else _GENESIS)
        return result


def prune(path: Path, before: datetime, **fields: Any) -> int:
    """Remove the leading records stamped before ``before`` and chain an
    ``audit.checkpoint`` (with ``fields``) that says so; return how many were removed.

    The log must verify first (:class:`StoreCorruptedError` otherwise: a tampered log is
    never rewritten into one that verifies)."""

    def change(
        lines: list[bytes], checked: list[tuple[dict[str, Any], str]]
    ) -> tuple[list[bytes], int]:
        count = 0
        for record, _ in checked:
            if record.get("action") == CHECKPOINT and count == len(checked) - 1:
                break  # the last checkpoint stays: it says where the log starts
            stamp = _stamp(record.get("ts"))
            if stamp is None or stamp >= before:
                break
            count += 1
        if count == 0:
            return lines, 0
        kept = checked[count:]
        mark = _new_record(
            CHECKPOINT,
            {
                **fields,
                "removed": count,
                "through": checked[count - 1][1],
                "first": kept[0][1] if kept else None,
                "cutoff": before.isoformat(),
            },
            checked[-1][1],
        )
        return [*lines[count:], _line(mark).encode()], count

    removed: int | None = _rewrite(path, change)
    return removed or 0


def redact(
    path: Path,
    select: Callable[[AuditRecord], Sequence[str]],
    **fields: Any,
) -> dict[str, list[str]]:
    """Redact the fields ``select`` picks from each record (by chain hash) and chain an
    ``audit.redact`` record (with ``fields``) naming them; return what was redacted.

    A legacy (pre-``v: 2``) record is replaced whole by a marker keeping its hash, time
    and action. The log must verify first."""

    def change(
        lines: list[bytes], checked: list[tuple[dict[str, Any], str]]
    ) -> tuple[list[bytes], dict[str, list[str]]]:
        done: dict[str, list[str]] = {}
        out = list(lines)
        for index, (record, digest) in enumerate(checked):
            view = AuditRecord(
                line=index + 1,
                digest=digest,
                fields={k: v for k, v in record.items() if k not in _META},
            )
            names = sorted(set(select(view)) & set(view.fields) - {"ts", "action"})
            if not names:
                continue
            out[index] = _line(_redacted(record, digest, names)).encode()
            done[digest] = names
        if not done:
            return lines, done
        mark = _new_record(REDACT, {**fields, "records": sorted(done)}, checked[-1][1])
        return [*out, _line(mark).encode()], done

    redacted: dict[str, list[str]] | None = _rewrite(path, change)
    return redacted or {}


def _redacted(record: dict[str, Any], digest: str, names: Sequence[str]) -> dict[str, Any]:
    if "v" not in record or record.get("v") == 1:
        return {
            "v": 1,
            "digest": digest,
            "prev": record.get("prev"),
            "ts": record.get("ts"),
            "action": record.get("action"),
        }
    nonce = record.get("nonce")
    salts = dict(record.get("salts", {}))
    hidden = dict(record.get("redacted", {}))
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in _META:
            continue
        salt = salts.get(name) or _salt(str(nonce), name)
        if name in names:
            hidden[name] = _commit(salt, name, value)
        else:
            out[name] = value
            salts[name] = salt
    salts = {k: v for k, v in salts.items() if k in out}
    out.update(v=2, prev=record.get("prev"), salts=salts, redacted=hidden)
    return out


def _stamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
