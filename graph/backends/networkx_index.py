"""The in-memory index of the embedded graph store: ids, adjacency, names, the networkx graph.

The index is what reads consult. It changes only through :meth:`NetworkxIndex.apply_insert`
and :meth:`NetworkxIndex.apply_delete`, after the SQLite log has committed the same change,
and only while :attr:`NetworkxIndex.lock` is held exclusively; reads hold it shared. Planning
a write (which rows to delete, how entities merge) only reads the index, so it runs without
the lock while the one writer that may change the index is the one planning.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx

from graph.algorithms import fact_rank, restated_names
from graph.errors import StoreCorruptedError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId, normalize_name, title_key
from graph.models import Access, Chunk, Document, DocumentGraph, Entity, Mention, Relation, Span

__all__ = ["DeletePlan", "EvidenceRow", "Fact", "MentionRow", "NetworkxIndex", "ReadWriteLock"]

MentionRow = tuple[ChunkId, DocumentId, int, int]  # chunk, document, start, end
EvidenceRow = tuple[ChunkId, int, int, float]  # chunk, start, end, confidence
Fact = tuple[EntityId, str, EntityId, Any]  # subject, predicate, object, kind


class FactEdge(NamedTuple):
    """A fact's id and ends, without its evidence (what graph expansion reads)."""

    id: RelationId
    subject_id: EntityId
    object_id: EntityId


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that arrive after it.

    The writer holds it only to apply an already committed change, so readers wait at most
    for that apply, never for a commit.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock with other readers."""
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone."""
        with self._cond:
            self._waiting += 1
            try:
                while self._writing or self._readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class DeletePlan:
    """What deleting some documents removes, computed before anything is written."""

    relations_emptied: set[RelationId] = field(default_factory=set)
    relations_touched: set[RelationId] = field(default_factory=set)
    entities: set[EntityId] = field(default_factory=set)
    #: Surviving entities whose name or aliases only the deleted documents stated, restated.
    renamed: dict[EntityId, Entity] = field(default_factory=dict)
    mentions: int = 0
    chunks: int = 0


class NetworkxIndex:
    """Every stored row, indexed for reads. ``path`` only names the store in errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = ReadWriteLock()
        self.docs: dict[DocumentId, Document] = {}
        self.by_source: dict[str, set[DocumentId]] = defaultdict(set)
        self.by_title: dict[str, set[DocumentId]] = defaultdict(set)
        self.first_chunk: dict[DocumentId, ChunkId] = {}
        self._readable_cache: dict[Access, set[DocumentId]] = {}
        self.chunks: dict[ChunkId, Chunk] = {}
        self.doc_chunks: dict[DocumentId, list[ChunkId]] = defaultdict(list)
        # The (text, type) of every personal-data tag, by document (for masking values).
        self.pii: dict[DocumentId, list[tuple[str, str]]] = {}
        self.entities: dict[EntityId, Entity] = {}
        self.by_key: dict[str, set[EntityId]] = defaultdict(set)
        self.keys: dict[EntityId, list[str]] = {}
        self.chunk_mentions: dict[ChunkId, list[tuple[EntityId, MentionRow]]] = defaultdict(list)
        # Compact rows; pydantic objects are built only for what a read returns.
        self.mentions: dict[EntityId, list[MentionRow]] = defaultdict(list)
        self.entity_docs: dict[EntityId, Counter[DocumentId]] = defaultdict(Counter)
        self.doc_entities: dict[DocumentId, set[EntityId]] = defaultdict(set)
        self.facts: dict[RelationId, Fact] = {}
        # fact -> document -> evidence rows: the per-document support of a fact
        self.support: dict[RelationId, dict[DocumentId, list[EvidenceRow]]] = {}
        self.doc_relations: dict[DocumentId, set[RelationId]] = defaultdict(set)
        self.graph: nx.MultiDiGraph = nx.MultiDiGraph()

    # ------------------------------------------------------------------ building

    def add_document(self, doc: Document) -> None:
        """Index a document (its chunks and mentions are added separately)."""
        self._readable_cache.clear()
        self.docs[doc.id] = doc
        self.by_source[doc.source].add(doc.id)
        self.by_title[title_key(doc.title)].add(doc.id)

    def add_chunk(self, chunk: Chunk) -> None:
        """Index a chunk of an indexed document."""
        self.chunks[chunk.id] = chunk
        self.doc_chunks[chunk.document_id].append(chunk.id)
        first = self.first_chunk.get(chunk.document_id)
        if first is None or chunk.index < self.chunks[first].index:
            self.first_chunk[chunk.document_id] = chunk.id
        found = [
            (chunk.text[t.start - chunk.start : t.end - chunk.start], t.type)
            for t in chunk.tags
            if t.kind == "pii"
        ]
        if found:
            self.pii.setdefault(chunk.document_id, []).extend(found)

    def set_entity(self, ent: Entity) -> None:
        """Index an entity, replacing its previous names."""
        old = self.entities.get(ent.id)
        if old is not None:
            self._unindex_entity(old)
        self.entities[ent.id] = ent
        keys = [normalize_name(name) for name in (ent.name, *ent.aliases)]
        self.keys[ent.id] = keys
        for key in keys:
            self.by_key[key].add(ent.id)

    def _unindex_entity(self, ent: Entity) -> None:
        for key in self.keys.pop(ent.id, ()):
            ids = self.by_key.get(key)
            if ids is not None:
                ids.discard(ent.id)
                if not ids:
                    del self.by_key[key]

    def add_mention(self, eid: EntityId, row: MentionRow) -> None:
        """Index one mention row."""
        self.mentions[eid].append(row)
        self.chunk_mentions[row[0]].append((eid, row))
        self.entity_docs[eid][row[1]] += 1
        self.doc_entities[row[1]].add(eid)

    def set_fact(
        self, rid: RelationId, fact: Fact, support: dict[DocumentId, list[EvidenceRow]]
    ) -> None:
        """Index a fact with its whole per-document support."""
        self.facts[rid] = fact
        self.support[rid] = support
        for did in support:
            self.doc_relations[did].add(rid)
        if not self.graph.has_edge(fact[0], fact[2], key=rid):
            self.graph.add_edge(fact[0], fact[2], key=rid)

    # ------------------------------------------------------------------ planning writes

    def merged_entities(
        self,
        graphs: list[DocumentGraph],
        removed: set[EntityId],
        renamed: dict[EntityId, Entity] | None = None,
    ) -> dict[EntityId, Entity]:
        """The entities the graphs write, with aliases merged into the stored ones (as
        ``renamed`` restates them, when a replaced document stated some)."""
        renamed = renamed or {}
        merged: dict[EntityId, Entity] = {}
        for graph in graphs:
            for ent in graph.entities:
                if ent.id in renamed:
                    merged[ent.id] = renamed[ent.id]
                    continue
                base = merged.get(ent.id)
                if base is None and ent.id not in removed:
                    base = self.entities.get(ent.id)
                if base is None:
                    merged[ent.id] = ent
                    continue
                aliases = tuple(dict.fromkeys([*base.aliases, *ent.aliases]))
                merged[ent.id] = base.model_copy(update={"aliases": aliases})
        return merged

    def delete_plan(
        self, doc_ids: list[DocumentId], adding: list[DocumentGraph] | None = None
    ) -> DeletePlan:
        """What deleting the (stored) documents removes; ``adding`` are graphs written in
        the same transaction, whose mentions count as remaining when names are restated."""
        plan = DeletePlan()
        gone = set(doc_ids)
        for did in doc_ids:
            plan.chunks += len(self.doc_chunks.get(did, ()))
            for rid in self.doc_relations.get(did, ()):
                plan.relations_touched.add(rid)
                if set(self.support[rid]) <= gone:
                    plan.relations_emptied.add(rid)
            for eid in self.doc_entities.get(did, ()):
                plan.mentions += self.entity_docs[eid][did]
                if set(self.entity_docs[eid]) <= gone:
                    plan.entities.add(eid)
        plan.renamed = self._restated(doc_ids, plan.entities, adding or [])
        return plan

    def _restated(
        self, doc_ids: list[DocumentId], removed: set[EntityId], adding: list[DocumentGraph]
    ) -> dict[EntityId, Entity]:
        """Surviving entities the documents mention, restated from their other mentions
        and those of ``adding`` (each such entity written by ``adding`` is returned, with
        the aliases it brings, so the write does not bring back what the restate dropped)."""
        gone = set(doc_ids)
        touched = {e for did in doc_ids for e in self.doc_entities.get(did, ())} - removed
        surfaces: dict[EntityId, Counter[str]] = {eid: Counter() for eid in touched}
        bases = {eid: self.entities[eid] for eid in touched}
        for graph in adding:
            for m in graph.mentions:
                if m.entity_id in surfaces:
                    surfaces[m.entity_id][m.span.text] += 1
            for new in graph.entities:
                if (base := bases.get(new.id)) is not None:
                    aliases = tuple(dict.fromkeys([*base.aliases, *new.aliases]))
                    bases[new.id] = base.model_copy(update={"aliases": aliases})
        renamed: dict[EntityId, Entity] = {}
        for eid in sorted(touched):
            counts = surfaces[eid]
            for _, did, start, end in self.mentions[eid]:
                if did not in gone:
                    counts[self.docs[did].text[start:end]] += 1
            ent = restated_names(bases[eid], counts)
            if ent != self.entities[eid] or bases[eid] is not self.entities[eid]:
                renamed[eid] = ent
        return renamed

    # ------------------------------------------------------------------ applying writes

    def apply_insert(self, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]) -> None:
        """Index committed documents and everything extracted from them."""
        for ent in merged.values():
            self.set_entity(ent)
        for graph in graphs:
            self.add_document(graph.document)
            for chunk in graph.chunks:
                self.add_chunk(chunk)
            seen: set[tuple[EntityId, ChunkId, int, int]] = set()
            for m in graph.mentions:
                key = (m.entity_id, m.span.chunk_id, m.span.start, m.span.end)
                if key not in seen:
                    seen.add(key)
                    self.add_mention(
                        m.entity_id, (m.span.chunk_id, m.span.document_id, m.span.start, m.span.end)
                    )
            for rel in graph.relations:
                support = {d: list(rows) for d, rows in self.support.get(rel.id, {}).items()}
                rows = support.setdefault(graph.document.id, [])
                known = {(r[0], r[1], r[2]) for r in rows}
                for span in rel.evidence:
                    if (span.chunk_id, span.start, span.end) not in known:
                        known.add((span.chunk_id, span.start, span.end))
                        rows.append((span.chunk_id, span.start, span.end, rel.confidence))
                fact = (rel.subject_id, rel.predicate, rel.object_id, rel.kind)
                self.set_fact(rel.id, fact, support)

    def apply_delete(self, doc_ids: list[DocumentId], plan: DeletePlan) -> None:
        """Drop committed deletions from the index."""
        gone = set(doc_ids)
        for rid in plan.relations_touched:
            support = {d: rows for d, rows in self.support[rid].items() if d not in gone}
            if support:
                self.set_fact(rid, self.facts[rid], support)
            else:
                subject, _, obj, _ = self.facts.pop(rid)
                del self.support[rid]
                self.graph.remove_edge(subject, obj, key=rid)
        for did in doc_ids:
            for cid in self.doc_chunks.pop(did, []):
                del self.chunks[cid]
                self.chunk_mentions.pop(cid, None)
            for eid in self.doc_entities.pop(did, set()):
                self.mentions[eid] = [m for m in self.mentions[eid] if m[1] != did]
                del self.entity_docs[eid][did]
            self._drop_document(did)
        for ent in plan.renamed.values():
            self.set_entity(ent)
        for eid in plan.entities:
            self._unindex_entity(self.entities.pop(eid))
            del self.mentions[eid], self.entity_docs[eid]
            if self.graph.has_node(eid):
                self.graph.remove_node(eid)

    def _drop_document(self, did: DocumentId) -> None:
        self.doc_relations.pop(did, None)
        doc = self.docs.pop(did)
        self._readable_cache.clear()
        self.by_source[doc.source].discard(did)
        if not self.by_source[doc.source]:
            del self.by_source[doc.source]
        key = title_key(doc.title)
        self.by_title[key].discard(did)
        if not self.by_title[key]:
            del self.by_title[key]
        self.first_chunk.pop(did, None)
        self.pii.pop(did, None)

    # ------------------------------------------------------------------ read helpers

    def readable(self, access: Access) -> set[DocumentId] | None:
        """Readable document ids, or None when everything is readable (cached until a write)."""
        if access.is_admin:
            return None
        cached = self._readable_cache.get(access)
        if cached is None:
            if len(self._readable_cache) > 256:
                self._readable_cache.clear()
            cached = {d.id for d in self.docs.values() if access.can_read(d.tenant, d.groups)}
            self._readable_cache[access] = cached
        return cached

    @staticmethod
    def ok(doc: DocumentId, readable: set[DocumentId] | None) -> bool:
        """Whether a document is in the readable set."""
        return readable is None or doc in readable

    def visible(self, eid: EntityId, readable: set[DocumentId] | None) -> bool:
        """Whether a readable document mentions the entity."""
        docs = self.entity_docs.get(eid)
        if not docs:
            return False
        return readable is None or not readable.isdisjoint(docs)

    def support_count(self, eid: EntityId, readable: set[DocumentId] | None) -> int:
        """Readable mentions of the entity."""
        return sum(c for d, c in self.entity_docs[eid].items() if self.ok(d, readable))

    def span(self, cid: ChunkId, did: DocumentId, start: int, end: int) -> Span:
        """A span of a stored document."""
        doc = self.docs.get(did)
        if doc is None:
            raise StoreCorruptedError(f"{self.path} refers to missing document {did}")
        return Span.model_construct(
            chunk_id=cid, document_id=did, start=start, end=end, text=doc.text[start:end]
        )

    def mention(self, eid: EntityId, row: MentionRow) -> Mention:
        """A mention row as a model."""
        return Mention.model_construct(entity_id=eid, span=self.span(*row))

    def relation(self, rid: RelationId, readable: set[DocumentId] | None) -> Relation | None:
        """The fact with only its readable evidence, or None when none is readable."""
        rows = sorted(
            (
                (did, row)
                for did, rows in self.support[rid].items()
                if readable is None or did in readable
                for row in rows
            ),
            key=lambda t: (t[0], t[1][1], t[1][2], t[1][0]),
        )
        if not rows:
            return None
        subject, predicate, obj, kind = self.facts[rid]
        # Built from validated parts (stored rows or validated input): skip re-validation.
        return Relation.model_construct(
            id=rid,
            subject_id=subject,
            predicate=predicate,
            object_id=obj,
            kind=kind,
            confidence=max(row[3] for _, row in rows),
            evidence=tuple(self.span(row[0], did, row[1], row[2]) for did, row in rows),
        )

    def built(self, rids: Iterable[RelationId], readable: set[DocumentId] | None) -> list[Relation]:
        """The readable facts among ``rids``, in order."""
        found = (self.relation(rid, readable) for rid in rids)
        return [r for r in found if r is not None]

    def fact_ids(self, entity_ids: Iterable[EntityId]) -> dict[RelationId, None]:
        """Every stored fact touching the entities, readable or not."""
        rids: dict[RelationId, None] = {}
        for eid in entity_ids:
            if not self.graph.has_node(eid):
                continue
            for _, _, rid in self.graph.out_edges(eid, keys=True):
                rids[rid] = None
            for _, _, rid in self.graph.in_edges(eid, keys=True):
                rids[rid] = None
        return rids

    def touching(
        self, entity_ids: Iterable[EntityId], readable: set[DocumentId] | None, predicates: set[str]
    ) -> list[RelationId]:
        """Readable facts touching the entities, strongest first (no objects built)."""
        scored: list[tuple[float, int, RelationId]] = []
        for rid in self.fact_ids(entity_ids):
            if predicates and self.facts[rid][1] not in predicates:
                continue
            rows = [
                row[3]
                for did, rows in self.support[rid].items()
                if readable is None or did in readable
                for row in rows
            ]
            if rows:
                scored.append(fact_rank(rid, max(rows), len(rows)))
        scored.sort(reverse=True)
        return [rid for _, _, rid in scored]

    def edge(self, rid: RelationId) -> FactEdge:
        """A fact's id and ends."""
        subject, _, obj, _ = self.facts[rid]
        return FactEdge(rid, subject, obj)

    def fact_readable(self, rid: RelationId, readable: set[DocumentId] | None) -> bool:
        """Whether a readable document states the fact."""
        return readable is None or not readable.isdisjoint(self.support[rid])
