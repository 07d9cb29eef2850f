"""The in-memory index of the embedded graph store: ids, adjacency and names.

Texts stay in SQLite: documents, chunks and evidence spans are cut from document texts
read in one query per read (:attr:`NetworkxIndex.texts_from`). Rows are tuples with
interned ids, not models; models are built only for what a read returns.

The index is what reads consult. It changes only through :meth:`NetworkxIndex.apply_insert`
and :meth:`NetworkxIndex.apply_delete`, after the SQLite log has committed the same change,
and only while :attr:`NetworkxIndex.lock` is held exclusively; reads hold it shared. Planning
a write (which rows to delete, how entities merge) only reads the index, so it runs without
the lock while the one writer that may change the index is the one planning.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from graph.algorithms import fact_rank, restated_names
from graph.errors import StoreCorruptedError
from graph.ids import ChunkId, DocumentId, EntityId, RelationId, normalize_name, title_key
from graph.models import (
    Access,
    Chunk,
    Document,
    DocumentGraph,
    Entity,
    Mention,
    Relation,
    Section,
    Span,
    Tag,
)

__all__ = [
    "ChunkRow",
    "DeletePlan",
    "DocRow",
    "EntityRow",
    "EvidenceRow",
    "Fact",
    "MentionRow",
    "NetworkxIndex",
    "ReadWriteLock",
    "SupportRow",
    "TextReader",
    "intern_id",
]

MentionRow = tuple[ChunkId, DocumentId, int, int]  # chunk, document, start, end
EvidenceRow = tuple[ChunkId, int, int, float]  # chunk, start, end, confidence
SupportRow = tuple[DocumentId, ChunkId, int, int, float]  # document, chunk, start, end, conf
Fact = tuple[EntityId, str, EntityId, Any]  # subject, predicate, object, kind
ChunkRow = tuple[DocumentId, int, int, int, tuple[Tag, ...]]  # document, index, start, end, tags
EntityRow = tuple[str, str, tuple[str, ...]]  # name, type, aliases
#: Reads the texts of stored documents, in one query: id -> text (missing ids left out).
TextReader = Callable[[Collection[DocumentId]], dict[DocumentId, str]]

S = TypeVar("S", bound=str)


def intern_id(value: S) -> S:
    """One shared string per distinct id or name (many rows repeat the same ones)."""
    return cast(S, sys.intern(value))


_intern = intern_id


class DocRow(NamedTuple):
    """A stored document without its text."""

    id: DocumentId
    source: str
    title: str
    version: int
    tenant: str
    groups: tuple[str, ...]
    content_hash: str
    ingested_at: datetime
    sections: tuple[Section, ...]
    about: tuple[str, ...]

    @classmethod
    def of(cls, doc: Document) -> DocRow:
        """The row of a document model."""
        return cls(
            _intern(doc.id),
            _intern(doc.source),
            doc.title,
            doc.version,
            _intern(doc.tenant),
            tuple(_intern(g) for g in doc.groups),
            doc.content_hash,
            doc.ingested_at,
            doc.sections,
            doc.about,
        )

    def page_keys(self) -> set[str]:
        """The keys its first chunk is a page under: its title and what it is about."""
        return {title_key(name) for name in (self.title, *self.about)}

    def about_keys(self) -> set[str]:
        """What it is about, as normalised names."""
        return {normalize_name(name) for name in self.about}

    def model(self, text: str) -> Document:
        """The document model, with its text."""
        return Document.model_construct(**self._asdict(), text=text)


def _no_texts(ids: Collection[DocumentId]) -> dict[DocumentId, str]:
    return {}


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
    """Every stored row but texts, indexed for reads. ``path`` only names the store in errors.

    ``texts_from`` reads document texts from the store's committed rows. A deletion is
    committed before the index drops it, so the writer parks the texts it deletes in
    :attr:`retiring` before committing, and clears them once the index has dropped them:
    a read of the older index version still finds them.
    """

    def __init__(self, path: Path, texts_from: TextReader = _no_texts) -> None:
        self.path = path
        self.lock = ReadWriteLock()
        self.texts_from = texts_from
        self.retiring: dict[DocumentId, str] = {}
        self.docs: dict[DocumentId, DocRow] = {}
        self.by_source: dict[str, set[DocumentId]] = defaultdict(set)
        self.by_page_key: dict[str, set[DocumentId]] = defaultdict(set)
        self.first_chunk: dict[DocumentId, ChunkId] = {}
        self._readable_cache: dict[Access, set[DocumentId]] = {}
        self.chunks: dict[ChunkId, ChunkRow] = {}
        self.doc_chunks: dict[DocumentId, list[ChunkId]] = defaultdict(list)
        # The (text, type) of every personal-data tag, by document (for masking values).
        self.pii: dict[DocumentId, list[tuple[str, str]]] = {}
        self.entities: dict[EntityId, EntityRow] = {}
        self.by_key: dict[str, set[EntityId]] = defaultdict(set)
        self.keys: dict[EntityId, list[str]] = {}
        self.chunk_mentions: dict[ChunkId, list[tuple[EntityId, MentionRow]]] = defaultdict(list)
        # Compact rows; pydantic objects are built only for what a read returns.
        self.mentions: dict[EntityId, list[MentionRow]] = defaultdict(list)
        self.entity_docs: dict[EntityId, Counter[DocumentId]] = defaultdict(Counter)
        self.doc_entities: dict[DocumentId, set[EntityId]] = defaultdict(set)
        self.facts: dict[RelationId, Fact] = {}
        # fact -> its evidence rows, each with its document: the support of a fact
        self.support: dict[RelationId, tuple[SupportRow, ...]] = {}
        self.doc_relations: dict[DocumentId, set[RelationId]] = defaultdict(set)
        # subject -> object -> facts, and object -> subject -> the same lists; an entity is a
        # node from its first fact until it is deleted (as a networkx multigraph keeps them).
        self.out_edges: dict[EntityId, dict[EntityId, list[RelationId]]] = {}
        self.in_edges: dict[EntityId, dict[EntityId, list[RelationId]]] = {}

    # ------------------------------------------------------------------ texts and models

    def texts(self, ids: Iterable[DocumentId]) -> dict[DocumentId, str]:
        """The texts of indexed documents (one query); a missing one is a corrupted store."""
        wanted = set(ids)
        if not wanted:
            return {}
        found = self.texts_from(wanted)
        for did in wanted.difference(found):
            text = self.retiring.get(did)
            if text is None:
                raise StoreCorruptedError(f"{self.path} refers to missing document {did}")
            found[did] = text
        return found

    def document(self, did: DocumentId, texts: Mapping[DocumentId, str]) -> Document:
        """A stored document as a model (its text among ``texts``)."""
        return self.docs[did].model(texts[did])

    def chunk(self, cid: ChunkId, texts: Mapping[DocumentId, str]) -> Chunk:
        """A stored chunk as a model (its document's text among ``texts``)."""
        did, idx, start, end, tags = self.chunks[cid]
        return Chunk.model_construct(
            id=cid,
            document_id=did,
            index=idx,
            start=start,
            end=end,
            text=texts[did][start:end],
            tags=tags,
        )

    def entity(self, eid: EntityId) -> Entity:
        """A stored entity as a model."""
        name, etype, aliases = self.entities[eid]
        return Entity.model_construct(id=eid, name=name, type=etype, aliases=aliases)

    def has_node(self, eid: EntityId) -> bool:
        """Whether the entity is an end of a fact (or was, and is not deleted)."""
        return eid in self.out_edges

    def between(self, u: EntityId, v: EntityId) -> list[RelationId]:
        """The facts from ``u`` to ``v``."""
        return self.out_edges.get(u, {}).get(v, [])

    def fact_docs(self, rid: RelationId) -> dict[DocumentId, None]:
        """The documents stating a fact, in order."""
        return dict.fromkeys(row[0] for row in self.support[rid])

    def doc_support(self, rid: RelationId, did: DocumentId) -> list[EvidenceRow]:
        """The evidence rows one document gives a fact, in order."""
        return [(c, s, e, f) for d, c, s, e, f in self.support.get(rid, ()) if d == did]

    # ------------------------------------------------------------------ building

    def add_document(self, doc: Document) -> None:
        """Index a document (its chunks and mentions are added separately)."""
        self._readable_cache.clear()
        row = DocRow.of(doc)
        self.docs[row.id] = row
        self.by_source[row.source].add(row.id)
        for key in row.page_keys():
            self.by_page_key[key].add(row.id)

    def add_chunk(
        self,
        cid: ChunkId,
        did: DocumentId,
        index: int,
        start: int,
        end: int,
        tags: tuple[Tag, ...],
        doc_text: str,
    ) -> None:
        """Index a chunk of an indexed document (``doc_text``: that document's text)."""
        cid, did = _intern(cid), _intern(did)
        self.chunks[cid] = (did, index, start, end, tags or ())
        self.doc_chunks[did].append(cid)
        first = self.first_chunk.get(did)
        if first is None or index < self.chunks[first][1]:
            self.first_chunk[did] = cid
        found = [(doc_text[t.start : t.end], t.type) for t in tags if t.kind == "pii"]
        if found:
            self.pii.setdefault(did, []).extend(found)

    def set_entity(self, ent: Entity) -> None:
        """Index an entity, replacing its previous names."""
        self.set_entity_row(ent.id, (ent.name, ent.type, tuple(ent.aliases)))

    def set_entity_row(self, eid: EntityId, row: EntityRow) -> None:
        """Index an entity's (name, type, aliases), replacing its previous names."""
        eid = _intern(eid)
        if eid in self.entities:
            self._unindex_entity(eid)
        name, etype, aliases = row
        self.entities[eid] = (name, _intern(etype), aliases)
        keys = [_intern(normalize_name(n)) for n in (name, *aliases)]
        self.keys[eid] = keys
        for key in keys:
            self.by_key[key].add(eid)

    def _unindex_entity(self, eid: EntityId) -> None:
        for key in self.keys.pop(eid, ()):
            ids = self.by_key.get(key)
            if ids is not None:
                ids.discard(eid)
                if not ids:
                    del self.by_key[key]

    def add_mention(self, eid: EntityId, row: MentionRow) -> None:
        """Index one mention row."""
        eid = _intern(eid)
        row = (_intern(row[0]), _intern(row[1]), row[2], row[3])
        self.mentions[eid].append(row)
        self.chunk_mentions[row[0]].append((eid, row))
        self.entity_docs[eid][row[1]] += 1
        self.doc_entities[row[1]].add(eid)

    def set_fact(self, rid: RelationId, fact: Fact, support: Iterable[SupportRow]) -> None:
        """Index a fact with its whole support (rows in order)."""
        rid = _intern(rid)
        subject, obj = _intern(fact[0]), _intern(fact[2])
        self.facts[rid] = (subject, _intern(fact[1]), obj, _intern(fact[3]))
        rows = tuple((_intern(d), _intern(c), s, e, f) for d, c, s, e, f in support)
        self.support[rid] = rows
        for did in dict.fromkeys(row[0] for row in rows):
            self.doc_relations[did].add(rid)
        self.out_edges.setdefault(obj, {})
        self.in_edges.setdefault(subject, {})
        ends = self.out_edges.setdefault(subject, {})
        keys = ends.get(obj)
        if keys is None:
            keys = ends[obj] = []
            self.in_edges.setdefault(obj, {})[subject] = keys
        if rid not in keys:
            keys.append(rid)

    def _remove_edge(self, subject: EntityId, obj: EntityId, rid: RelationId) -> None:
        keys = self.out_edges[subject][obj]
        keys.remove(rid)
        if not keys:
            del self.out_edges[subject][obj], self.in_edges[obj][subject]

    def _remove_node(self, eid: EntityId) -> None:
        for obj in self.out_edges.pop(eid, {}):
            self.in_edges[obj].pop(eid, None)
        for subject in self.in_edges.pop(eid, {}):
            self.out_edges.get(subject, {}).pop(eid, None)

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
                if base is None and ent.id not in removed and ent.id in self.entities:
                    base = self.entity(ent.id)
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
                if self.fact_docs(rid).keys() <= gone:
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
        stored = {eid: self.entity(eid) for eid in touched}
        bases = dict(stored)
        for graph in adding:
            for m in graph.mentions:
                if m.entity_id in surfaces:
                    surfaces[m.entity_id][m.span.text] += 1
            for new in graph.entities:
                if (base := bases.get(new.id)) is not None:
                    aliases = tuple(dict.fromkeys([*base.aliases, *new.aliases]))
                    bases[new.id] = base.model_copy(update={"aliases": aliases})
        renamed: dict[EntityId, Entity] = {}
        texts = self.texts(
            did for eid in touched for _, did, _, _ in self.mentions[eid] if did not in gone
        )
        for eid in sorted(touched):
            counts = surfaces[eid]
            for _, did, start, end in self.mentions[eid]:
                if did not in gone:
                    counts[texts[did][start:end]] += 1
            ent = restated_names(bases[eid], counts)
            if ent != stored[eid] or bases[eid] is not stored[eid]:
                renamed[eid] = ent
        return renamed

    # ------------------------------------------------------------------ applying writes

    def apply_insert(self, graphs: list[DocumentGraph], merged: dict[EntityId, Entity]) -> None:
        """Index committed documents and everything extracted from them."""
        for ent in merged.values():
            self.set_entity(ent)
        for graph in graphs:
            self.add_document(graph.document)
            text = graph.document.text
            for c in graph.chunks:
                self.add_chunk(c.id, c.document_id, c.index, c.start, c.end, c.tags, text)
            seen: set[tuple[EntityId, ChunkId, int, int]] = set()
            for m in graph.mentions:
                key = (m.entity_id, m.span.chunk_id, m.span.start, m.span.end)
                if key not in seen:
                    seen.add(key)
                    self.add_mention(
                        m.entity_id, (m.span.chunk_id, m.span.document_id, m.span.start, m.span.end)
                    )
            did = graph.document.id
            for rel in graph.relations:
                support = list(self.support.get(rel.id, ()))
                known = {(r[1], r[2], r[3]) for r in support if r[0] == did}
                for span in rel.evidence:
                    if (span.chunk_id, span.start, span.end) not in known:
                        known.add((span.chunk_id, span.start, span.end))
                        support.append((did, span.chunk_id, span.start, span.end, rel.confidence))
                fact = (rel.subject_id, rel.predicate, rel.object_id, rel.kind)
                self.set_fact(rel.id, fact, support)

    def apply_delete(self, doc_ids: list[DocumentId], plan: DeletePlan) -> None:
        """Drop committed deletions from the index."""
        gone = set(doc_ids)
        for rid in plan.relations_touched:
            support = [row for row in self.support[rid] if row[0] not in gone]
            if support:
                self.set_fact(rid, self.facts[rid], support)
            else:
                subject, _, obj, _ = self.facts.pop(rid)
                del self.support[rid]
                self._remove_edge(subject, obj, rid)
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
            self._unindex_entity(eid)
            del self.entities[eid], self.mentions[eid], self.entity_docs[eid]
            self._remove_node(eid)

    def _drop_document(self, did: DocumentId) -> None:
        self.doc_relations.pop(did, None)
        doc = self.docs.pop(did)
        self._readable_cache.clear()
        self.by_source[doc.source].discard(did)
        if not self.by_source[doc.source]:
            del self.by_source[doc.source]
        for key in doc.page_keys():
            self.by_page_key[key].discard(did)
            if not self.by_page_key[key]:
                del self.by_page_key[key]
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

    @staticmethod
    def span(
        texts: Mapping[DocumentId, str], cid: ChunkId, did: DocumentId, start: int, end: int
    ) -> Span:
        """A span of a stored document (its text among ``texts``)."""
        return Span.model_construct(
            chunk_id=cid, document_id=did, start=start, end=end, text=texts[did][start:end]
        )

    def mentions_built(self, rows: Iterable[tuple[EntityId, MentionRow]]) -> list[Mention]:
        """Mention rows as models, their texts read in one query."""
        rows = list(rows)
        texts = self.texts(row[1] for _, row in rows)
        return [
            Mention.model_construct(entity_id=eid, span=self.span(texts, *row)) for eid, row in rows
        ]

    def _evidence(self, rid: RelationId, readable: set[DocumentId] | None) -> list[SupportRow]:
        """A fact's readable evidence rows, by document, start, end and chunk."""
        return sorted(
            (row for row in self.support[rid] if readable is None or row[0] in readable),
            key=lambda r: (r[0], r[2], r[3], r[1]),
        )

    def relation(
        self, rid: RelationId, rows: list[SupportRow], texts: Mapping[DocumentId, str]
    ) -> Relation:
        """The fact with the evidence ``rows`` (their documents' texts among ``texts``)."""
        subject, predicate, obj, kind = self.facts[rid]
        # Built from validated parts (stored rows or validated input): skip re-validation.
        return Relation.model_construct(
            id=rid,
            subject_id=subject,
            predicate=predicate,
            object_id=obj,
            kind=kind,
            confidence=max(row[4] for row in rows),
            evidence=tuple(self.span(texts, r[1], r[0], r[2], r[3]) for r in rows),
        )

    def built(self, rids: Iterable[RelationId], readable: set[DocumentId] | None) -> list[Relation]:
        """The readable facts among ``rids``, in order (texts read in one query)."""
        found = [(rid, rows) for rid in rids if (rows := self._evidence(rid, readable))]
        texts = self.texts(row[0] for _, rows in found for row in rows)
        return [self.relation(rid, rows, texts) for rid, rows in found]

    def fact_ids(self, entity_ids: Iterable[EntityId]) -> dict[RelationId, None]:
        """Every stored fact touching the entities, readable or not."""
        rids: dict[RelationId, None] = {}
        for eid in entity_ids:
            for ends in (self.out_edges.get(eid), self.in_edges.get(eid)):
                for keys in (ends or {}).values():
                    rids.update(dict.fromkeys(keys))
        return rids

    def touching(
        self, entity_ids: Iterable[EntityId], readable: set[DocumentId] | None, predicates: set[str]
    ) -> list[RelationId]:
        """Readable facts touching the entities, strongest first (no objects built)."""
        scored: list[tuple[float, int, RelationId]] = []
        for rid in self.fact_ids(entity_ids):
            if predicates and self.facts[rid][1] not in predicates:
                continue
            rows = [row[4] for row in self.support[rid] if readable is None or row[0] in readable]
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
        return readable is None or any(row[0] in readable for row in self.support[rid])
