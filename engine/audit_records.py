"""Audit records and the hash chain that links them, apart from where they are kept.

A record's chain hash covers a salted commitment to each of its fields (``v: 2``), so a
field can later be replaced by its commitment (:func:`redacted`) without changing the
hash; records written before ``v: 2`` hash as their line. :func:`checked` walks a whole
chain and raises :class:`StoreCorruptedError` at the first break. Where the lines live
(a file in the data dir, or PostgreSQL) is :mod:`engine.audit_stores`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from engine import clock
from graph import StoreCorruptedError

__all__ = [
    "CHECKPOINT",
    "GENESIS",
    "META",
    "REDACT",
    "checked",
    "field_commitment",
    "field_salt",
    "line_digest",
    "new_record",
    "parse",
    "record_digest",
    "redacted",
    "stamp",
    "to_line",
]

#: The ``prev`` of the first record of a chain.
GENESIS = "0" * 64
#: Fields of a record's line that are not the record's own: its chain bookkeeping.
META = frozenset({"prev", "v", "nonce", "salts", "redacted", "digest"})
CHECKPOINT = "audit.checkpoint"
REDACT = "audit.redact"


def new_record(action: str, fields: dict[str, Any], previous: str) -> dict[str, Any]:
    record = {"ts": clock.now().isoformat(), "action": action, **fields}
    record.update(prev=previous, v=2, nonce=secrets.token_hex(16))
    return record


def to_line(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)


def _canonical(value: Any) -> str:
    # Through a JSON round trip first, so a value hashes the same as written and as read.
    return json.dumps(json.loads(to_line({"": value})), sort_keys=True, ensure_ascii=False)


def field_salt(nonce: str, name: str) -> str:
    return hmac.new(nonce.encode(), name.encode(), hashlib.sha256).hexdigest()


def field_commitment(salt: str, name: str, value: Any) -> str:
    return hashlib.sha256(f"{salt}\x00{name}\x00{_canonical(value)}".encode()).hexdigest()


def record_digest(record: dict[str, Any]) -> str:
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
        if name in META:
            continue
        if name in salts:
            salt = salts[name]
        elif isinstance(nonce, str):
            salt = field_salt(nonce, name)
        else:
            raise StoreCorruptedError(f"the field {name!r} has no salt")
        commitments[name] = field_commitment(str(salt), name, value)
    for name, commitment in hidden.items():
        if name in commitments:
            raise StoreCorruptedError(f"the field {name!r} is both kept and redacted")
        commitments[name] = commitment
    body = {"prev": record.get("prev"), "fields": commitments}
    return hashlib.sha256(to_line(body).encode()).hexdigest()


def _legacy_digest(record: dict[str, Any]) -> str:
    digest = record.get("digest")
    if not isinstance(digest, str):
        raise StoreCorruptedError("a redacted legacy record without its hash")
    return digest


def parse(raw: bytes) -> tuple[dict[str, Any], str]:
    """A line's record and chain hash (the SHA-256 of the line for legacy records)."""
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise StoreCorruptedError("not a JSON object")
    if "v" in record:
        return record, record_digest(record)
    return record, hashlib.sha256(raw).hexdigest()


def line_digest(raw: bytes) -> str:
    try:
        return parse(raw)[1]
    except ValueError as exc:
        raise StoreCorruptedError(f"the audit log's last record is not JSON: {exc}") from exc


def checked(
    where: str, lines: Sequence[bytes], head: str | None, head_name: str = "the head"
) -> list[tuple[dict[str, Any], str]]:
    """Each line's record and chain hash, once the whole log (``where`` in messages;
    ``head`` the chain hash recorded beside it, if any) has verified."""
    out: list[tuple[dict[str, Any], str]] = []
    previous: str | None = None
    pending: dict[str, int] = {}  # redacted records not yet named by an audit.redact
    checkpoint: tuple[int, dict[str, Any]] | None = None
    for number, line in enumerate(lines, 1):
        try:
            record, digest = parse(line)
        except (ValueError, StoreCorruptedError) as exc:
            raise StoreCorruptedError(
                f"{where}:{number}: not a valid audit record ({exc})"
            ) from exc
        if previous is not None and record.get("prev") != previous:
            raise StoreCorruptedError(
                f"{where}:{number}: the chain is broken (a record before it was changed, "
                "removed or reordered)"
            )
        _track_redactions(record, digest, number, pending)
        if record.get("action") == CHECKPOINT:
            checkpoint = (number, record)
        out.append((record, digest))
        previous = digest
    if out:
        _check_start(where, out, checkpoint)
    if pending:
        number = min(pending.values())
        raise StoreCorruptedError(
            f"{where}:{number}: a record was redacted without an audit.redact record naming it"
        )
    if head is not None and head != (previous or GENESIS):
        raise StoreCorruptedError(
            f"{where}: the last record does not match {head_name} (it was changed or removed)"
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
    where: str,
    records: Sequence[tuple[dict[str, Any], str]],
    checkpoint: tuple[int, dict[str, Any]] | None,
) -> None:
    """The log starts at the genesis hash, or exactly where its last checkpoint says."""
    first, first_digest = records[0]
    if first.get("prev") == GENESIS and checkpoint is None:
        return
    if checkpoint is None:
        raise StoreCorruptedError(
            f"{where}:1: the chain is broken (records before it were removed, and no "
            "audit.checkpoint says so)"
        )
    number, mark = checkpoint
    starts_here = mark.get("first") == first_digest or (mark.get("first") is None and number == 1)
    if mark.get("through") != first.get("prev") or not starts_here:
        raise StoreCorruptedError(
            f"{where}:1: the log does not start where its last audit.checkpoint "
            f"(line {number}) says: records were removed or the checkpoint was changed"
        )


def redacted(record: dict[str, Any], digest: str, names: Sequence[str]) -> dict[str, Any]:
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
        if name in META:
            continue
        salt = salts.get(name) or field_salt(str(nonce), name)
        if name in names:
            hidden[name] = field_commitment(salt, name, value)
        else:
            out[name] = value
            salts[name] = salt
    salts = {k: v for k, v in salts.items() if k in out}
    out.update(v=2, prev=record.get("prev"), salts=salts, redacted=hidden)
    return out


def stamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
