"""The audit log: an append-only, hash-chained log of every action, in the data dir or in
the control plane's PostgreSQL database.

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

Several processes may append at once (the server and ``threadline keys``; with
``THREADLINE_CONTROL__URL``, every API replica): each append is serialised against the
others and builds on the chain's one head (:mod:`engine.audit_stores`: ``flock`` and
fsync for the JSON-lines file ``audit.log``, a row lock for PostgreSQL). Nothing in the
API can rewrite the log except those two audited operations; against someone with write
access to the data dir or the database, ship the head (or the whole log) to write-once
storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from engine.audit_records import (
    CHECKPOINT,
    META,
    REDACT,
    checked,
    new_record,
    redacted,
    stamp,
    to_line,
)
from engine.audit_stores import Chain, FileChain

__all__ = ["AuditLog", "AuditRecord", "Outcome", "prune", "read_records", "redact", "verify"]

#: An audit log's file (``audit.log`` in the data dir) or a chain of the control plane.
Where = Path | Chain


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
    serialised across threads and processes by the chain's storage, so one log serves
    many requests and many processes at once."""

    def __init__(self, chain: Chain) -> None:
        self._chain = chain

    @classmethod
    async def open(cls, where: Where) -> Self:
        """Open (creating if needed) the log: a file path, or a chain of the control
        plane (:func:`engine.control.open_audit`)."""
        chain = FileChain(where) if isinstance(where, Path) else where
        if isinstance(chain, FileChain):
            await asyncio.to_thread(chain.open)
        return cls(chain)

    @property
    def chain(self) -> Chain:
        """Where the records are kept (for :func:`verify`, :func:`redact`, ...)."""
        return self._chain

    async def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably and return it."""
        return await asyncio.to_thread(
            self._chain.append, lambda previous: new_record(action, fields, previous)
        )

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
        return hashlib.sha256(to_line(record).encode()).hexdigest()

    async def close(self) -> None:
        """Release the log (appends already written stay durable)."""
        await asyncio.to_thread(self._chain.close)


def _class_name(exc: BaseException) -> str:
    return type(exc).__name__


def _chain(where: Where) -> Chain:
    return FileChain(where) if isinstance(where, Path) else where


def verify(where: Where) -> int:
    """Check the hash chain; return the number of records or raise
    :class:`~graph.StoreCorruptedError` at the first break."""
    chain = _chain(where)
    lines, head = chain.read()
    return len(checked(chain.name, lines, head, chain.head_name))


def read_records(where: Where) -> list[AuditRecord]:
    """Every record of a log that verifies (:class:`StoreCorruptedError` otherwise)."""
    chain = _chain(where)
    if not chain.exists():
        return []
    lines, head = chain.read()
    return [
        AuditRecord(line=n, digest=d, fields={k: v for k, v in r.items() if k not in META})
        for n, (r, d) in enumerate(checked(chain.name, lines, head, chain.head_name), 1)
    ]


# ---------------------------------------------------------------------- rewrites


def _rewrite(
    where: Where,
    change: Callable[[list[bytes], list[tuple[dict[str, Any], str]]], tuple[list[bytes], Any]],
) -> Any:
    """With appends held off: verify the log, let ``change`` produce the new lines (and a
    result), append nothing else, and replace the lines and head atomically."""
    chain = _chain(where)
    if not chain.exists():
        return None
    result: Any = None

    def edit(lines: list[bytes], head: str | None) -> list[bytes] | None:
        nonlocal result
        new_lines, result = change(lines, checked(chain.name, lines, head, chain.head_name))
        return None if new_lines is lines else new_lines

    chain.rewrite(edit)
    return result


def prune(where: Where, before: datetime, **fields: Any) -> int:
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
            when = stamp(record.get("ts"))
            if when is None or when >= before:
                break
            count += 1
        if count == 0:
            return lines, 0
        kept = checked[count:]
        mark = new_record(
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
        return [*lines[count:], to_line(mark).encode()], count

    removed: int | None = _rewrite(where, change)
    return removed or 0


def redact(
    where: Where,
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
                fields={k: v for k, v in record.items() if k not in META},
            )
            names = sorted(set(select(view)) & set(view.fields) - {"ts", "action"})
            if not names:
                continue
            out[index] = to_line(redacted(record, digest, names)).encode()
            done[digest] = names
        if not done:
            return lines, done
        mark = new_record(REDACT, {**fields, "records": sorted(done)}, checked[-1][1])
        return [*out, to_line(mark).encode()], done

    done: dict[str, list[str]] | None = _rewrite(where, change)
    return done or {}
