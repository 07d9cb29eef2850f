"""API keys: each maps to a tenant and access groups (or to an administrator).

Keys look like ``tl_<id>_<secret>``. Only a salted SHA-256 of the secret is stored, in
``keys.sqlite`` in the data dir; the key itself is shown once, when it is created.
Revoked keys stay on record (with their revocation time) so the audit log can name them.

A key writes only where it may read: into its own tenant, and into groups it holds. A
tenant-wide write (no groups: public within the tenant) is open to keys without groups
(they read exactly the tenant's public documents) and, for keys with groups, needs the
``write:tenant`` permission. Admin keys write for any named tenant and groups. A key
reads personal data (e-mail addresses, phone numbers, ...) unmasked only with the ``pii``
permission; admin keys hold every permission. Key files written before permissions
existed gain the column on open; their keys hold none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from engine.control_db import ControlDb, Schema, SqliteFile, Tx
from graph import (
    Access,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)

__all__ = ["PERMISSIONS", "PII", "WRITE_TENANT", "ApiKey", "KeyStore", "NewKey"]

#: Lets a key with groups write documents public within its tenant (no groups).
WRITE_TENANT = "write:tenant"
#: Lets a key read personal data as stored; without it every text it reads is redacted
#: (:mod:`engine.redaction`).
PII = "pii"
#: Every permission a key may hold.
PERMISSIONS = frozenset({WRITE_TENANT, PII})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY, salt TEXT NOT NULL, hash TEXT NOT NULL, name TEXT NOT NULL,
    tenant TEXT, groups TEXT NOT NULL, admin INTEGER NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT, permissions TEXT NOT NULL DEFAULT '[]')
"""
_SELECT = (
    "SELECT id, salt, hash, name, tenant, groups, admin, created_at, revoked_at, permissions "
    "FROM keys"
)
_INSERT = (
    "INSERT INTO keys (id, salt, hash, name, tenant, groups, admin, created_at, revoked_at, "
    "permissions) VALUES (?,?,?,?,?,?,?,?,NULL,?)"
)


class ApiKey(BaseModel):
    """What a key grants (never the secret)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    tenant: str | None
    groups: tuple[str, ...] = ()
    admin: bool = False
    permissions: tuple[str, ...] = ()
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def sees_pii(self) -> bool:
        """Whether this key reads personal data unmasked (admin keys, or ``pii``)."""
        return self.admin or PII in self.permissions

    @property
    def access(self) -> Access:
        """The reads this key may make."""
        if self.admin:
            return Access.admin()
        return Access(tenant=self.tenant, groups=frozenset(self.groups))

    def check_write(self, tenant: str, groups: Iterable[str]) -> None:
        """Raise :class:`PermissionDeniedError` unless this key may write documents of
        ``tenant`` with the access list ``groups`` (empty: public within the tenant)."""
        if self.admin:
            return
        if tenant != self.tenant:
            raise PermissionDeniedError("only admin keys may ingest for another tenant")
        wanted = sorted({g.strip() for g in groups})
        held = ", ".join(self.groups)
        if not wanted:
            if self.groups and WRITE_TENANT not in self.permissions:
                raise PermissionDeniedError(
                    f"this key holds the groups {held} and may write only into them; name "
                    f"groups (e.g. {self.groups[0]!r}), or use a key with the "
                    f"{WRITE_TENANT} permission to write for the whole tenant"
                )
            return
        foreign = [g for g in wanted if g not in self.groups]
        if foreign:
            mine = f"only into its groups {held}" if held else "only for the whole tenant"
            raise PermissionDeniedError(
                f"this key may not write into {', '.join(foreign)}: it writes {mine}; "
                "name groups the key holds, or ask an administrator for a key that holds them"
            )


class NewKey(BaseModel):
    """A freshly created key: ``secret`` is the only copy of the key."""

    key: ApiKey
    secret: str = Field(description="the API key to hand to the client; it is not stored")


class KeyStore:
    """The key table. Open it with :meth:`open`; every method runs its SQL in a worker
    thread, so one store serves many requests at once."""

    def __init__(self, db: ControlDb) -> None:
        self._file = db

    @classmethod
    async def open(cls, where: Path | ControlDb) -> Self:
        """Open (creating or migrating if needed) the key table: a SQLite file, or the
        control plane's database (:func:`engine.control_db.open_db`)."""
        if isinstance(where, Path):
            where = SqliteFile(where, what="the key store", opener="KeyStore.open")
        store = cls(where)
        await where.open(Schema((_SCHEMA,), sqlite=_setup))
        return store

    async def close(self) -> None:
        """Close the file."""
        await self._file.close()

    async def create(
        self,
        *,
        tenant: str | None,
        groups: tuple[str, ...] = (),
        admin: bool = False,
        name: str = "",
        permissions: Iterable[str] = (),
    ) -> NewKey:
        """Create a key for a tenant and groups, or an admin key (no tenant).

        ``permissions`` are drawn from :data:`PERMISSIONS`; admin keys hold them all.
        """
        if admin == (tenant is not None):
            raise InputError("a key has either a tenant or admin rights (not both, not neither)")
        if tenant is not None:
            Access(tenant=tenant, groups=frozenset(groups))  # validates the names
        granted = tuple(sorted(set(permissions)))
        unknown = [p for p in granted if p not in PERMISSIONS]
        if unknown:
            raise InputError(
                f"unknown permission {', '.join(unknown)}; "
                f"the permissions are: {', '.join(sorted(PERMISSIONS))}"
            )
        if admin and granted:
            raise InputError("admin keys hold every permission; give permissions to tenant keys")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC)
        await self._file.run(
            _INSERT,
            (
                key_id,
                salt,
                _digest(salt, secret),
                name,
                tenant,
                json.dumps(sorted(set(groups))),
                int(admin),
                now.isoformat(),
                json.dumps(granted),
            ),
        )
        record = ApiKey(
            id=key_id,
            name=name,
            tenant=tenant,
            groups=tuple(sorted(set(groups))),
            admin=admin,
            permissions=granted,
            created_at=now,
        )
        return NewKey(key=record, secret=f"tl_{key_id}_{secret}")

    async def authenticate(self, presented: str) -> ApiKey:
        """The key record for a presented key, or :class:`PermissionDeniedError`."""
        parts = presented.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "tl":
            raise PermissionDeniedError("malformed API key; keys look like tl_<id>_<secret>")
        rows = await self._file.run(_SELECT + " WHERE id=?", (parts[1],))
        if not rows or not hmac.compare_digest(str(rows[0][2]), _digest(str(rows[0][1]), parts[2])):
            raise PermissionDeniedError("unknown API key")
        key = _record(rows[0])
        if key.revoked_at is not None:
            raise PermissionDeniedError(f"API key {key.id} was revoked")
        return key

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        rows = await self._file.run(_SELECT + " ORDER BY created_at")
        return [_record(r) for r in rows]

    async def revoke(self, key_id: str) -> ApiKey:
        """Refuse the key from now on; the record stays."""
        now = datetime.now(UTC).isoformat()

        def revoke(db: Tx) -> tuple[int, tuple[Any, ...] | None]:
            changed = db.execute(
                "UPDATE keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (now, key_id)
            ).rowcount
            row = db.execute(_SELECT + " WHERE id=?", (key_id,)).fetchone()
            return changed, row

        changed, row = await self._file.call(revoke)
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        if not changed:
            raise InputError(f"API key {key_id} was already revoked")
        return _record(row)


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_SCHEMA)
    # Files from before permissions existed: add the column once, even when the server
    # and the CLI open the file at the same moment (the check and the change are one
    # write transaction).
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(keys)")}
        if "permissions" not in columns:
            db.execute("ALTER TABLE keys ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]'")
    except sqlite3.DatabaseError:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


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
        permissions=tuple(json.loads(str(row[9]))),
    )
