"""API keys: each maps to a tenant and access groups (or to an administrator).

Keys look like ``tl_<id>_<secret>``. Only a salted SHA-256 of the secret is stored, in
``keys.sqlite`` in the data dir; the key itself is shown once, when it is created.
Revoked keys stay on record (with their revocation time) so the audit log can name them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from graph import (
    Access,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
    StoreUnavailableError,
)

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
    """The key table. Open it with :meth:`open`; every method runs its SQL in a worker
    thread, so one store serves many requests at once."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
        """Open (creating if needed) the key file."""
        store = cls(path)
        await asyncio.to_thread(store._open_sync)
        return store

    def _open_sync(self) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailableError(f"cannot open the key store {self._path}: {exc}") from exc
        self._db = db

    async def close(self) -> None:
        """Close the file."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)

    async def create(
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
        await self._run(
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

    async def authenticate(self, presented: str) -> ApiKey:
        """The key record for a presented key, or :class:`PermissionDeniedError`."""
        parts = presented.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "tl":
            raise PermissionDeniedError("malformed API key; keys look like tl_<id>_<secret>")
        rows = await self._run("SELECT * FROM keys WHERE id=?", (parts[1],))
        if not rows or not hmac.compare_digest(str(rows[0][2]), _digest(str(rows[0][1]), parts[2])):
            raise PermissionDeniedError("unknown API key")
        key = _record(rows[0])
        if key.revoked_at is not None:
            raise PermissionDeniedError(f"API key {key.id} was revoked")
        return key

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        return [_record(r) for r in await self._run("SELECT * FROM keys ORDER BY created_at")]

    async def revoke(self, key_id: str) -> ApiKey:
        """Refuse the key from now on; the record stays."""
        now = datetime.now(UTC).isoformat()
        changed, row = await asyncio.to_thread(self._revoke_sync, key_id, now)
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        if not changed:
            raise InputError(f"API key {key_id} was already revoked")
        return _record(row)

    def _revoke_sync(self, key_id: str, now: str) -> tuple[int, tuple[Any, ...] | None]:
        db = self._conn()
        with self._lock:
            changed = db.execute(
                "UPDATE keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (now, key_id)
            ).rowcount
            row = db.execute("SELECT * FROM keys WHERE id=?", (key_id,)).fetchone()
        return changed, row

    async def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._run_sync, sql, params)

    def _run_sync(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        db = self._conn()
        with self._lock:
            return db.execute(sql, params).fetchall()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the key store is closed; open it with KeyStore.open")
        return self._db


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
