"""API keys: each maps to a tenant and access groups (or to an administrator).

Keys look like ``tl_<id>_<secret>``. Only a salted SHA-256 of the secret is stored, in
``keys.sqlite`` in the data dir; the key itself is shown once, when it is created.
Revoked keys stay on record (with their revocation time) so the audit log can name them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from graph import Access, InputError, NotFoundError, PermissionDeniedError

__all__ = ["ApiKey", "KeyStore", "NewKey"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL, name TEXT NOT NULL,
    tenant TEXT, groups TEXT NOT NULL, admin INTEGER NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
"""


class ApiKey(BaseModel):
    """What a key grants (never the secret)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    tenant: str | None
    groups: tuple[str, ...] = ()
    admin: bool = False
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def access(self) -> Access:
        """The reads this key may make."""
        if self.admin:
            return Access.admin()
        return Access(tenant=self.tenant, groups=frozenset(self.groups))


class NewKey(BaseModel):
    """A freshly created key: ``secret`` is the only copy of the key."""

    key: ApiKey
    secret: str = Field(description="the API key to hand to the client; it is not stored")


class KeyStore:
    """The key table, safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def create(
        self,
        *,
        tenant: str | None,
        groups: tuple[str, ...] = (),
        admin: bool = False,
        name: str = "",
    ) -> NewKey:
        """Create a key for a tenant and groups, or an admin key (no tenant)."""
        if admin == (tenant is not None):
            raise InputError("a key has either a tenant or admin rights (not both, not neither)")
        if tenant is not None:
            Access(tenant=tenant, groups=frozenset(groups))  # validates the names
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC)
        with self._lock:
            self._db.execute(
                "INSERT INTO keys VALUES (?,?,?,?,?,?,?,?,NULL)",
                (
                    key_id,
                    salt,
                    _digest(salt, secret),
                    name,
                    tenant,
                    json.dumps(sorted(set(groups))),
                    int(admin),
                    now.isoformat(),
                ),
            )
        record = ApiKey(
            id=key_id,
            name=name,
            tenant=tenant,
            groups=tuple(sorted(set(groups))),
            admin=admin,
            created_at=now,
        )
        return NewKey(key=record, secret=f"tl_{key_id}_{secret}")

    def authenticate(self, presented: str) -> ApiKey:
        """The key record for a presented key, or :class:`PermissionDeniedError`."""
        parts = presented.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "tl":
            raise PermissionDeniedError("malformed API key; keys look like tl_<id>_<secret>")
        with self._lock:
            row = self._db.execute("SELECT * FROM keys WHERE id=?", (parts[1],)).fetchone()
        if row is None or not hmac.compare_digest(row[2], _digest(row[1], parts[2])):
            raise PermissionDeniedError("unknown API key")
        key = _record(row)
        if key.revoked_at is not None:
            raise PermissionDeniedError(f"API key {key.id} was revoked")
        return key

    def all(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM keys ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        now = datetime.now(UTC).isoformat()
        with self._lock:
            changed = self._db.execute(
                "UPDATE keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (now, key_id)
            ).rowcount
            row = self._db.execute("SELECT * FROM keys WHERE id=?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        if not changed:
            raise InputError(f"API key {key_id} was already revoked")
        return _record(row)


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def _record(row: tuple[object, ...]) -> ApiKey:
    return ApiKey(
        id=str(row[0]),
        name=str(row[3]),
        tenant=row[4] if row[4] is None else str(row[4]),
        groups=tuple(json.loads(str(row[5]))),
        admin=bool(row[6]),
        created_at=datetime.fromisoformat(str(row[7])),
        revoked_at=datetime.fromisoformat(str(row[8])) if row[8] else None,
    )
