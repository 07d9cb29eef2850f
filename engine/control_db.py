"""The control plane's database: a SQLite file in the data dir, or PostgreSQL.

Keys, jobs, feedback, usage and quotas, rate-limit buckets and the audit chain are
written through one small seam, :class:`ControlDb`: ``run`` one statement, or ``call`` a
function in one transaction. The stores write their SQL once, with ``?`` placeholders,
in the subset both engines read the same way; :class:`PostgresDb` turns placeholders and
column types into PostgreSQL's. Which engine is used is one setting,
``THREADLINE_CONTROL__URL`` (:func:`open_db`): without it every store is a SQLite file in
the data dir, as it always was; with it every API replica and CLI shares one database, so
a key revoked on one replica is refused by all of them.

Both engines run their driver calls in worker threads, so a store serves many requests
at once without blocking the event loop. Driver errors on open become
:class:`StoreUnavailableError` (with what to check); use after close is a
:class:`StoreError` that says how to open the store.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from graph import InputError, StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

    from engine.settings import Settings

__all__ = [
    "ControlDb",
    "Cursor",
    "PostgresDb",
    "Schema",
    "SqliteFile",
    "Tx",
    "describe_url",
    "open_db",
    "postgres_db",
]

T = TypeVar("T")
Dialect = Literal["sqlite", "postgres"]


class Cursor(Protocol):
    """What a statement returns: its rows and, for writes, how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Tx(Protocol):
    """One transaction of a :meth:`ControlDb.call`."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...


@dataclass(frozen=True)
class Schema:
    """A store's tables: ``statements`` (portable DDL, run in order, each idempotent) and,
    for SQLite files, ``sqlite`` (the file's own set-up: pragmas, migrations of files
    written by earlier versions) run instead of them."""

    statements: tuple[str, ...]
    sqlite: Callable[[sqlite3.Connection], None] | None = None


class ControlDb(Protocol):
    """A control-plane database: open it with ``open``; ``run`` one statement, or ``call``
    a function in one transaction (committed when it returns, rolled back when it
    raises)."""

    dialect: Dialect

    async def open(self, schema: Schema) -> None: ...

    async def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def call(self, work: Callable[[Tx], T]) -> T: ...

    async def close(self) -> None: ...


class SqliteFile:
    """A SQLite file used from worker threads under one lock.

    Args:
        path: the file; its folder is created when missing.
        what: the store's name in messages ("the key store").
        opener: how to open the store, for the message after close ("KeyStore.open").
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, what: str, opener: str) -> None:
        self.path = path
        self._what = what
        self._opener = opener
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def open(self, schema: Schema) -> None:
        """Connect (autocommit) and set up the schema (creating or migrating the file)."""
        await asyncio.to_thread(self._open_sync, schema)

    def _open_sync(self, schema: Schema) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreUnavailableError(f"cannot open {self._what} {self.path}: {exc}") from exc
        try:
            if schema.sqlite is not None:
                schema.sqlite(db)
            else:
                for statement in schema.statements:
                    db.execute(statement)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreUnavailableError(f"cannot open {self._what} {self.path}: {exc}") from exc
        with self._lock:
            self._db = db

    async def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in a worker thread; its rows."""
        return await asyncio.to_thread(self._with_db, lambda db: db.execute(sql, params).fetchall())

    async def call(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction, in a worker thread."""
        return await asyncio.to_thread(self._with_db, lambda db: _transaction(db, work))

    def _with_db(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._db is None:
                raise StoreError(f"{self._what} is closed; open it with {self._opener}")
            return work(self._db)

    async def close(self) -> None:
        """Close the file (closing twice is harmless)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            await asyncio.to_thread(db.close)


def _transaction(db: sqlite3.Connection, work: Callable[[Tx], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


class PostgresDb:
    """One PostgreSQL database (a schema of it) through a pool of psycopg connections.

    Args:
        url: a ``postgresql://`` URL (never shown in messages: only host, port and
            database are).
        schema: the schema the tables live in, created when missing.
        what: the store's name in messages.
        pool_size: the most connections this store opens.
        timeout: seconds to wait for a connection.
        idle_timeout: seconds a transaction may sit waiting for its client before the
            server ends the session: a replica frozen or cut off mid-transaction (while
            it holds the audit head's lock) cannot stall the other replicas for longer.
    """

    dialect: Dialect = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str,
        what: str,
        pool_size: int = 8,
        timeout: float = 10.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self._url, self._schema, self._what = url, schema, what
        self._size, self._timeout, self._idle = pool_size, timeout, idle_timeout
        self._pool: ConnectionPool[Connection[tuple[Any, ...]]] | None = None
        self._secrets = _secrets(url)

    @property
    def where(self) -> str:
        """Host, port and database of the server (never the password)."""
        return describe_url(self._url)

    async def open(self, schema: Schema) -> None:
        """Connect and create the schema's tables when missing."""
        await asyncio.to_thread(self._open_sync, schema)

    def _open_sync(self, schema: Schema) -> None:
        try:
            from psycopg_pool import ConnectionPool  # noqa: PLC0415 - PostgreSQL only
        except ImportError as exc:  # pragma: no cover - part of the pinned install
            raise StoreUnavailableError(
                "the PostgreSQL control plane needs psycopg and psycopg-pool: "
                "pip install 'threadline[cluster]'"
            ) from exc
        if not _readable(self._url):
            # Said here, not by the driver: its message quotes the URL, password and all.
            raise StoreUnavailableError(
                f"cannot open {self._what}: THREADLINE_CONTROL__URL is not a PostgreSQL URL; "
                "write it as postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with special "
                "characters in the password percent-encoded (%40 for @, %25 for %)"
            )
        pool: ConnectionPool[Connection[tuple[Any, ...]]] = ConnectionPool(
            self._url,
            min_size=1,
            max_size=self._size,
            timeout=self._timeout,
            open=False,
            # A connection is checked before it is lent, so after PostgreSQL restarts the
            # replicas reconnect instead of failing one request per pooled connection.
            check=ConnectionPool.check_connection,
            # Reconnecting backs off no longer than a request waits for a connection, so
            # the first request after an outage finds the server (the default keeps
            # backing off for five minutes: minutes of 503s after the server is back).
            reconnect_timeout=self._timeout,
            kwargs={
                "autocommit": True,
                "options": f"-c search_path={self._schema} "
                f"-c idle_in_transaction_session_timeout={max(1, round(self._idle * 1000))}",
                "connect_timeout": max(1, round(self._timeout)),
            },
            name=self._what,
        )
        try:
            pool.open(wait=True, timeout=self._timeout)
            with pool.connection() as conn, conn.transaction():
                # Replicas starting together create the tables once, one after another.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(self._schema),))
                # Created only when missing: a role that owns the schema a DBA made for it
                # needs no CREATE right on the whole database.
                found = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)
                ).fetchone()
                if found is None:
                    conn.execute(f'CREATE SCHEMA "{self._schema}"')
                conn.execute(f'SET LOCAL search_path TO "{self._schema}"')
                for statement in schema.statements:
                    conn.execute(_ddl(statement))
        except Exception as exc:  # every failure to open says what to check
            pool.close()
            raise StoreUnavailableError(
                f"cannot open {self._what} in PostgreSQL at {self.where}: "
                f"{_reason(exc, self._secrets)}; "
                "check THREADLINE_CONTROL__URL and that the server is up"
            ) from exc
        self._pool = pool

    async def run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) in a worker thread; its rows."""

        def one(conn: Connection[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            return _PgCursor(conn.execute(_query(sql), tuple(params))).fetchall()

        return await asyncio.to_thread(self._with_conn, one)

    async def call(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction, in a worker thread."""
        return await asyncio.to_thread(self.call_sync, work)

    def call_sync(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one transaction, in this thread."""

        def transaction(conn: Connection[tuple[Any, ...]]) -> T:
            with conn.transaction():
                return work(_PgTx(conn))

        return self._with_conn(transaction)

    def _with_conn(self, work: Callable[[Connection[tuple[Any, ...]]], T]) -> T:
        import psycopg  # noqa: PLC0415
        import psycopg.errors  # noqa: PLC0415
        from psycopg_pool import PoolTimeout  # noqa: PLC0415

        pool = self._pool
        if pool is None:
            raise StoreError(f"{self._what} is closed; open it first")
        try:
            with pool.connection() as conn:
                try:
                    return work(conn)
                except psycopg.Error as exc:
                    if conn.broken:  # the server ended the session (restart, idle timeout)
                        raise psycopg.OperationalError(_reason(exc, self._secrets)) from exc
                    raise
        except (psycopg.DataError, psycopg.errors.ProgramLimitExceeded) as exc:
            # A value PostgreSQL cannot hold (a NUL character in text, a number out of
            # range, a key too long for an index): the caller's input is at fault.
            raise InputError(_refused_value(exc, self._what, self._secrets)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise StoreUnavailableError(
                f"{self._what}: PostgreSQL at {self.where} did not answer: "
                f"{_reason(exc, self._secrets)}; retry when it is back"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(
                f"{self._what}: PostgreSQL at {self.where} refused a statement: "
                f"{_reason(exc, self._secrets)}"
            ) from exc

    async def close(self) -> None:
        """Close the pool (closing twice is harmless)."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """Close the pool, in this thread."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class _PgCursor:
    """A psycopg cursor read the way sqlite3's is: plain ints and floats, never
    ``Decimal`` (PostgreSQL sums integers as numeric)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchall(self) -> list[Any]:
        if self._cursor.description is None:
            return []
        return [_plain(row) for row in self._cursor.fetchall()]

    def fetchone(self) -> Any:
        if self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return None if row is None else _plain(row)


class _PgTx:
    def __init__(self, conn: Connection[tuple[Any, ...]]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return _PgCursor(self._conn.execute(_query(sql), tuple(parameters)))


def _plain(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        (int(v) if v == v.to_integral_value() else float(v)) if isinstance(v, Decimal) else v
        for v in row
    )


@lru_cache(maxsize=512)
def _query(sql: str) -> Any:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def _ddl(statement: str) -> str:
    for pattern, replacement in _TYPES:
        statement = pattern.sub(replacement, statement)
    return statement


def _lock_id(schema: str) -> int:
    return zlib.crc32(f"threadline-control:{schema}".encode())


def _reason(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The first line of a driver error, with the URL's password (if quoted) masked."""
    text = str(exc).strip().splitlines()
    reason = text[0] if text else type(exc).__name__
    for secret in secrets:
        reason = reason.replace(secret, "***")
    return reason


def _refused_value(exc: BaseException, what: str, secrets: Sequence[str]) -> str:
    if "NUL" in str(exc):
        return (
            f"{what} cannot keep text with a NUL character (\\u0000) in PostgreSQL; "
            "remove it and send the request again"
        )
    return f"{what} cannot keep a value: {_reason(exc, secrets)}"


def _conninfo(url: str) -> dict[str, Any] | None:
    """The parts of a PostgreSQL URL, or None when it does not parse."""
    try:
        from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

        return dict(conninfo_to_dict(url))
    except Exception:  # noqa: BLE001 - any parse failure means the same to the operator
        return None


def _readable(url: str) -> bool:
    return _conninfo(url) is not None


def _secrets(url: str) -> tuple[str, ...]:
    """What must never be shown of ``url``: the URL itself and its password."""
    password = (_conninfo(url) or {}).get("password")
    return tuple(s for s in (url, str(password or "")) if s)


def describe_url(url: str) -> str:
    """``host:port/database`` of a PostgreSQL URL (never user or password)."""
    parts = _conninfo(url)
    if parts is None:
        return "(an unreadable THREADLINE_CONTROL__URL)"
    host = str(parts.get("host") or "localhost")
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def open_db(settings: Settings, name: str, *, what: str, opener: str) -> ControlDb:
    """The database a control-plane store named ``name`` (``keys``, ``feedback``, ...)
    lives in: ``name.sqlite`` in the data dir, or the shared PostgreSQL database when
    ``THREADLINE_CONTROL__URL`` is set. Open it with the store's schema."""
    if settings.control.url is None:
        return SqliteFile(settings.data_dir / f"{name}.sqlite", what=what, opener=opener)
    return postgres_db(settings, what)


def postgres_db(settings: Settings, what: str) -> PostgresDb:
    """The shared PostgreSQL database of the control plane (``THREADLINE_CONTROL__URL``)."""
    control = settings.control
    if control.url is None:
        raise StoreError(f"{what} needs THREADLINE_CONTROL__URL (a PostgreSQL URL)")
    return PostgresDb(
        control.url.get_secret_value(),
        schema=control.schema_name,
        what=what,
        pool_size=control.pool_size,
        timeout=control.connect_timeout,
    )
