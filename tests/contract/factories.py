"""Hand-built document graphs for the store contract suites (no NLP involved)."""

from __future__ import annotations

from graph import (
    PUBLIC_GROUP,
    Chunk,
    Document,
    DocumentGraph,
    Entity,
    GraphStore,
    Mention,
    Relation,
    Section,
    Span,
    chunk_id,
    content_hash,
    document_id,
    entity_id,
    entity_scope,
    relation_id,
)
from graph.backends.neo4j_store import Neo4jGraphStore
from tests.bolt_server import DATABASE, PASSWORD, USER, BoltServer

#: The scope of acme's public documents, where most hand-built entities live.
ACME_PUBLIC = entity_scope("acme", (PUBLIC_GROUP,))


def entity(
    name: str, etype: str = "PERSON", aliases: tuple[str, ...] = (), *, scope: str = ACME_PUBLIC
) -> Entity:
    """An entity with its id in ``scope`` (the stores never recompute ids, so some cases
    also share one across scopes to prove reads stay walled off even then)."""
    return Entity(id=entity_id(name, etype, scope=scope), name=name, type=etype, aliases=aliases)


def make_graph(
    source: str,
    text: str,
    *,
    tenant: str = "acme",
    groups: tuple[str, ...] = (PUBLIC_GROUP,),
    entities: dict[str, Entity],
    facts: list[tuple[str, str, str]],
    version: int = 1,
    sections: tuple[Section, ...] = (),
    title: str | None = None,
    about: tuple[str, ...] = (),
) -> DocumentGraph:
    """A one-chunk document; every entity name must occur in ``text``; facts are
    (subject name, predicate, object name) stated by the whole text."""
    digest = content_hash(text)
    doc = Document(
        id=document_id(tenant, source, digest + "|" + ",".join(groups)),
        source=source,
        title=title or source.title(),
        version=version,
        tenant=tenant,
        groups=groups,
        content_hash=digest,
        text=text,
        sections=sections,
        about=about,
    )
    chunk = Chunk(
        id=chunk_id(doc.id, 0, len(text)),
        document_id=doc.id,
        index=0,
        start=0,
        end=len(text),
        text=text,
    )

    def span(start: int, end: int) -> Span:
        return Span(
            chunk_id=chunk.id, document_id=doc.id, start=start, end=end, text=text[start:end]
        )

    mentions = []
    for name, ent in entities.items():
        at = text.index(name)
        mentions.append(Mention(entity_id=ent.id, span=span(at, at + len(name))))
    relations = []
    for subj, pred, obj in facts:
        s, o = entities[subj].id, entities[obj].id
        relations.append(
            Relation(
                id=relation_id(s, pred, o),
                subject_id=s,
                predicate=pred,
                object_id=o,
                kind="svo",
                confidence=0.8,
                evidence=(span(0, len(text)),),
            )
        )
    return DocumentGraph(
        document=doc,
        chunks=(chunk,),
        entities=tuple(entities.values()),
        mentions=tuple(mentions),
        relations=tuple(relations),
    )


async def open_test_store(server: BoltServer) -> Neo4jGraphStore:
    """A Neo4j store on the suite's Bolt server."""
    return await Neo4jGraphStore.open(
        server.uri, user=USER, password=PASSWORD, database=DATABASE, http_url=server.http_url
    )


async def wipe(store: GraphStore) -> None:
    """Delete every document (and so everything else) from a store."""
    from graph import Access

    while docs := await store.documents(Access.admin(), limit=500):
        await store.delete([d.id for d in docs])
