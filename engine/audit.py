"""The audit log: an append-only, hash-chained JSON-lines file in the data dir.

Every ingest, delete, ask and key operation appends one record (who, what, when, which
documents were involved or cited). The file is opened for appending only and each line
carries the SHA-256 of the previous line, so any edit, deletion or reordering is found by
:func:`verify` (``threadline audit verify``). Nothing in the API can rewrite it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graph import StoreCorruptedError

__all__ = ["AuditLog", "verify"]

_GENESIS = "0" * 64


class AuditLog:
    """Appends records; safe to use from several threads of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()
        self._last = _last_hash(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    @property
    def path(self) -> Path:
        return self._path

    def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (fsync) and return it."""
        with self._lock:
            record = {"ts": datetime.now(UTC).isoformat(), "action": action, **fields}
            record["prev"] = self._last
            line = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
            os.write(self._fd, (line + "\n").encode())
            os.fsync(self._fd)
            self._last = hashlib.sha256(line.encode()).hexdigest()
            return record

    def close(self) -> None:
        os.close(self._fd)


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
    return count
