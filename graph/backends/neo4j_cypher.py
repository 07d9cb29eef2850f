"""Cypher for the Neo4j graph store: every statement built by one small function.

The shape of the graph::

    (:Chunk)-[:FROM_DOCUMENT]->(:Document)       tags: JSON list, pii_types: list or null
    (:Chunk)-[:NEXT_CHUNK]->(:Chunk)
    (:Chunk)-[:MENTIONS {start, end, document_id}]->(:Entity)
    (:Name {key})-[:NAMES]->(:Entity)                 one per normalised name or alias
    (:Entity)-[:SVO|COPULA|... {id, predicate, ...}]->(:Entity)

A fact is stored as one typed relationship per document that states it, carrying that
document's evidence spans and its tenant and groups, so every read filters facts by access
on the relationship itself and deleting a document removes exactly its support.

Values always travel as parameters. The only text spliced into a statement is a
relationship type from :data:`FACT_TYPES` or a validated integer.
"""

from __future__ import annotations

from graph.models import RelationKind

__all__ = ["FACT_TYPES", "KIND_TYPES"]

#: Relationship type of each kind of fact.
KIND_TYPES: dict[RelationKind, str] = {
    "svo": "SVO",
    "copula": "COPULA",
    "appositive": "APPOSITIVE",
    "possessive": "POSSESSIVE",
    "preposition": "PREPOSITION",
    "cooccurrence": "CO_OCCURS",
    "model": "MODEL_STATED",
}

#: Pattern alternation that matches every fact relationship.
FACT_TYPES = "|".join(KIND_TYPES.values())


def readable(var: str) -> str:
    """Access predicate on a node or relationship carrying ``tenant`` and ``groups``.

    ``$tenant`` is null for unrestricted access; ``$groups`` holds the caller's groups plus
    the public marker.
    """
    groups = f"any(g IN {var}.groups WHERE g IN $groups)"
    return f"($tenant IS NULL OR ({var}.tenant = $tenant AND {groups}))"


def visible(var: str) -> str:
    """An entity exists for the caller when a readable chunk mentions it."""
    return f"EXISTS {{ MATCH ({var})<-[:MENTIONS]-(vc:Chunk) WHERE {readable('vc')} }}"


# ---------------------------------------------------------------------------- schema


def entity_ids_marker() -> str:
    """The database's entity-id layout, and whether it holds any entity at all."""
    return (
        "OPTIONAL MATCH (m:ThreadlineMeta {key: 'entity_ids'}) "
        "RETURN m.value AS layout, EXISTS { MATCH (:Entity) } AS populated"
    )


def mark_entity_ids() -> str:
    return "MERGE (m:ThreadlineMeta {key: 'entity_ids'}) SET m.value = $layout"


def schema() -> list[str]:
    """Constraints and range indexes, all idempotent."""
    unique = [
        ("Document", "id"),
        ("Chunk", "id"),
        ("Entity", "id"),
        ("Name", "key"),
        ("Topic", "key"),
        ("Fact", "id"),
        ("Community", "id"),
        ("CommunityScope", "key"),
    ]
    indexes = [
        ("Document", "source"),
        ("Document", "title_key"),
        ("Chunk", "document_id"),
        ("Community", "scope"),
    ]
    statements = [
        f"CREATE CONSTRAINT {label.lower()}_{prop} IF NOT EXISTS "
        f"FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
        for label, prop in unique
    ]
    statements += [
        f"CREATE INDEX {label.lower()}_{prop} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
        for label, prop in indexes
    ]
    return statements


# ---------------------------------------------------------------------------- writes


def existing_documents() -> str:
    return "MATCH (d:Document) WHERE d.id IN $ids RETURN d.id AS id"


def untitled_documents() -> str:
    return "MATCH (d:Document) WHERE d.title_key IS NULL RETURN d.id AS id, d.title AS title"


def set_title_keys() -> str:
    return "UNWIND $rows AS r MATCH (d:Document {id: r.id}) SET d.title_key = r.key"


def create_documents() -> str:
    return "UNWIND $rows AS r CREATE (d:Document) SET d = r RETURN count(d) AS n"


def link_topics() -> str:
    """Each document to the page keys of what it is about (see ``Document.about``)."""
    return (
        "UNWIND $rows AS r MATCH (d:Document {id: r.id}) UNWIND r.keys AS key "
        "MERGE (t:Topic {key: key}) MERGE (d)-[:ABOUT]->(t) RETURN count(*) AS n"
    )


def document_topics() -> str:
    return (
        "UNWIND $ids AS did MATCH (:Document {id: did})-[:ABOUT]->(t:Topic) "
        "RETURN DISTINCT t.key AS key"
    )


def delete_orphan_topics() -> str:
    return (
        "UNWIND $rows AS key MATCH (t:Topic {key: key}) "
        "WHERE NOT EXISTS { MATCH (t)<-[:ABOUT]-() } DELETE t RETURN count(*) AS n"
    )


def merge_entities() -> str:
    return (
        "UNWIND $rows AS r "
        "MERGE (e:Entity {id: r.id}) "
        "ON CREATE SET e.name = r.name, e.type = r.type, e.aliases = r.aliases, e.keys = r.keys "
        "ON MATCH SET e.aliases = e.aliases + [a IN r.aliases WHERE NOT a IN e.aliases], "
        "e.keys = e.keys + [k IN r.keys WHERE NOT k IN e.keys] "
        "SET e.names = reduce(s = '', k IN e.keys | s + ' | ' + k) "
        "WITH e, r UNWIND r.keys AS key "
        "MERGE (n:Name {key: key}) MERGE (n)-[:NAMES]->(e) "
        "RETURN count(DISTINCT e) AS n"
    )


def create_chunks() -> str:
    return (
        "UNWIND $rows AS r MATCH (d:Document {id: r.document_id}) "
        "CREATE (c:Chunk {id: r.id, document_id: r.document_id, index: r.index, "
        "start: r.start, end: r.end, text: r.text, tags: r.tags, pii_types: r.pii_types, "
        "tenant: d.tenant, groups: d.groups})"
        "-[:FROM_DOCUMENT]->(d) RETURN count(c) AS n"
    )


def link_chunks() -> str:
    return (
        "UNWIND $rows AS r MATCH (a:Chunk {id: r.a}) MATCH (b:Chunk {id: r.b}) "
        "CREATE (a)-[:NEXT_CHUNK]->(b) RETURN count(*) AS n"
    )


def create_mentions() -> str:
    return (
        "UNWIND $rows AS r MATCH (c:Chunk {id: r.chunk_id}) MATCH (e:Entity {id: r.entity_id}) "
        "CREATE (c)-[m:MENTIONS {start: r.start, end: r.end, document_id: c.document_id}]->(e) "
        "RETURN count(m) AS n"
    )


def create_facts(rel_type: str) -> str:
    return (
        "UNWIND $rows AS r MATCH (s:Entity {id: r.subject_id}) MATCH (o:Entity {id: r.object_id}) "
        f"CREATE (s)-[f:{rel_type}]->(o) SET f = r.props "
        "MERGE (x:Fact {id: r.props.id}) MERGE (x)-[:SUBJECT]->(s) RETURN count(f) AS n"
    )


# ---------------------------------------------------------------------------- deletes


def document_facts() -> str:
    """Each document's fact relationships, reached from the entities it touches."""
    return (
        "UNWIND $ids AS did MATCH (d:Document {id: did}) "
        "UNWIND d.entity_ids AS eid MATCH (s:Entity {id: eid})-[f:" + FACT_TYPES + "]->() "
        "WHERE f.document_id = did "
        "RETURN DISTINCT f.id AS rid, eid AS subject, did"
    )


def delete_facts() -> str:
    return (
        "UNWIND $rows AS r MATCH (:Entity {id: r.subject})-[f:" + FACT_TYPES + "]->() "
        "WHERE f.id = r.rid AND f.document_id = r.did DELETE f RETURN count(*) AS n"
    )


def delete_fact_keys() -> str:
    return "UNWIND $rows AS rid MATCH (x:Fact {id: rid}) DETACH DELETE x RETURN count(*) AS n"


def delete_mentions() -> str:
    """One bounded batch of the documents' mentions; run until it deletes nothing."""
    return (
        "UNWIND $ids AS did MATCH (c:Chunk)-[:FROM_DOCUMENT]->(:Document {id: did}) "
        "MATCH (c)-[m:MENTIONS]->() WITH m LIMIT $batch DELETE m RETURN count(*) AS n"
    )


def surviving_facts() -> str:
    return (
        "UNWIND $rows AS r MATCH (:Entity {id: r.subject})-[f:" + FACT_TYPES + "]->() "
        "WHERE f.id = r.rid RETURN DISTINCT f.id AS rid"
    )


def count_document_chunks() -> str:
    return (
        "MATCH (d:Document)<-[:FROM_DOCUMENT]-(c:Chunk) WHERE d.id IN $ids "
        "OPTIONAL MATCH (c)-[m:MENTIONS]->(e:Entity) "
        "RETURN count(DISTINCT c) AS chunks, count(m) AS mentions, "
        "collect(DISTINCT e.id) AS entities"
    )


def delete_documents() -> str:
    return (
        "MATCH (d:Document) WHERE d.id IN $ids "
        "OPTIONAL MATCH (c:Chunk)-[:FROM_DOCUMENT]->(d) DETACH DELETE c, d"
    )


def delete_orphan_entities() -> str:
    return (
        "UNWIND $rows AS eid MATCH (e:Entity {id: eid}) "
        "WHERE NOT EXISTS { MATCH (:Chunk)-[:MENTIONS]->(e) } "
        "WITH e, e.keys AS keys DETACH DELETE e RETURN keys"
    )


def entity_surfaces() -> str:
    """Each entity's remaining mention texts with their counts."""
    return (
        "UNWIND $rows AS eid MATCH (e:Entity {id: eid})<-[m:MENTIONS]-(c:Chunk) "
        "WITH e, substring(c.text, m.start - c.start, m.end - m.start) AS text, count(*) AS n "
        "RETURN e.id AS id, e.name AS name, e.type AS type, e.aliases AS aliases, "
        "collect({text: text, n: n}) AS surfaces"
    )


def restate_entities() -> str:
    """Set entities' names and aliases (their name keys are relinked separately)."""
    return (
        "UNWIND $rows AS r MATCH (e:Entity {id: r.id}) "
        "SET e.name = r.name, e.aliases = r.aliases, e.keys = r.keys, "
        "e.names = reduce(s = '', k IN r.keys | s + ' | ' + k) RETURN count(e) AS n"
    )


def unlink_names() -> str:
    """Drop name links an entity no longer has; returns the keys unlinked."""
    return (
        "UNWIND $rows AS r MATCH (n:Name)-[l:NAMES]->(:Entity {id: r.id}) "
        "WHERE NOT n.key IN r.keys DELETE l RETURN n.key AS key"
    )


def link_names() -> str:
    return (
        "UNWIND $rows AS r MATCH (e:Entity {id: r.id}) UNWIND r.keys AS key "
        "MERGE (n:Name {key: key}) MERGE (n)-[:NAMES]->(e) RETURN count(*) AS n"
    )


def delete_orphan_names() -> str:
    return (
        "UNWIND $rows AS key MATCH (n:Name {key: key}) "
        "WHERE NOT EXISTS { MATCH (n)-[:NAMES]->() } DELETE n RETURN count(*) AS n"
    )


# ---------------------------------------------------------------------------- reads


def documents(*, by_ids: bool, by_source: bool) -> str:
    match = "UNWIND $ids AS did MATCH (d:Document {id: did})" if by_ids else "MATCH (d:Document)"
    where = [readable("d")]
    if by_source:
        where.append("d.source = $source")
    return (
        f"{match} WHERE {' AND '.join(where)} "
        "RETURN d {.id, .source, .title, .version, .tenant, .groups, .content_hash, "
        ".ingested_at, .text, .sections, .about} AS d "
        "ORDER BY d.source, d.version, d.id SKIP $offset LIMIT $limit"
    )


_CHUNK = "c {.id, .document_id, .index, .start, .end, .text, .tags} AS c"


def pages(*, about: bool) -> str:
    """First chunks of the readable documents titled with each key (``about``: of the
    documents about it)."""
    match = (
        "MATCH (:Topic {key: key})<-[:ABOUT]-(d:Document)"
        if about
        else "MATCH (d:Document {title_key: key})"
    )
    return (
        "UNWIND $keys AS key " + match + " WHERE " + readable("d") + " "
        "MATCH (c:Chunk {document_id: d.id}) WITH key, d, c ORDER BY c.index "
        "WITH key, d, collect(c)[0] AS c "
        "RETURN key, d.title AS title, d.about AS about, " + _CHUNK
    )


def chunks() -> str:
    return (
        "UNWIND $ids AS cid MATCH (c:Chunk {id: cid}) WHERE " + readable("c") + " RETURN " + _CHUNK
    )


def chunks_overlapping() -> str:
    """Readable chunks overlapping each ``{document_id, start, end}`` row."""
    return (
        "UNWIND $rows AS r MATCH (c:Chunk {document_id: r.document_id}) "
        "WHERE c.start < r.end AND r.start < c.end AND " + readable("c") + " "
        "RETURN " + _CHUNK
    )


def pii_chunks() -> str:
    """Readable chunks holding personal-data tags of any of ``$types``."""
    return (
        "MATCH (c:Chunk) WHERE c.pii_types IS NOT NULL "
        "AND any(t IN c.pii_types WHERE t IN $types) AND " + readable("c") + " "
        "RETURN c.start AS start, c.text AS text, c.tags AS tags"
    )


_ENTITY = "e {.id, .name, .type, .aliases} AS e"


def entities() -> str:
    return (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) WHERE " + visible("e") + " RETURN " + _ENTITY
    )


def match_names() -> str:
    return (
        "UNWIND $keys AS key MATCH (:Name {key: key})-[:NAMES]->(e:Entity) "
        "CALL { WITH e MATCH (e)<-[m:MENTIONS]-(c:Chunk) WHERE " + readable("c") + " "
        "RETURN count(m) AS support } "
        "WITH key, e, support WHERE support > 0 "
        "RETURN key, " + _ENTITY + ", support ORDER BY key, support DESC, e.id"
    )


def _name_filter(*, typed: bool) -> str:
    where = "any(k IN e.keys WHERE k CONTAINS $needle)"
    return where + " AND e.type IN $types" if typed else where


def _ranked_entities() -> str:
    """Visible entities ranked exact name, then prefix, then substring; most mentioned first,
    ties by id (:func:`graph.algorithms.rank_entities`, which the caller applies again)."""
    return (
        "CALL { WITH e MATCH (e)<-[m:MENTIONS]-(c:Chunk) WHERE " + readable("c") + " "
        "RETURN count(m) AS support } "
        "WITH e, support WHERE support > 0 "
        "WITH e, support, CASE WHEN $needle IN e.keys THEN 0 "
        "WHEN any(k IN e.keys WHERE k STARTS WITH $needle) THEN 1 ELSE 2 END AS rank "
        "RETURN " + _ENTITY + ", rank, support ORDER BY rank, support DESC, e.id LIMIT $limit"
    )


def search_entities(*, typed: bool) -> str:
    # Readability first: a name or alias of an unreadable entity is never compared.
    return (
        f"MATCH (e:Entity) WHERE {visible('e')} AND {_name_filter(typed=typed)} "
        + _ranked_entities()
    )


def search_fulltext(index: str, *, typed: bool) -> str:
    """Candidates from the full-text index, ranked like :func:`search_entities`."""
    return (
        "CALL db.index.fulltext.queryNodes('" + index + "', $query) YIELD node, score "
        # Unreadable entities go before the scan limit, so they never crowd out or rank.
        f"WITH node AS e, score WHERE {visible('e')} "
        "WITH e, score ORDER BY score DESC LIMIT $scan "
        f"WITH e WHERE {_name_filter(typed=typed)} " + _ranked_entities()
    )


_MENTION = (
    "e.id AS entity_id, c.id AS chunk_id, c.document_id AS document_id, m.start AS start, "
    "m.end AS end, substring(c.text, m.start - c.start, m.end - m.start) AS text"
)


def mentions() -> str:
    return (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) MATCH (e)<-[m:MENTIONS]-(c:Chunk) "
        "WHERE " + readable("c") + " RETURN " + _MENTION + " "
        "ORDER BY document_id, start, entity_id LIMIT $limit"
    )


def mention_edges() -> str:
    return (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) MATCH (e)<-[m:MENTIONS]-(c:Chunk) "
        "WHERE " + readable("c") + " "
        "WITH eid, c.id AS cid, count(m) AS n ORDER BY n DESC, cid "
        "WITH eid, collect([cid, n])[..$per_entity] AS top "
        "UNWIND top AS t RETURN eid, t[0] AS cid, t[1] AS n"
    )


def chunk_mentions() -> str:
    return (
        "UNWIND $ids AS cid MATCH (c:Chunk {id: cid})-[m:MENTIONS]->(e:Entity) "
        "WHERE " + readable("c") + " RETURN " + _MENTION
    )


_FACT_ROWS = (
    "RETURN f.id AS rid, s.id AS subject, f.predicate AS predicate, o.id AS object, "
    "f.kind AS kind, f.document_id AS document_id, f.chunk_ids AS chunk_ids, "
    "f.starts AS starts, f.ends AS ends, f.texts AS texts, f.confidence AS confidence"
)


def facts_by_id() -> str:
    """Facts by id: the ``Fact`` key node leads to the subject, then to the relationships."""
    return (
        "UNWIND $ids AS rid MATCH (:Fact {id: rid})-[:SUBJECT]->(s:Entity) "
        "MATCH (s)-[f:"
        + FACT_TYPES
        + "]->(o:Entity) WHERE f.id = rid AND "
        + readable("f")
        + " "
        + _FACT_ROWS
    )


def touching(*, by_predicate: bool) -> str:
    """Readable facts touching the entities, strongest first, with their evidence rows.

    Ordered by :func:`graph.algorithms.fact_rank` (best confidence times the number of
    evidence spans, then spans, then id, all descending) so that ``LIMIT`` cuts the same
    list the shared ranking would.
    """
    where = readable("f")
    if by_predicate:
        where += " AND f.predicate IN $predicates"
    return (
        "UNWIND $ids AS eid MATCH (e:Entity {id: eid}) MATCH (e)-[f:" + FACT_TYPES + "]-(:Entity) "
        f"WHERE {where} WITH DISTINCT f "
        "WITH f.id AS rid, collect(f) AS fs, max(f.confidence) AS confidence, "
        "sum(size(f.starts)) AS n "
        "ORDER BY confidence * n DESC, n DESC, rid DESC LIMIT $limit "
        "UNWIND fs AS f "
        "RETURN rid, startNode(f).id AS subject, f.predicate AS predicate, "
        "endNode(f).id AS object, f.kind AS kind, f.document_id AS document_id, "
        "f.chunk_ids AS chunk_ids, f.starts AS starts, f.ends AS ends, f.texts AS texts, "
        "f.confidence AS confidence"
    )


def expand() -> str:
    """One breadth-first level: readable fact neighbours of the frontier, in (a, b) order,
    capped (:data:`graph.algorithms.EXPAND_CAP`)."""
    return (
        "UNWIND $ids AS eid MATCH (a:Entity {id: eid}) MATCH (a)-[f:" + FACT_TYPES + "]-(b:Entity) "
        "WHERE " + readable("f") + " RETURN DISTINCT a.id AS a, b.id AS b ORDER BY a, b LIMIT $cap"
    )


def facts_between() -> str:
    """Every readable fact between each pair of entities (either direction), with its
    evidence rows; the caller picks the strongest."""
    return (
        "UNWIND $pairs AS p MATCH (a:Entity {id: p[0]}) "
        "MATCH (a)-[f:" + FACT_TYPES + "]-(b:Entity) WHERE b.id = p[1] AND " + readable("f") + " "
        "WITH DISTINCT f "
        "RETURN f.id AS rid, startNode(f).id AS subject, f.predicate AS predicate, "
        "endNode(f).id AS object, f.kind AS kind, f.document_id AS document_id, "
        "f.chunk_ids AS chunk_ids, f.starts AS starts, f.ends AS ends, f.texts AS texts, "
        "f.confidence AS confidence"
    )


def export_documents() -> str:
    return (
        "UNWIND $ids AS did MATCH (d:Document {id: did}) "
        "RETURN d {.id, .source, .title, .version, .tenant, .groups, .content_hash, "
        ".ingested_at, .text, .sections, .about} AS d"
    )


def export_chunks() -> str:
    return (
        "UNWIND $ids AS did MATCH (c:Chunk)-[:FROM_DOCUMENT]->(:Document {id: did}) "
        "RETURN " + _CHUNK + " "
        "ORDER BY c.document_id, c.index"
    )


def export_mentions() -> str:
    return (
        "UNWIND $ids AS did MATCH (c:Chunk)-[:FROM_DOCUMENT]->(:Document {id: did}) "
        "MATCH (c)-[m:MENTIONS]->(e:Entity) RETURN " + _MENTION + " "
        "ORDER BY document_id, c.index, start, entity_id"
    )


def export_facts() -> str:
    return (
        "UNWIND $ids AS did MATCH (d:Document {id: did}) "
        "UNWIND d.entity_ids AS eid MATCH (s:Entity {id: eid})-[f:" + FACT_TYPES + "]->(o:Entity) "
        "WHERE f.document_id = did " + _FACT_ROWS + " ORDER BY rid"
    )


def stats() -> list[tuple[str, str]]:
    return [
        ("documents", "MATCH (d:Document) WHERE " + readable("d") + " RETURN count(d) AS n"),
        ("chunks", "MATCH (c:Chunk) WHERE " + readable("c") + " RETURN count(c) AS n"),
        (
            "entities",
            "MATCH (e:Entity) WHERE $tenant IS NULL OR " + visible("e") + " RETURN count(e) AS n",
        ),
        (
            "mentions",
            "MATCH (c:Chunk)-[m:MENTIONS]->(:Entity) WHERE "
            + readable("c")
            + " RETURN count(m) AS n",
        ),
        (
            "relations",
            "MATCH (:Entity)-[f:" + FACT_TYPES + "]->(:Entity) WHERE " + readable("f") + " "
            "RETURN count(DISTINCT f.id) AS n",
        ),
    ]
