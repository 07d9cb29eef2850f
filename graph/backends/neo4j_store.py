"""The production graph store: Neo4j (single server, cluster or Aura) over Bolt.

Writes are batched ``UNWIND $rows`` statements inside one managed write transaction per
call, which the driver retries on transient errors (deadlocks, leader changes). Reads are
routed to readers. Every read filters by the caller's tenant and groups inside the Cypher
(:func:`graph.backends.neo4j_cypher.readable`), never afterwards.

Graph algorithms are the shared ones of :mod:`graph.algorithms` and never pull the whole
graph: neighbourhoods and shortest paths expand breadth-first, one bounded Cypher query per
level, and retrieval's personalised PageRank runs over the bounded entity-chunk subgraph
that :meth:`Neo4jGraphStore.mention_edges` returns. Where a query must cut a ranked list
(``LIMIT``), it orders by the same keys the shared ranking uses. Write transactions live in
:mod:`graph.backends.neo4j_writes`.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Self, TypeVar

import neo4j
from neo4j import AsyncDriver, AsyncGraphDatabase, AsyncManagedTransaction, RoutingControl
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConfigurationError,
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from graph.algorithms import (
    bounded_neighborhood,
    rank_entities,
    shortest_paths,
    strongest_first,
)
from graph.backends import neo4j_communities as communities
from graph.backends import neo4j_cypher as cypher
from graph.backends.neo4j_dialect import Dialect, dialect_for
from graph.backends.neo4j_writes import ConflictError, delete_tx, replace_tx
from graph.communities import Community, CommunityId, CommunityScope, EntityGraph, check_scope
from graph.errors import ConfigError, StoreError, StoreUnavailableError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId, normalize_name, title_key
from graph.models import (
    Access,
    Chunk,
    DeleteReport,
    Document,
    DocumentGraph,
    Entity,
    GraphPath,
    Mention,
    Neighborhood,
    Relation,
    Section,
    Span,
    StoreStats,
    Tag,
)
from graph.scoping import ENTITY_IDS

__all__ = ["Neo4jGraphStore"]

T = TypeVar("T")

BOLT_SCHEMES = frozenset({"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"})
#: Runs of a write transaction that met a write conflict before the error is reported.
WRITE_ATTEMPTS = 5
_TOKEN = re.compile(r"\w+")
_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')


def _access(access: Access) -> dict[str, Any]:
    return {"tenant": access.tenant, "groups": access.readable_groups()}


class Neo4jGraphStore:
    """Graph store on a Neo4j-compatible Bolt server. Create it with :meth:`open`."""

    def __init__(self, driver: AsyncDriver, *, uri: str, database: str, dialect: Dialect) -> None:
        self._driver = driver
        self._uri = uri
        self._database = database
        self._dialect = dialect
        self._fulltext = True

    @classmethod
    async def open(
        cls,
        uri: str,
        *,
        user: str,
        password: str,
        database: str = "neo4j",
        http_url: str | None = None,
        connection_timeout: float = 10.0,
        max_pool_size: int = 50,
    ) -> Self:
        """Connect, check the credentials and the database, and create the schema.

        ``http_url`` is only used for ArcadeDB (its HTTP API takes the full-text DDL).
        """
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in BOLT_SCHEMES:
            raise ConfigError(
                f"invalid Neo4j URI {uri!r}: use bolt://, neo4j://, neo4j+s:// or bolt+s:// "
                "followed by host:port (THREADLINE_GRAPH__URI)"
            )
        try:
            driver = AsyncGraphDatabase.driver(
                uri,
                auth=(user, password),
                connection_timeout=connection_timeout,
                max_connection_pool_size=max_pool_size,
            )
        except (ConfigurationError, ValueError) as exc:
            raise ConfigError(
                f"invalid Neo4j URI {uri!r}: {exc}; use bolt://, neo4j://, neo4j+s:// "
                "or bolt+s:// followed by host:port (THREADLINE_GRAPH__URI)"
            ) from exc
        try:
            info = await driver.get_server_info()
            dialect = dialect_for(
                info.agent,
                uri=uri,
                database=database,
                user=user,
                password=password,
                http_url=http_url,
            )
            store = cls(driver, uri=uri, database=database, dialect=dialect)
            await store._create_schema()
        except BaseException as exc:
            await driver.close()
            if isinstance(exc, Neo4jError | DriverError):
                raise _translate(exc, uri, database, user) from exc
            raise
        return store

    @property
    def dialect(self) -> str:
        """Which server dialect the store detected (``neo4j`` or ``arcadedb``)."""
        return self._dialect.name

    async def _create_schema(self) -> None:
        async def work(tx: AsyncManagedTransaction) -> None:
            for statement in cypher.schema():
                await (await tx.run(statement)).consume()

        async def title_keys(tx: AsyncManagedTransaction) -> None:
            # Documents written before pages were looked up by title get their key.
            result = await tx.run(cypher.untitled_documents())
            rows = [{"id": r["id"], "key": title_key(r["title"])} async for r in result]
            if rows:
                await (await tx.run(cypher.set_title_keys(), rows=rows)).consume()

        async def entity_ids(tx: AsyncManagedTransaction) -> str | None:
            # A database without the marker and without entities is new: mark it.
            record = await (await tx.run(cypher.entity_ids_marker())).single()
            layout = record["layout"] if record is not None else None
            if layout is None and not (record is not None and record["populated"]):
                await (await tx.run(cypher.mark_entity_ids(), layout=ENTITY_IDS)).consume()
                return ENTITY_IDS
            return str(layout) if layout is not None else None

        async with self._driver.session(database=self._database) as session:
            await session.execute_write(work)
            await session.execute_write(self._dialect.create_fulltext)
            await session.execute_write(title_keys)
            layout = await session.execute_write(entity_ids)
        if layout != ENTITY_IDS:
            written = f"with entity-id layout {layout!r}" if layout else "with unscoped entity ids"
            raise StoreError(
                f"the Neo4j database {self._database!r} holds entities written {written}, "
                "which would show names across tenants and groups; copy it into the embedded "
                "store with the Threadline that wrote it (`threadline migrate --to networkx`), "
                "open that data dir with this Threadline (it is rescoped on open), then run "
                "`threadline migrate --to neo4j` into an empty database; or re-ingest the "
                "documents into an empty database"
            )

    async def close(self) -> None:
        """Close the driver and its connections."""
        await self._driver.close()

    # ------------------------------------------------------------------ plumbing

    async def _read(self, statement: str, /, **params: Any) -> list[neo4j.Record]:
        try:
            result = await self._driver.execute_query(
                statement,
                params,
                database_=self._database,
                routing_=RoutingControl.READ,
            )
        except (Neo4jError, DriverError) as exc:
            raise _translate(exc, self._uri, self._database) from exc
        return list(result.records)

    async def _write(self, work: Callable[[AsyncManagedTransaction], Awaitable[T]]) -> T:
        """Run ``work`` in a managed write transaction.

        The driver retries transient errors itself. Servers that check uniqueness at commit
        rather than locking on ``MERGE`` (ArcadeDB) report two writers creating the same
        entity as a constraint violation, or let one of them miss the other's node; both
        are write conflicts, so the whole transaction is run again a few times. Writes are
        idempotent, so a retry never duplicates anything.
        """
        for attempt in range(WRITE_ATTEMPTS):
            try:
                async with self._driver.session(database=self._database) as session:
                    return await session.execute_write(work)
            except (ConstraintError, ConflictError) as exc:
                if attempt + 1 == WRITE_ATTEMPTS:
                    if isinstance(exc, ConflictError):
                        raise StoreError(str(exc)) from exc
                    raise _translate(exc, self._uri, self._database) from exc
                await asyncio.sleep(random.uniform(0.05, 0.2) * (2**attempt))  # noqa: S311
            except (Neo4jError, DriverError) as exc:
                raise _translate(exc, self._uri, self._database) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ writes

    async def upsert(
        self, graphs: Sequence[DocumentGraph], *, replaces: Sequence[DocumentId] = ()
    ) -> None:
        """Write documents and their extractions (and drop ``replaces``) in one transaction."""
        graphs = list(graphs)
        replaces = list(dict.fromkeys(replaces))

        async def work(tx: AsyncManagedTransaction) -> None:
            ids = [g.document.id for g in graphs] + replaces
            present = {
                r["id"] for r in await (await tx.run(cypher.existing_documents(), ids=ids)).data()
            }
            new = [g for g in graphs if g.document.id not in present]
            old = [d for d in replaces if d in present]
            await replace_tx(tx, old, new)

        await self._write(work)

    async def delete(self, document_ids: Sequence[DocumentId]) -> DeleteReport:
        """Delete documents and everything only they support, in one transaction."""
        ids = list(dict.fromkeys(document_ids))

        async def work(tx: AsyncManagedTransaction) -> DeleteReport:
            present = [
                r["id"] for r in await (await tx.run(cypher.existing_documents(), ids=ids)).data()
            ]
            if not present:
                return DeleteReport()
            return await delete_tx(tx, present)

        return await self._write(work)

    # ------------------------------------------------------------------ reads

    async def documents(
        self,
        access: Access,
        *,
        ids: Sequence[DocumentId] | None = None,
        source: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Document]:
        """Readable documents, ordered by source then version."""
        query = cypher.documents(by_ids=ids is not None, by_source=source is not None)
        records = await self._read(
            query,
            ids=list(dict.fromkeys(ids or ())),
            source=source,
            limit=max(limit, 0),
            offset=max(offset, 0),
            **_access(access),
        )
        return [_document(r["d"]) for r in records]

    async def chunks(self, ids: Sequence[ChunkId], access: Access) -> list[Chunk]:
        """Readable chunks by id, in the order asked."""
        records = await self._read(cypher.chunks(), ids=list(dict.fromkeys(ids)), **_access(access))
        found = {r["c"]["id"]: _chunk(r["c"]) for r in records}
        return [found[c] for c in ids if c in found]

    async def chunks_overlapping(
        self, ranges: Sequence[tuple[DocumentId, int, int]], access: Access
    ) -> list[Chunk]:
        """Readable chunks overlapping the document ranges, by document, start and index."""
        rows = [{"document_id": d, "start": s, "end": e} for d, s, e in dict.fromkeys(ranges)]
        if not rows:
            return []
        records = await self._read(cypher.chunks_overlapping(), rows=rows, **_access(access))
        found = {r["c"]["id"]: _chunk(r["c"]) for r in records}
        return sorted(found.values(), key=lambda c: (c.document_id, c.start, c.index))

    async def pages(self, names: Sequence[str], access: Access) -> dict[str, list[Chunk]]:
        """First chunks of the readable documents titled with each name or about it."""
        keys = {name: title_key(name) for name in dict.fromkeys(names)}
        if not keys:
            return {}
        wanted = sorted(set(keys.values()))
        titled, subject = await asyncio.gather(
            self._read(cypher.pages(about=False), keys=wanted, **_access(access)),
            self._read(cypher.pages(about=True), keys=wanted, **_access(access)),
        )
        by_key: dict[str, dict[ChunkId, tuple[str, set[str], Chunk]]] = defaultdict(dict)
        for r in [*titled, *subject]:
            if r["c"] is not None:
                chunk = _chunk(r["c"])
                said = {normalize_name(n) for n in r["about"] or ()}
                by_key[r["key"]][chunk.id] = (normalize_name(r["title"]), said, chunk)
        out: dict[str, list[Chunk]] = {}
        for name, key in keys.items():
            exact = normalize_name(name)
            found = sorted(
                by_key.get(key, {}).values(),
                key=lambda t: (t[0] != exact, exact not in t[1], t[2].document_id),
            )
            if found:
                out[name] = [c for _, _, c in found]
        return out

    async def entities(self, ids: Sequence[EntityId], access: Access) -> list[Entity]:
        """Visible entities by id, in the order asked."""
        records = await self._read(
            cypher.entities(), ids=list(dict.fromkeys(ids)), **_access(access)
        )
        found = {r["e"]["id"]: _entity(r["e"]) for r in records}
        return [found[e] for e in ids if e in found]

    async def search_entities(
        self, text: str, access: Access, *, types: Sequence[str] = (), limit: int = 20
    ) -> list[Entity]:
        """Visible entities whose name or alias contains ``text``, exact and prefix first.

        The full-text index supplies candidates for whole-word prefixes; when it finds fewer
        than ``limit`` the store also scans names for substrings inside words.
        """
        needle = normalize_name(text)
        if limit <= 0:
            return []
        params = {"needle": needle, "types": list(types), "limit": limit, **_access(access)}
        rows: dict[str, tuple[Entity, int, int]] = {}
        query = _lucene_prefix(needle)
        if query and self._fulltext:
            index = self._dialect.entity_names_index
            try:
                records = await self._read(
                    cypher.search_fulltext(index, typed=bool(types)),
                    query=query,
                    scan=limit * 20,
                    **params,
                )
            except StoreError:
                # An index that is still populating, or a server without full-text support.
                self._fulltext = False
                records = []
            for r in records:
                rows[r["e"]["id"]] = (_entity(r["e"]), r["rank"], r["support"])
        if len(rows) < limit:
            for r in await self._read(cypher.search_entities(typed=bool(types)), **params):
                rows[r["e"]["id"]] = (_entity(r["e"]), r["rank"], r["support"])
        return rank_entities(rows.values(), limit)

    async def match_entities(self, names: Sequence[str], access: Access) -> dict[str, list[Entity]]:
        """Visible entities named (or aliased) exactly like each name, most mentioned first."""
        by_key: dict[str, list[str]] = defaultdict(list)
        for name in dict.fromkeys(names):
            by_key[normalize_name(name)].append(name)
        records = await self._read(cypher.match_names(), keys=list(by_key), **_access(access))
        found: dict[str, list[tuple[Entity, int, int]]] = defaultdict(list)
        for r in records:
            found[r["key"]].append((_entity(r["e"]), 0, r["support"]))
        ranked = {key: rank_entities(rows, len(rows)) for key, rows in found.items()}
        return {
            name: ranked[key] for key, asked in by_key.items() if key in found for name in asked
        }

    async def mentions(
        self, entity_ids: Sequence[EntityId], access: Access, *, limit: int = 100
    ) -> list[Mention]:
        """Readable mentions of the entities, in document order."""
        records = await self._read(
            cypher.mentions(), ids=list(dict.fromkeys(entity_ids)), limit=limit, **_access(access)
        )
        return [_mention(r) for r in records]

    async def mention_edges(
        self, entity_ids: Sequence[EntityId], access: Access, *, per_entity: int = 200
    ) -> list[tuple[EntityId, ChunkId, int]]:
        """(entity, chunk, mention count) for readable chunks, at most ``per_entity`` each."""
        records = await self._read(
            cypher.mention_edges(),
            ids=list(dict.fromkeys(entity_ids)),
            per_entity=per_entity,
            **_access(access),
        )
        return [(r["eid"], r["cid"], r["n"]) for r in records]

    async def chunk_mentions(self, chunk_ids: Sequence[ChunkId], access: Access) -> list[Mention]:
        """Mentions inside readable chunks, in chunk then text order."""
        order = {c: i for i, c in enumerate(dict.fromkeys(chunk_ids))}
        records = await self._read(cypher.chunk_mentions(), ids=list(order), **_access(access))
        rows = sorted(records, key=lambda r: (order[r["chunk_id"]], r["start"], r["entity_id"]))
        return [_mention(r) for r in rows]

    async def facts(self, ids: Sequence[RelationId], access: Access) -> list[Relation]:
        """Facts by id, with readable evidence only, in the order asked."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        records = await self._read(cypher.facts_by_id(), ids=wanted, **_access(access))
        built = _relations(records)
        return [built[r] for r in wanted if r in built]

    async def relations(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        predicates: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Relation]:
        """Facts touching the entities, strongest first (one query, evidence included)."""
        return await self._touching(list(entity_ids), access, predicates, limit)

    async def _touching(
        self, entity_ids: Sequence[EntityId], access: Access, predicates: Sequence[str], limit: int
    ) -> list[Relation]:
        records = await self._read(
            cypher.touching(by_predicate=bool(predicates)),
            ids=list(dict.fromkeys(entity_ids)),
            predicates=list(predicates),
            limit=max(limit, 0),
            **_access(access),
        )
        # The query cut the list by the shared strength order; the ranking itself is shared.
        return strongest_first(_relations(records).values())

    async def neighbors(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        depth: int = 1,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> Neighborhood:
        """The readable subgraph around the entities (:func:`graph.bounded_neighborhood`),
        one bounded query per level."""

        async def expand(frontier: Sequence[EntityId], cap: int) -> list[Relation]:
            return await self._touching(frontier, access, predicates, cap)

        seeds = [e.id for e in await self.entities(list(dict.fromkeys(entity_ids)), access)]
        kept, facts, truncated = await bounded_neighborhood(seeds, expand, depth=depth, limit=limit)
        entities = await self.entities(kept, access)
        return Neighborhood(entities=tuple(entities), relations=tuple(facts), truncated=truncated)

    async def paths(
        self,
        source: EntityId,
        target: EntityId,
        access: Access,
        *,
        max_hops: int = 4,
        limit: int = 10,
    ) -> list[GraphPath]:
        """Shortest readable fact chains (:func:`graph.shortest_paths`), one bounded query
        per breadth-first level."""
        if source == target or len(await self.entities([source, target], access)) < 2:
            return []

        async def neighbours(
            frontier: Sequence[EntityId], cap: int
        ) -> list[tuple[EntityId, EntityId]]:
            records = await self._read(
                cypher.expand(), ids=list(frontier), cap=cap, **_access(access)
            )
            return [(r["a"], r["b"]) for r in records]

        async def between(pairs: Sequence[tuple[EntityId, EntityId]]) -> list[Relation]:
            records = await self._read(
                cypher.facts_between(), pairs=[list(p) for p in pairs], **_access(access)
            )
            return list(_relations(records).values())

        return await shortest_paths(
            source, target, neighbours, between, max_hops=max_hops, limit=limit
        )

    async def export(self, document_ids: Sequence[DocumentId]) -> list[DocumentGraph]:
        """The stored graph of each document, with only that document's evidence."""
        ids = list(dict.fromkeys(document_ids))
        docs = {
            r["d"]["id"]: _document(r["d"])
            for r in await self._read(cypher.export_documents(), ids=ids)
        }
        chunks: dict[str, list[Chunk]] = defaultdict(list)
        for r in await self._read(cypher.export_chunks(), ids=ids):
            chunks[r["c"]["document_id"]].append(_chunk(r["c"]))
        mentions: dict[str, list[Mention]] = defaultdict(list)
        for r in await self._read(cypher.export_mentions(), ids=ids):
            mentions[r["document_id"]].append(_mention(r))
        facts: dict[str, list[neo4j.Record]] = defaultdict(list)
        for r in await self._read(cypher.export_facts(), ids=ids):
            facts[r["document_id"]].append(r)
        out: list[DocumentGraph] = []
        for did in ids:
            if did not in docs:
                continue
            relations = list(_relations(facts[did]).values())
            entity_ids = list(
                dict.fromkeys(
                    [m.entity_id for m in mentions[did]]
                    + [e for rel in relations for e in (rel.subject_id, rel.object_id)]
                )
            )
            entities = await self.entities(entity_ids, Access.admin())
            out.append(
                DocumentGraph.model_construct(
                    document=docs[did],
                    chunks=tuple(chunks[did]),
                    entities=tuple(entities),
                    mentions=tuple(mentions[did]),
                    relations=tuple(relations),
                )
            )
        return out

    async def pii_values(self, access: Access, types: frozenset[str]) -> list[tuple[str, str]]:
        """Distinct (text, type) of the readable chunks' personal-data tags of ``types``."""
        if not types:
            return []
        records = await self._read(cypher.pii_chunks(), types=sorted(types), **_access(access))
        found: set[tuple[str, str]] = set()
        for r in records:
            for tag in json.loads(r["tags"] or "[]"):
                if tag["kind"] == "pii" and tag["type"] in types:
                    found.add(
                        (
                            r["text"][tag["start"] - r["start"] : tag["end"] - r["start"]],
                            tag["type"],
                        )
                    )
        return sorted(found)

    async def community_scopes(self, access: Access) -> list[CommunityScope]:
        """Readable scopes with their document fingerprints."""
        return await communities.scopes(self._read, access)

    async def entity_graph(self, scope: CommunityScope) -> EntityGraph:
        """The scope's entity graph."""
        return await communities.entity_graph(self._read, scope)

    async def put_communities(self, scope: CommunityScope, found: Sequence[Community]) -> None:
        """Replace a scope's communities in one transaction."""
        check_scope(scope, found)
        await self._write(lambda tx: communities.put_tx(tx, scope, found))

    async def communities(
        self, access: Access, *, level: int | None = None, ids: Sequence[CommunityId] | None = None
    ) -> list[Community]:
        """Readable stored communities."""
        return await communities.communities(self._read, access, level, ids)

    async def stats(self, access: Access) -> StoreStats:
        """Counts of what ``access`` can see."""
        params = _access(access)
        counts = {}
        for name, query in cypher.stats():
            counts[name] = (await self._read(query, **params))[0]["n"]
        return StoreStats(**counts)


# ---------------------------------------------------------------------- rows to models
# Rows were validated when they were written; model_construct skips re-validation.


def _document(row: dict[str, Any]) -> Document:
    return Document.model_construct(
        id=row["id"],
        source=row["source"],
        title=row["title"],
        version=row["version"],
        tenant=row["tenant"],
        groups=tuple(row["groups"]),
        content_hash=row["content_hash"],
        ingested_at=datetime.fromisoformat(row["ingested_at"]),
        text=row["text"],
        sections=tuple(Section.model_construct(**x) for x in json.loads(row["sections"] or "[]")),
        about=tuple(row.get("about") or ()),
    )


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk.model_construct(
        id=row["id"],
        document_id=row["document_id"],
        index=row["index"],
        start=row["start"],
        end=row["end"],
        text=row["text"],
        tags=tuple(Tag.model_construct(**t) for t in json.loads(row.get("tags") or "[]")),
    )


def _entity(row: dict[str, Any]) -> Entity:
    return Entity.model_construct(
        id=row["id"], name=row["name"], type=row["type"], aliases=tuple(row["aliases"] or ())
    )


def _mention(row: neo4j.Record) -> Mention:
    return Mention.model_construct(
        entity_id=row["entity_id"],
        span=Span.model_construct(
            chunk_id=row["chunk_id"],
            document_id=row["document_id"],
            start=row["start"],
            end=row["end"],
            text=row["text"],
        ),
    )


def _relations(records: Sequence[neo4j.Record]) -> dict[RelationId, Relation]:
    """Relations from per-document fact rows, evidence in (document, start, end) order."""
    grouped: dict[RelationId, list[neo4j.Record]] = defaultdict(list)
    for r in records:
        grouped[r["rid"]].append(r)
    out: dict[RelationId, Relation] = {}
    for rid, rows in grouped.items():
        spans = sorted(
            (
                Span.model_construct(
                    chunk_id=cid, document_id=r["document_id"], start=start, end=end, text=text
                )
                for r in rows
                for cid, start, end, text in zip(
                    r["chunk_ids"], r["starts"], r["ends"], r["texts"], strict=True
                )
            ),
            key=lambda s: (s.document_id, s.start, s.end, s.chunk_id),
        )
        first = rows[0]
        out[rid] = Relation.model_construct(
            id=rid,
            subject_id=first["subject"],
            predicate=first["predicate"],
            object_id=first["object"],
            kind=first["kind"],
            confidence=max(r["confidence"] for r in rows),
            evidence=tuple(spans),
        )
    return out


def _lucene_prefix(needle: str) -> str:
    """A full-text query matching names with every word of ``needle`` as a word prefix."""
    tokens = _TOKEN.findall(needle)
    return " AND ".join(_LUCENE_SPECIAL.sub(r"\\\1", t) + "*" for t in tokens)


def _translate(
    exc: Neo4jError | DriverError, uri: str, database: str, user: str | None = None
) -> StoreError | ConfigError:
    """A Threadline error that says what failed and what to check."""
    if isinstance(exc, AuthError):
        who = f" user {user!r}" if user else ""
        return StoreUnavailableError(
            f"Neo4j at {uri} rejected the credentials of{who or ' the configured user'}: "
            "check THREADLINE_GRAPH__USER and THREADLINE_GRAPH__PASSWORD"
        )
    if isinstance(exc, ServiceUnavailable | SessionExpired | asyncio.TimeoutError):
        return StoreUnavailableError(
            f"cannot reach Neo4j at {uri}: {exc}; check that the server is running and "
            "THREADLINE_GRAPH__URI points at its Bolt port"
        )
    if isinstance(exc, ClientError) and (exc.code or "").endswith("DatabaseNotFound"):
        return ConfigError(
            f"Neo4j at {uri} has no database {database!r}: create it or set "
            "THREADLINE_GRAPH__DATABASE"
        )
    return StoreError(f"Neo4j at {uri} failed: {exc}")
