"""Communities in the Neo4j store: ``(:Community {id, scope, tenant, groups, level, body})``
nodes (``body``: the community as JSON) and one ``(:CommunityScope {key, built})`` per scope.

Communities carry their scope's tenant and groups like documents do, so reads filter them
with the same Cypher predicate (:func:`graph.backends.neo4j_cypher.readable`). Deleting
or replacing documents drops their scopes' communities in the delete's own transaction
(:func:`drop_tx`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import neo4j
from neo4j import AsyncManagedTransaction

from graph.backends.neo4j_cypher import FACT_TYPES, readable
from graph.communities import (
    Community,
    CommunityId,
    CommunityScope,
    EntityGraph,
    edge_list,
    nodes_from,
    ordered,
    scope_fingerprint,
)
from graph.ids import ChunkId, DocumentId, EntityId
from graph.models import Access

__all__ = ["communities", "drop_tx", "entity_graph", "put_tx", "scopes"]

Read = Callable[..., Awaitable[list[neo4j.Record]]]


def _access(access: Access) -> dict[str, Any]:
    return {"tenant": access.tenant, "groups": access.readable_groups()}


def _key(tenant: str, groups: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    return tenant, tuple(sorted(set(groups)))


async def scopes(read: Read, access: Access) -> list[CommunityScope]:
    """Readable scopes with the fingerprints of their documents and of their communities."""
    docs = await read(
        f"MATCH (d:Document) WHERE {readable('d')} "
        "RETURN d.tenant AS tenant, d.groups AS groups, d.id AS id",
        **_access(access),
    )
    members: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for r in docs:
        members.setdefault(_key(r["tenant"], r["groups"]), []).append(r["id"])
    found = [CommunityScope.of(t, g, scope_fingerprint(ids)) for (t, g), ids in members.items()]
    built = {
        r["key"]: r["built"]
        for r in await read(
            "UNWIND $keys AS k MATCH (s:CommunityScope {key: k}) RETURN s.key AS key, "
            "s.built AS built",
            keys=[s.key for s in found],
        )
    }
    return sorted(
        (s.model_copy(update={"built": built.get(s.key)}) for s in found),
        key=lambda s: (s.tenant, s.groups),
    )


async def entity_graph(read: Read, scope: CommunityScope) -> EntityGraph:
    """The scope's entities (mention counts per document) and facts."""
    docs = [
        r["id"]
        for r in await read(
            "MATCH (d:Document {tenant: $tenant}) RETURN d.id AS id, d.groups AS groups",
            tenant=scope.tenant,
        )
        if _key(scope.tenant, r["groups"]) == (scope.tenant, scope.groups)
    ]
    if not docs:
        return EntityGraph(nodes=(), edges=())
    mentions = await read(
        "UNWIND $docs AS did MATCH (c:Chunk {document_id: did})-[m:MENTIONS]->(e:Entity) "
        "RETURN e.id AS id, e.name AS name, did AS document_id, c.id AS chunk, count(m) AS n",
        docs=docs,
    )
    facts = await read(
        f"MATCH (s:Entity)-[f:{FACT_TYPES}]->(o:Entity) "
        "WHERE f.tenant = $tenant AND f.document_id IN $docs "
        "RETURN s.id AS s, o.id AS o, f.confidence AS confidence, size(f.starts) AS n",
        tenant=scope.tenant,
        docs=docs,
    )
    names = {EntityId(r["id"]): str(r["name"]) for r in mentions}
    rows = [
        (EntityId(r["id"]), DocumentId(r["document_id"]), ChunkId(r["chunk"]), int(r["n"]))
        for r in mentions
    ]
    edges = edge_list(
        (EntityId(r["s"]), EntityId(r["o"]), float(r["confidence"]), int(r["n"])) for r in facts
    )
    return EntityGraph(nodes=nodes_from(names, rows), edges=edges)


async def put_tx(
    tx: AsyncManagedTransaction, scope: CommunityScope, found: Sequence[Community]
) -> None:
    """Replace the scope's communities and record what they were built from."""
    await (
        await tx.run("MATCH (c:Community {scope: $key}) DETACH DELETE c", key=scope.key)
    ).consume()
    rows = [
        {
            "id": c.id,
            "scope": scope.key,
            "tenant": c.tenant,
            "groups": list(c.groups),
            "level": c.level,
            "body": c.model_dump_json(),
        }
        for c in found
    ]
    if rows:
        await (
            await tx.run("UNWIND $rows AS r CREATE (c:Community) SET c = r", rows=rows)
        ).consume()
    await (
        await tx.run(
            "MERGE (s:CommunityScope {key: $key}) SET s.built = $built",
            key=scope.key,
            built=scope.fingerprint,
        )
    ).consume()


async def drop_tx(tx: AsyncManagedTransaction, ids: Sequence[DocumentId]) -> None:
    """Drop the communities of the scopes these (still stored) documents belong to."""
    rows = await (
        await tx.run(
            "MATCH (d:Document) WHERE d.id IN $ids RETURN d.tenant AS tenant, d.groups AS groups",
            ids=list(ids),
        )
    ).data()
    keys = sorted({CommunityScope.of(r["tenant"], r["groups"], "").key for r in rows})
    if not keys:
        return
    await (
        await tx.run("MATCH (c:Community) WHERE c.scope IN $keys DETACH DELETE c", keys=keys)
    ).consume()
    await (
        await tx.run("MATCH (s:CommunityScope) WHERE s.key IN $keys DETACH DELETE s", keys=keys)
    ).consume()


async def communities(
    read: Read, access: Access, level: int | None, ids: Sequence[CommunityId] | None
) -> list[Community]:
    """Readable stored communities, filtered in the query."""
    where = [readable("c")]
    if level is not None:
        where.append("c.level = $level")
    if ids is not None:
        where.append("c.id IN $ids")
    records = await read(
        f"MATCH (c:Community) WHERE {' AND '.join(where)} RETURN c.body AS body",
        level=level,
        ids=list(ids or ()),
        **_access(access),
    )
    return ordered(Community.model_validate_json(r["body"]) for r in records)
