"""What differs between Bolt servers, behind one small hook.

Neo4j and ArcadeDB (which speaks Bolt and Cypher) agree on everything the store does except
the DDL of full-text indexes: Neo4j takes ``CREATE FULLTEXT INDEX`` in Cypher, ArcadeDB
creates them in its own SQL over HTTP; both then answer ``db.index.fulltext.queryNodes``
over Bolt. The dialect is picked from the server's agent string once, at start-up.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from typing import Protocol
from urllib.parse import quote, urlsplit

from neo4j import AsyncManagedTransaction

from graph.errors import StoreUnavailableError

__all__ = ["ArcadeDbDialect", "Dialect", "Neo4jDialect", "dialect_for"]


class Dialect(Protocol):
    """Server-specific DDL."""

    name: str

    #: Name under which ``db.index.fulltext.queryNodes`` finds the entity-name index.
    entity_names_index: str

    async def create_fulltext(self, tx: AsyncManagedTransaction) -> None:
        """Create the full-text index over ``Entity.names`` if it does not exist."""
        ...


class Neo4jDialect:
    """Neo4j 5 (server, cluster, Aura)."""

    name = "neo4j"
    entity_names_index = "entity_names"

    async def create_fulltext(self, tx: AsyncManagedTransaction) -> None:
        await tx.run(
            "CREATE FULLTEXT INDEX entity_names IF NOT EXISTS FOR (e:Entity) ON EACH [e.names]"
        )


class ArcadeDbDialect:
    """ArcadeDB's Bolt plugin; full-text DDL goes through its HTTP command endpoint."""

    name = "arcadedb"
    entity_names_index = "Entity[names]"

    def __init__(
        self, http_url: str, database: str, user: str, password: str, timeout: float = 30.0
    ) -> None:
        self._url = http_url.rstrip("/") + "/api/v1/command/" + quote(database)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = "Basic " + token
        self._timeout = timeout

    async def create_fulltext(self, tx: AsyncManagedTransaction) -> None:
        del tx  # the DDL is not Cypher here
        for command in (
            "CREATE VERTEX TYPE Entity IF NOT EXISTS",
            "CREATE PROPERTY Entity.names IF NOT EXISTS STRING",
            "CREATE INDEX IF NOT EXISTS ON Entity (names) FULL_TEXT",
        ):
            await asyncio.to_thread(self._sql, command)

    def _sql(self, command: str) -> None:
        body = json.dumps({"language": "sql", "command": command}).encode()
        request = urllib.request.Request(  # noqa: S310 - the configured server's URL
            self._url,
            data=body,
            method="POST",
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise StoreUnavailableError(
                f"ArcadeDB at {self._url} refused the schema command {command!r}: {exc}; "
                "set THREADLINE_GRAPH__HTTP_URL to the server's HTTP address"
            ) from exc


def dialect_for(
    agent: str, *, uri: str, database: str, user: str, password: str, http_url: str | None
) -> Dialect:
    """The dialect of the server that announced itself as ``agent``."""
    if "arcadedb" not in agent.lower():
        return Neo4jDialect()
    if http_url is None:
        host = urlsplit(uri).hostname or "127.0.0.1"
        http_url = f"http://{host}:2480"
    return ArcadeDbDialect(http_url, database, user, password)
