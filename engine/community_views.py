"""Community views: a stored community, read back as the caller may read it.

Everything a view shows is re-read through the caller's access: member entities
(:meth:`GraphStore.entities`), facts with only their readable evidence, and the chunks and
documents behind every cited span; a line whose source the caller cannot read (or that is
gone) is left out rather than shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graph import (
    Access,
    Chunk,
    ChunkId,
    Document,
    DocumentId,
    Entity,
    EntityId,
    GraphStore,
    Relation,
    RelationId,
    Span,
)
from graph.communities import Community
from graph.provenance import FactRef, SpanRef
from graph.views import CitedLine, CommunityView

__all__ = ["MEMBERS_SHOWN", "community_views"]

#: Members a view lists (most central first); ``size`` counts them all.
MEMBERS_SHOWN = 25


@dataclass(frozen=True, slots=True)
class _Read:
    """What the caller may read of the communities' members, facts and sources."""

    entities: Mapping[EntityId, Entity]
    facts: Mapping[RelationId, Relation]
    chunks: Mapping[ChunkId, Chunk]
    docs: Mapping[DocumentId, Document]

    def cite(self, span: Span) -> SpanRef | None:
        chunk, doc = self.chunks.get(span.chunk_id), self.docs.get(span.document_id)
        if chunk is None or doc is None or doc.text[span.start : span.end] != span.text:
            return None
        return SpanRef.of(doc, span.chunk_id, span.start, span.end, span.text)


async def community_views(
    graph: GraphStore,
    access: Access,
    found: Sequence[Community],
    *,
    children: Mapping[str, Sequence[str]] | None = None,
) -> list[CommunityView]:
    """Views of ``found`` (already read through ``access``), in the same order."""
    if not found:
        return []
    read = await _read(graph, access, found)
    children = children or {}
    return [
        CommunityView(
            id=c.id,
            level=c.level,
            parent=c.parent,
            children=tuple(children.get(c.id, ())),
            name=c.name,
            size=len(c.entity_ids),
            documents=c.documents,
            passages=c.passages,
            members=tuple(
                read.entities[e] for e in c.entity_ids[:MEMBERS_SHOWN] if e in read.entities
            ),
            summary=tuple(summary_lines(c, read)),
        )
        for c in found
    ]


async def _read(graph: GraphStore, access: Access, found: Sequence[Community]) -> _Read:
    shown = {e for c in found for e in c.entity_ids[:MEMBERS_SHOWN]}
    facts = {r.id: r for r in await graph.facts([r for c in found for r in c.facts], access)}
    ends = {e for r in facts.values() for e in (r.subject_id, r.object_id)}
    entities = {e.id: e for e in await graph.entities(sorted(shown | ends), access)}
    spans = [m.span for c in found for m in c.mentions]
    spans += [s for c in found for s in c.sentences]
    spans += [s for r in facts.values() for s in r.evidence]
    chunk_ids = list(dict.fromkeys(s.chunk_id for s in spans))
    chunks = {c.id: c for c in await graph.chunks(chunk_ids, access)}
    doc_ids = list({c.document_id for c in chunks.values()})
    docs = {d.id: d for d in await graph.documents(access, ids=doc_ids, limit=len(doc_ids) or 1)}
    return _Read(entities=entities, facts=facts, chunks=chunks, docs=docs)


def summary_lines(community: Community, read: _Read) -> list[CitedLine]:
    """Key entities, key facts, representative sentences; each line cited."""
    lines: list[CitedLine] = []
    for mention in community.mentions:
        ref = read.cite(mention.span)
        ent = read.entities.get(mention.entity_id)
        if ref is not None and ent is not None:
            lines.append(CitedLine(kind="entity", text=f"{ent.name} ({ent.type})", spans=(ref,)))
    for rid in community.facts:
        fact = read.facts.get(rid)
        if fact is None:
            continue
        refs = tuple(r for r in (read.cite(s) for s in fact.evidence[:2]) if r is not None)
        subject, obj = read.entities.get(fact.subject_id), read.entities.get(fact.object_id)
        if refs and subject is not None and obj is not None:
            stated = FactRef.of(fact, subject, obj)
            text = f"{stated.subject} {stated.predicate.replace('_', ' ')} {stated.object}"
            lines.append(CitedLine(kind="fact", text=text, spans=refs, facts=(stated,)))
    for span in community.sentences:
        ref = read.cite(span)
        if ref is not None:
            lines.append(CitedLine(kind="sentence", text=" ".join(span.text.split()), spans=(ref,)))
    return lines
