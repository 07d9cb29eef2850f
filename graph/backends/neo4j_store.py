"""The production graph store: Neo4j (single server, cluster or Aura) over Bolt.

Writes are batched ``UNWIND $rows`` statements inside one managed write transaction per
call, which the driver retries on transient errors (deadlocks, leader changes). Reads are
routed to readers. Every read filters by the caller's tenant and groups inside the Cypher
(:func:`graph.backends.neo4j_cypher.readable`), never afterwards.

Graph algorithms never pull the whole graph: neighbourhoods expand breadth-first one
bounded Cypher query per level, shortest paths run on the server (``allShortestPaths``
with the access predicate on every hop), and retrieval's personalised PageRank runs over
the bounded entity-chunk subgraph that :meth:`Neo4jGraphStore.mention_edges` returns.
"""

from __future__ import annotations

import asyncio
import itertools
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

from graph.backends import neo4j_cypher as cypher
from graph.backends.neo4j_dialect import Dialect, dialect_for
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
)

__all__ = ["Neo4jGraphStore"]

T = TypeVar("T")
R = TypeVar("R")

#: Rows per ``UNWIND`` statement: large enough to amortise round trips, small enough to
#: keep each statement's memory on the server modest.
BATCH_ROWS = 2000
BOLT_SCHEMES = frozenset({"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"})
#: Runs of a write transaction that met a write conflict before the error is reported.
WRITE_ATTEMPTS = 5
#: Neighbour pairs one breadth-first level of a path search may read.
EXPAND_CAP = 5000
_TOKEN = re.compile(r"\w+")
_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')


def _access(access: Access) -> dict[str, Any]:
    return {"tenant": access.tenant, "groups": access.readable_groups()}


def _slices(rows: Sequence[R]) -> list[Sequence[R]]:
    return [rows[i : i + BATCH_ROWS] for i in range(0, len(rows), BATCH_ROWS)]


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

        async with self._driver.session(database=self._database) as session:
            await session.execute_write(work)
            await session.execute_write(self._dialect.create_fulltext)
            await session.execute_write(title_keys)

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
            except (ConstraintError, _ConflictError) as exc:
                if attempt + 1 == WRITE_ATTEMPTS:
                    if isinstance(exc, _ConflictError):
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
            if old:
                await _delete_tx(tx, old)
            if new:
                await _insert_tx(tx, new)

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
            return await _delete_tx(tx, present)

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

    async def pages(self, names: Sequence[str], access: Access) -> dict[str, list[Chunk]]:
        """First chunks of the readable documents titled with each name."""
        keys = {name: title_key(name) for name in dict.fromkeys(names)}
        if not keys:
            return {}
        records = await self._read(
            cypher.pages(), keys=sorted(set(keys.values())), **_access(access)
        )
        by_key: dict[str, list[tuple[str, Chunk]]] = defaultdict(list)
        for r in records:
            if r["c"] is not None:
                by_key[r["key"]].append((r["title"], _chunk(r["c"])))
        out: dict[str, list[Chunk]] = {}
        for name, key in keys.items():
            exact = normalize_name(name)
            found = sorted(
                by_key.get(key, []),
                key=lambda t: (normalize_name(t[0]) != exact, t[1].document_id),
            )
            if found:
                out[name] = [c for _, c in found]
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
        rows: dict[str, tuple[int, int, Entity]] = {}
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
                rows[r["e"]["id"]] = (r["rank"], r["support"], _entity(r["e"]))
        if len(rows) < limit:
            for r in await self._read(cypher.search_entities(typed=bool(types)), **params):
                rows[r["e"]["id"]] = (r["rank"], r["support"], _entity(r["e"]))
        ranked = sorted(rows.values(), key=lambda t: (t[0], -t[1], t[2].name))
        return [t[2] for t in ranked[:limit]]

    async def match_entities(self, names: Sequence[str], access: Access) -> dict[str, list[Entity]]:
        """Visible entities named (or aliased) exactly like each name, most mentioned first."""
        by_key: dict[str, list[str]] = defaultdict(list)
        for name in dict.fromkeys(names):
            by_key[normalize_name(name)].append(name)
        records = await self._read(cypher.match_names(), keys=list(by_key), **_access(access))
        found: dict[str, list[Entity]] = defaultdict(list)
        for r in records:
            found[r["key"]].append(_entity(r["e"]))
        return {name: found[key] for key, asked in by_key.items() if key in found for name in asked}

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
        self, entity_ids: list[EntityId], access: Access, predicates: Sequence[str], limit: int
    ) -> list[Relation]:
        records = await self._read(
            cypher.touching(by_predicate=bool(predicates)),
            ids=list(dict.fromkeys(entity_ids)),
            predicates=list(predicates),
            limit=limit,
            **_access(access),
        )
        # Rows arrive grouped by fact, strongest fact first.
        return list(_relations(records).values())

    async def neighbors(
        self,
        entity_ids: Sequence[EntityId],
        access: Access,
        *,
        depth: int = 1,
        predicates: Sequence[str] = (),
        limit: int = 50,
    ) -> Neighborhood:
        """Breadth-first readable subgraph, one bounded query per level."""
        seeds = [e.id for e in await self.entities(list(dict.fromkeys(entity_ids)), access)]
        kept: dict[EntityId, None] = dict.fromkeys(seeds[:limit])
        truncated = len(seeds) > limit
        rels: dict[RelationId, Relation] = {}
        frontier = list(kept)
        # Each level reads at most this many facts: enough to fill the limit many times over.
        per_level = max(limit * 20, 200)
        for _ in range(depth):
            if not frontier:
                break
            touching = await self._touching(frontier, access, predicates, per_level)
            if len(touching) >= per_level:
                truncated = True
            nxt: list[EntityId] = []
            for rel in touching:
                rid, subject, obj = rel.id, rel.subject_id, rel.object_id
                for end in (subject, obj):
                    if end not in kept:
                        if len(kept) >= limit:
                            truncated = True
                            continue
                        kept[end] = None
                        nxt.append(end)
                if subject in kept and obj in kept:
                    rels[rid] = rel
            frontier = nxt
        entities = await self.entities(list(kept), access)
        return Neighborhood(
            entities=tuple(entities), relations=tuple(rels.values()), truncated=truncated
        )

    async def paths(
        self,
        source: EntityId,
        target: EntityId,
        access: Access,
        *,
        max_hops: int = 4,
        limit: int = 10,
    ) -> list[GraphPath]:
        """Shortest readable fact chains, by bidirectional breadth-first search.

        Each level is one Cypher query over the frontier (at most :data:`EXPAND_CAP`
        neighbour pairs), so the search never holds more than the levels it visited.
        """
        if source == target or max_hops < 1 or limit < 1:
            return []
        if len(await self.entities([source, target], access)) < 2:
            return []

        async def expand(nodes: set[EntityId]) -> dict[EntityId, set[EntityId]]:
            records = await self._read(
                cypher.expand(), ids=sorted(nodes), cap=EXPAND_CAP, **_access(access)
            )
            adjacency: dict[EntityId, set[EntityId]] = defaultdict(set)
            for r in records:
                adjacency[r["a"]].add(r["b"])
            return adjacency

        node_paths = await shortest_node_paths(source, target, expand, max_hops, limit)
        pairs = sorted({(a, b) for nodes in node_paths for a, b in itertools.pairwise(nodes)})
        records = await self._read(
            cypher.strongest_between(), pairs=[list(p) for p in pairs], **_access(access)
        )
        best = {(r["a"], r["b"]): r["rid"] for r in records}
        facts = {r.id: r for r in await self.facts(list(best.values()), access)}
        return [
            GraphPath(
                entity_ids=nodes,
                relations=tuple(facts[best[a, b]] for a, b in itertools.pairwise(nodes)),
            )
            for nodes in node_paths
        ]

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

    async def stats(self, access: Access) -> StoreStats:
        """Counts of what ``access`` can see."""
        params = _access(access)
        counts = {}
        for name, query in cypher.stats():
            counts[name] = (await self._read(query, **params))[0]["n"]
        return StoreStats(**counts)


# ---------------------------------------------------------------------- algorithms


async def shortest_node_paths(
    source: EntityId,
    target: EntityId,
    expand: Callable[[set[EntityId]], Awaitable[dict[EntityId, set[EntityId]]]],
    max_hops: int,
    limit: int,
) -> list[tuple[EntityId, ...]]:
    """All shortest paths (up to ``limit``, in node-id order) found by expanding the smaller
    frontier of a bidirectional breadth-first search one level at a time."""
    preds: tuple[dict[EntityId, set[EntityId]], dict[EntityId, set[EntityId]]] = (
        {source: set()},
        {target: set()},
    )
    dist: tuple[dict[EntityId, int], dict[EntityId, int]] = ({source: 0}, {target: 0})
    fronts: list[set[EntityId]] = [{source}, {target}]
    levels = [0, 0]
    while fronts[0] and fronts[1] and levels[0] + levels[1] < max_hops:
        side = 0 if len(fronts[0]) <= len(fronts[1]) else 1
        adjacency = await expand(fronts[side])
        new: dict[EntityId, set[EntityId]] = defaultdict(set)
        for u in fronts[side]:
            for v in adjacency.get(u, ()):
                if v not in preds[side]:
                    new[v].add(u)
        levels[side] += 1
        for v, parents in new.items():
            preds[side][v] = parents
            dist[side][v] = levels[side]
        fronts[side] = set(new)
        meet = [v for v in new if v in dist[1 - side]]
        if meet:
            total = min(dist[0][v] + dist[1][v] for v in meet)
            middles = sorted(v for v in meet if dist[0][v] + dist[1][v] == total)
            found: set[tuple[EntityId, ...]] = set()
            for v in middles:
                for head in _walk(v, preds[0]):
                    for tail in _walk(v, preds[1]):
                        found.add((*reversed(head), *tail[1:]))
            return sorted(found)[:limit]
    return []


def _walk(
    node: EntityId, preds: dict[EntityId, set[EntityId]], cap: int = 100
) -> list[tuple[EntityId, ...]]:
    """Chains from ``node`` back to the root of a predecessor map (node first), at most
    ``cap`` of them (dense graphs have combinatorially many)."""
    parents = preds[node]
    if not parents:
        return [(node,)]
    chains = [(node, *rest) for p in sorted(parents) for rest in _walk(p, preds, cap)]
    return chains[:cap]


# ---------------------------------------------------------------------- transactions


class _ConflictError(Exception):
    """A write found fewer nodes than it wrote: bad input, or another writer's conflict."""


async def _count(tx: AsyncManagedTransaction, query: str, rows: Sequence[Any]) -> int:
    total = 0
    for part in _slices(rows):
        record = await (await tx.run(query, rows=list(part))).single()
        total += int(record["n"]) if record is not None else 0
    return total


async def _insert_tx(tx: AsyncManagedTransaction, graphs: list[DocumentGraph]) -> None:
    await _count(tx, cypher.create_documents(), _document_rows(graphs))
    await _count(tx, cypher.merge_entities(), _entity_rows(graphs))
    await _count(tx, cypher.create_chunks(), _chunk_rows(graphs))
    await _count(tx, cypher.link_chunks(), _chunk_links(graphs))
    mentions = _mention_rows(graphs)
    written = await _count(tx, cypher.create_mentions(), mentions)
    if written != len(mentions):
        raise _ConflictError(
            f"{len(mentions) - written} mentions refer to chunks or entities that are not "
            "part of their document graph; nothing was written"
        )
    for rel_type, rows in sorted(_fact_rows(graphs).items()):
        written = await _count(tx, cypher.create_facts(rel_type), rows)
        if written != len(rows):
            raise _ConflictError(
                f"{len(rows) - written} facts refer to entities that are not stored; "
                "nothing was written"
            )


def _document_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    rows = []
    for g in graphs:
        d = g.document
        touched = {e.id for e in g.entities} | {
            e for r in g.relations for e in (r.subject_id, r.object_id)
        }
        rows.append(
            {
                "id": d.id,
                "source": d.source,
                "title": d.title,
                "title_key": title_key(d.title),
                "version": d.version,
                "tenant": d.tenant,
                "groups": list(d.groups),
                "content_hash": d.content_hash,
                "ingested_at": d.ingested_at.isoformat(),
                "text": d.text,
                "sections": json.dumps([x.model_dump() for x in d.sections]),
                # Where deletes start looking for the document's facts.
                "entity_ids": sorted(touched),
            }
        )
    return rows


def _entity_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    merged: dict[EntityId, Entity] = {}
    for g in graphs:
        for ent in g.entities:
            base = merged.get(ent.id)
            if base is not None:
                aliases = tuple(dict.fromkeys([*base.aliases, *ent.aliases]))
                ent = base.model_copy(update={"aliases": aliases})  # noqa: PLW2901
            merged[ent.id] = ent
    return [
        {
            "id": e.id,
            "name": e.name,
            "type": e.type,
            "aliases": list(e.aliases),
            "keys": list(dict.fromkeys(normalize_name(n) for n in (e.name, *e.aliases))),
        }
        for e in merged.values()
    ]


def _chunk_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "document_id": c.document_id,
            "index": c.index,
            "start": c.start,
            "end": c.end,
            "text": c.text,
        }
        for g in graphs
        for c in g.chunks
    ]


def _chunk_links(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    links = []
    for g in graphs:
        ordered = sorted(g.chunks, key=lambda c: c.index)
        links += [{"a": a.id, "b": b.id} for a, b in itertools.pairwise(ordered)]
    return links


def _mention_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str, int, int]] = set()
    rows = []
    for g in graphs:
        for m in g.mentions:
            key = (m.entity_id, m.span.chunk_id, m.span.start, m.span.end)
            if key not in seen:
                seen.add(key)
                rows.append(
                    {
                        "entity_id": m.entity_id,
                        "chunk_id": m.span.chunk_id,
                        "start": m.span.start,
                        "end": m.span.end,
                    }
                )
    return rows


def _fact_rows(graphs: list[DocumentGraph]) -> dict[str, list[dict[str, Any]]]:
    """Fact relationship rows by relationship type: one per fact and stating document."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in graphs:
        for rel in g.relations:
            spans = list(dict.fromkeys((s.chunk_id, s.start, s.end, s.text) for s in rel.evidence))
            by_type[cypher.KIND_TYPES[rel.kind]].append(
                {
                    "subject_id": rel.subject_id,
                    "object_id": rel.object_id,
                    "props": {
                        "id": rel.id,
                        "predicate": rel.predicate,
                        "kind": rel.kind,
                        "confidence": rel.confidence,
                        "document_id": g.document.id,
                        "tenant": g.document.tenant,
                        "groups": list(g.document.groups),
                        "chunk_ids": [s[0] for s in spans],
                        "starts": [s[1] for s in spans],
                        "ends": [s[2] for s in spans],
                        "texts": [s[3] for s in spans],
                    },
                }
            )
    return by_type


async def _delete_tx(tx: AsyncManagedTransaction, ids: list[DocumentId]) -> DeleteReport:
    """Delete in bounded batches: a document may carry tens of thousands of mentions."""
    pairs = await (await tx.run(cypher.document_facts(), ids=ids)).data()
    touched = {p["rid"] for p in pairs}
    await _count(tx, cypher.delete_facts(), pairs)
    surviving = {
        r["rid"]
        for part in _slices(pairs)
        for r in await (await tx.run(cypher.surviving_facts(), rows=list(part))).data()
    }
    await _count(tx, cypher.delete_fact_keys(), sorted(touched - surviving))
    counted = await (await tx.run(cypher.count_document_chunks(), ids=ids)).single()
    chunks = int(counted["chunks"]) if counted else 0
    mentions = int(counted["mentions"]) if counted else 0
    candidates: list[str] = list(counted["entities"]) if counted else []
    while True:
        batch = await (await tx.run(cypher.delete_mentions(), ids=ids, batch=BATCH_ROWS)).single()
        if batch is None or batch["n"] == 0:
            break
    await (await tx.run(cypher.delete_documents(), ids=ids)).consume()
    orphans = 0
    keys: set[str] = set()
    for part in _slices(candidates):
        rows = await (await tx.run(cypher.delete_orphan_entities(), rows=list(part))).data()
        orphans += len(rows)
        keys.update(k for r in rows for k in r["keys"])
    await _count(tx, cypher.delete_orphan_names(), sorted(keys))
    return DeleteReport(
        documents=len(ids),
        chunks=chunks,
        mentions=mentions,
        relations=len(touched - surviving),
        entities=orphans,
    )


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
    )


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk.model_construct(
        id=row["id"],
        document_id=row["document_id"],
        index=row["index"],
        start=row["start"],
        end=row["end"],
        text=row["text"],
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
