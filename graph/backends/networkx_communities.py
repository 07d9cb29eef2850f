"""Communities in the embedded store: computed per scope from the in-memory index, kept
in SQLite (``community_scopes``, ``communities``) and in memory for reads.

Deleting or replacing documents drops their scopes' communities in the same SQLite
transaction (:func:`drop_rows`), so no community outlives the text it cites.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

from graph.backends.networkx_index import DocRow, NetworkxIndex
from graph.communities import (
    Community,
    CommunityScope,
    EntityGraph,
    edge_list,
    nodes_from,
    scope_fingerprint,
)
from graph.ids import DocumentId
from graph.models import Access

__all__ = [
    "SCHEMA",
    "drop_rows",
    "entity_graph",
    "load_rows",
    "put_rows",
    "readable",
    "scope_keys",
    "scopes",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS community_scopes (key TEXT PRIMARY KEY, built TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS communities (
    id TEXT NOT NULL, scope TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (scope, id));
"""

#: What the store keeps in memory: scope key -> (built fingerprint, communities).
Stored = dict[str, tuple[str, tuple[Community, ...]]]


def _scope_of(doc: DocRow) -> tuple[str, tuple[str, ...]]:
    return doc.tenant, tuple(sorted(set(doc.groups)))


def scope_keys(docs: Iterable[DocRow]) -> list[str]:
    """Keys of the scopes these documents belong to."""
    found = {_scope_of(d) for d in docs}
    return sorted(CommunityScope.of(t, g, "").key for t, g in found)


def scopes(index: NetworkxIndex, access: Access, stored: Stored) -> list[CommunityScope]:
    """Readable scopes with their fingerprints (call holding the index lock shared)."""
    members: dict[tuple[str, tuple[str, ...]], list[DocumentId]] = defaultdict(list)
    for doc in index.docs.values():
        if access.can_read(doc.tenant, doc.groups):
            members[_scope_of(doc)].append(doc.id)
    out = []
    for (tenant, groups), ids in sorted(members.items()):
        scope = CommunityScope.of(tenant, groups, scope_fingerprint(ids))
        built = stored.get(scope.key)
        out.append(scope.model_copy(update={"built": built[0] if built else None}))
    return out


def entity_graph(index: NetworkxIndex, scope: CommunityScope) -> EntityGraph:
    """The scope's entities and facts (call holding the index lock shared)."""
    docs = [d.id for d in index.docs.values() if _scope_of(d) == (scope.tenant, scope.groups)]
    inside = set(docs)
    rows = [
        (eid, row[1], row[0], 1)
        for eid in {e for did in docs for e in index.doc_entities.get(did, ())}
        for row in index.mentions.get(eid, ())
        if row[1] in inside
    ]
    names = {e: index.entities[e][0] for e, *_ in rows if e in index.entities}
    facts = []
    for did in docs:
        for rid in index.doc_relations.get(did, ()):
            evidence = index.doc_support(rid, did)
            if evidence:
                subject, _, obj, _ = index.facts[rid]
                facts.append((subject, obj, max(r[3] for r in evidence), len(evidence)))
    return EntityGraph(nodes=nodes_from(names, rows), edges=edge_list(facts))


def readable(
    stored: Stored, access: Access, level: int | None, ids: Sequence[str] | None
) -> list[Community]:
    """Stored communities ``access`` may read."""
    wanted = set(ids) if ids is not None else None
    return [
        c
        for _, found in stored.values()
        for c in found
        if access.can_read(c.tenant, c.groups)
        and (level is None or c.level == level)
        and (wanted is None or c.id in wanted)
    ]


# ---------------------------------------------------------------------- SQLite


def load_rows(db: sqlite3.Connection) -> Stored:
    """Every stored scope's communities."""
    built = dict(db.execute("SELECT key, built FROM community_scopes").fetchall())
    found: dict[str, list[Community]] = defaultdict(list)
    for scope, body in db.execute("SELECT scope, body FROM communities ORDER BY scope, id"):
        found[scope].append(Community.model_validate_json(body))
    return {key: (value, tuple(found.get(key, ()))) for key, value in built.items()}


def put_rows(
    db: sqlite3.Connection, scope: CommunityScope, communities: Sequence[Community]
) -> None:
    """Replace a scope's communities (in the caller's transaction)."""
    db.execute("DELETE FROM communities WHERE scope=?", (scope.key,))
    db.executemany(
        "INSERT INTO communities VALUES (?,?,?)",
        [(c.id, scope.key, c.model_dump_json()) for c in communities],
    )
    db.execute(
        "INSERT INTO community_scopes VALUES (?,?) "
        "ON CONFLICT(key) DO UPDATE SET built=excluded.built",
        (scope.key, scope.fingerprint),
    )


def drop_rows(db: sqlite3.Connection, keys: Sequence[str]) -> None:
    """Drop scopes' communities (in the caller's transaction)."""
    for table, column in (("communities", "scope"), ("community_scopes", "key")):
        db.executemany(
            f"DELETE FROM {table} WHERE {column}=?",  # noqa: S608 - fixed table and column names
            [(k,) for k in keys],
        )
