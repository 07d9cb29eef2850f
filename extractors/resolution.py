"""Entity resolution: one entity per real-world thing, never across incompatible types.

A mention is matched, in order, by: its normalised name or a known alias; a person's
surname to a full name in the same document; an acronym to the name it abbreviates
(and back); a near-identical spelling (accents, punctuation); and finally embedding
similarity of names above a threshold, guarded so that names differing in a number
("Lothair I" / "Lothair II") never merge.

Resolution runs per scope (a tenant and an exact access list, :func:`graph.entity_scope`):
a document resolves only against entities of its own scope, so a name learned from one
tenant's or one group's documents is never matched, adopted or aliased in another's.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz

from extractors.types import ChunkExtraction, RawMention
from graph import (
    Chunk,
    Document,
    DocumentGraph,
    Entity,
    EntityId,
    Mention,
    Relation,
    Span,
    entity_id,
    entity_scope,
    normalize_name,
    relation_id,
)

__all__ = ["EmbedNames", "EntityResolver", "type_family"]

#: Turns names into unit vectors (one row per name).
EmbedNames = Callable[[Sequence[str]], np.ndarray]

_FAMILIES = {
    "PERSON": "person",
    "ORG": "organisation",
    "NORP": "group",
    "GPE": "place",
    "LOC": "place",
    "FAC": "place",
    "DATE": "time",
    "TIME": "time",
    "EVENT": "event",
    "WORK_OF_ART": "work",
    "PRODUCT": "work",
    "LAW": "law",
    "LANGUAGE": "language",
}
#: Families compared only by exact name: a near-identical date or number is another one.
_EXACT_ONLY = frozenset({"time"})
_NUMBER = re.compile(r"^(\d+(st|nd|rd|th)?|[ivxlcdm]+)$")
_ACRONYM = re.compile(r"^[A-Z][A-Z&.]{1,7}$")
_STOP = frozenset({"of", "the", "and", "for", "in", "on", "at", "de", "&"})


_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v"})


def _about(raw: RawMention, entity: Entity) -> list[str]:
    """The names a document about ``raw`` is found by: as written, as resolved, and a
    person's full name as usually shortened ("Frank William George Lloyd" is also
    "Frank Lloyd")."""
    names = [raw.text, entity.name]
    words = raw.text.split()
    if type_family(raw.label) == "person" and len(words) > 2 and words[-1].lower() not in _SUFFIXES:
        names.append(f"{words[0]} {words[-1]}")
    return names


def type_family(label: str) -> str:
    """The compatibility family of a type; ``MISC`` (untyped proper noun) is its own."""
    return _FAMILIES.get(label, label.lower())


def _compatible(a: str, b: str) -> bool:
    fa, fb = type_family(a), type_family(b)
    return fa == fb or ("misc" in {fa, fb} and "time" not in {fa, fb})


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", normalize_name(text))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", stripped).split())


def _numbers(key: str) -> set[str]:
    return {t for t in key.split() if _NUMBER.match(t)}


def _tokens(name: str) -> set[str]:
    return {t for t in _fold(name).split() if len(t) > 1 and t not in _STOP}


def _initials(name: str) -> str:
    return "".join(w[0] for w in re.split(r"[\s\-]+", name) if w and w.lower() not in _STOP).upper()


@dataclass
class _Registry:
    """Known entities with lookup keys, built up as documents are resolved."""

    entities: dict[EntityId, Entity] = field(default_factory=dict)
    by_key: dict[str, list[EntityId]] = field(default_factory=lambda: defaultdict(list))
    by_fold: dict[str, list[EntityId]] = field(default_factory=lambda: defaultdict(list))
    by_initials: dict[str, list[EntityId]] = field(default_factory=lambda: defaultdict(list))
    by_token: dict[str, set[EntityId]] = field(default_factory=lambda: defaultdict(set))

    def add(self, ent: Entity) -> None:
        known = ent.id in self.entities
        self.entities[ent.id] = ent
        for name in (ent.name, *ent.aliases):
            for table, key in (
                (self.by_key, normalize_name(name)),
                (self.by_fold, _fold(name)),
            ):
                if ent.id not in table[key]:
                    table[key].append(ent.id)
        if not known:
            if len(ent.name.split()) > 1:
                self.by_initials[_initials(ent.name)].append(ent.id)
            for token in _tokens(ent.name):
                self.by_token[token].add(ent.id)

    def candidates(self, raw: RawMention) -> list[Entity]:
        """Known entities close enough in spelling to be worth an embedding comparison."""
        key = normalize_name(raw.text)
        ids: set[EntityId] = set()
        for token in _tokens(raw.text):
            ids |= self.by_token.get(token, set())
        out = []
        for eid in ids:
            cand = self.entities[eid]
            cand_key = normalize_name(cand.name)
            if (
                _compatible(cand.type, raw.label)
                and _numbers(cand_key) == _numbers(key)
                and fuzz.token_set_ratio(key, cand_key) >= 80
            ):
                out.append(cand)
        return out

    def find(self, table: dict[str, list[EntityId]], key: str, label: str) -> Entity | None:
        for eid in table.get(key, ()):
            ent = self.entities[eid]
            if _compatible(ent.type, label):
                return ent
        return None


class EntityResolver:
    """Turns raw chunk extractions into resolved :class:`DocumentGraph` objects.

    Args:
        embed: optional callable turning names into unit vectors; when given, names that
            no rule matched are merged with a known entity of a compatible type whose name
            vector has cosine similarity >= ``threshold``.
        threshold: embedding similarity needed to merge.
        names_kept: name vectors kept across batches (oldest dropped first): a name is
            compared again in later batches as the corpus grows, and a vector is a function
            of the name alone, so it is embedded once.
    """

    def __init__(
        self,
        *,
        embed: EmbedNames | None = None,
        threshold: float = 0.92,
        names_kept: int = 32_768,
    ) -> None:
        self._embed = embed
        self.threshold = threshold
        self.names_kept = names_kept
        self._registries: dict[str, _Registry] = {}
        self._registry = _Registry()
        self._scope = ""
        self._vectors: dict[str, np.ndarray] = {}

    @staticmethod
    def scope_of(document: Document) -> str:
        """The scope a document's entities live in (its tenant and access list)."""
        return entity_scope(document.tenant, document.groups)

    def learn(self, scope: str, entities: Iterable[Entity]) -> None:
        """Register stored entities of ``scope`` so new mentions of that scope resolve to them.

        Entities whose id does not belong to ``scope`` are ignored, so a caller cannot
        leak one scope's names into another by passing too much.
        """
        registry = self._registries.setdefault(scope, _Registry())
        for ent in entities:
            if entity_id(ent.name, ent.type, scope=scope) == ent.id:
                registry.add(ent)

    def knows(self, scope: str) -> bool:
        """Whether entities of ``scope`` have been learned or resolved since the last forget."""
        return scope in self._registries

    def forget(self, scope: str | None = None) -> None:
        """Drop what was learned about one scope (or every scope), e.g. after deletes."""
        if scope is None:
            self._registries.clear()
        else:
            self._registries.pop(scope, None)

    def resolve_batch(
        self, items: Sequence[tuple[Document, Sequence[ChunkExtraction]]]
    ) -> list[DocumentGraph]:
        """Resolve several documents.

        The names the batch will compare are embedded first, in one call (the model's cost
        is per call as much as per name): each mention no rule will match that shares a
        word with a known name or an earlier name of the batch, and the known names it
        will be compared with. Names the batch introduces later are embedded as needed.
        """
        self._prefetch(items)
        return [self.resolve(doc, extractions) for doc, extractions in items]

    def _prefetch(self, items: Sequence[tuple[Document, Sequence[ChunkExtraction]]]) -> None:
        if self._embed is None:
            return
        needed: list[str] = []
        keys: set[str] = set()
        words: set[str] = set()
        for doc, extractions in items:
            registry = self._registries.get(self.scope_of(doc), _Registry())
            for raw in (raw for ext in extractions for raw in ext.mentions):
                key = normalize_name(raw.text)
                if type_family(raw.label) in _EXACT_ONLY or key in keys:
                    continue
                keys.add(key)
                if registry.find(registry.by_key, key, raw.label):
                    continue  # a rule will match it: no comparison
                tokens = _tokens(raw.text)
                candidates = registry.candidates(raw)
                if candidates or tokens & words:
                    needed += [raw.text, *(c.name for c in candidates)]
                words |= tokens
        self._embed_names(needed)

    def _embed_names(self, names: Iterable[str]) -> None:
        unique = [n for n in dict.fromkeys(names) if n not in self._vectors]
        if unique and self._embed is not None:
            self._vectors.update(zip(unique, self._embed(unique), strict=True))
            # Oldest first out; the names just embedded stay whatever the cap.
            excess = min(len(self._vectors) - self.names_kept, len(self._vectors) - len(unique))
            for name in list(itertools.islice(self._vectors, max(excess, 0))):
                del self._vectors[name]

    def resolve(self, document: Document, extractions: Sequence[ChunkExtraction]) -> DocumentGraph:
        """Resolve one document's mentions to entities of its scope and build its facts."""
        self._scope = self.scope_of(document)
        self._registry = self._registries.setdefault(self._scope, _Registry())
        resolved: dict[tuple[int, int], Entity] = {}
        surnames: dict[str, Entity] = {}
        pending: list[tuple[int, int, RawMention]] = []
        for ci, ext in enumerate(extractions):
            for mi, raw in enumerate(ext.mentions):
                ent = self._match_rules(raw, surnames)
                if ent is None:
                    pending.append((ci, mi, raw))
                else:
                    resolved[(ci, mi)] = self._record(ent, raw, surnames)
        for (ci, mi, _raw), ent in zip(
            pending, self._match_embeddings(pending, surnames), strict=True
        ):
            resolved[(ci, mi)] = ent
        about = [
            name
            for ci, ext in enumerate(extractions)
            for mi in ext.subjects
            for name in _about(ext.mentions[mi], resolved[(ci, mi)])
        ]
        if about:
            document = document.model_copy(update={"about": tuple(dict.fromkeys(about))})
        return self._build(document, extractions, resolved)

    # ------------------------------------------------------------------ matching

    def _match_rules(self, raw: RawMention, surnames: dict[str, Entity]) -> Entity | None:
        reg = self._registry
        key = normalize_name(raw.text)
        found = reg.find(reg.by_key, key, raw.label)
        if found is not None:
            return found
        if raw.label == "PERSON" and " " not in key and key in surnames:
            return surnames[key]
        if _ACRONYM.match(raw.text):
            found = reg.find(reg.by_initials, raw.text.replace(".", ""), raw.label)
            if found is not None:
                return found
        if type_family(raw.label) in _EXACT_ONLY:
            return None
        return reg.find(reg.by_fold, _fold(raw.text), raw.label)

    def _match_embeddings(
        self, pending: list[tuple[int, int, RawMention]], surnames: dict[str, Entity]
    ) -> list[Entity]:
        candidates = {
            raw.text: self._registry.candidates(raw)
            for _, _, raw in pending
            if type_family(raw.label) not in _EXACT_ONLY  # compared by exact name only
        }
        if self._embed is not None:
            self._embed_names(
                name
                for text, cands in candidates.items()
                if cands
                for name in (text, *(c.name for c in cands))
            )
        out: list[Entity] = []
        for _, _, raw in pending:
            # An earlier mention of this document may have created the entity already.
            ent = self._match_rules(raw, surnames)
            if ent is None and self._embed is not None:
                ent = self._nearest(raw, candidates.get(raw.text, []))
            if ent is None:
                ent = Entity(
                    id=entity_id(raw.text, raw.label, scope=self._scope),
                    name=raw.text,
                    type=raw.label,
                )
                self._absorb_acronym(ent)
            out.append(self._record(ent, raw, surnames))
        return out

    def _nearest(self, raw: RawMention, candidates: list[Entity]) -> Entity | None:
        if type_family(raw.label) in _EXACT_ONLY or raw.text not in self._vectors:
            return None
        vector = self._vectors[raw.text]
        scored = [
            (float(self._vectors[c.name] @ vector), c.id, c)
            for c in candidates
            if c.name in self._vectors
        ]
        scored = [t for t in scored if t[0] >= self.threshold]
        return max(scored)[2] if scored else None

    def _absorb_acronym(self, ent: Entity) -> None:
        """A new long name adopts an acronym entity already known for it, as an alias."""
        reg = self._registry
        if len(ent.name.split()) < 2:
            return
        acronym = _initials(ent.name)
        for eid in reg.by_key.get(normalize_name(acronym), ()):
            if _compatible(reg.entities[eid].type, ent.type) and len(acronym) >= 2:
                reg.add(ent.model_copy(update={"aliases": (*ent.aliases, acronym)}))
                return

    def _record(self, ent: Entity, raw: RawMention, surnames: dict[str, Entity]) -> Entity:
        if normalize_name(raw.text) != normalize_name(ent.name) and raw.text not in ent.aliases:
            ent = ent.model_copy(update={"aliases": (*ent.aliases, raw.text)})
        current = self._registry.entities.get(ent.id)
        if current is not None and current.aliases != ent.aliases:
            merged = tuple(dict.fromkeys([*current.aliases, *ent.aliases]))
            ent = ent.model_copy(update={"aliases": merged})
        self._registry.add(ent)
        if ent.type == "PERSON" and " " in ent.name:
            surnames[normalize_name(ent.name.split()[-1])] = ent
        return ent

    # ------------------------------------------------------------------ building

    def _build(
        self,
        document: Document,
        extractions: Sequence[ChunkExtraction],
        resolved: dict[tuple[int, int], Entity],
    ) -> DocumentGraph:
        mentions: list[Mention] = []
        relations: dict[str, Relation] = {}
        for ci, ext in enumerate(extractions):
            chunk = ext.chunk
            for mi, raw in enumerate(ext.mentions):
                ent = resolved[(ci, mi)]
                mentions.append(
                    Mention(entity_id=ent.id, span=_span(document, chunk, raw.start, raw.end))
                )
            for raw_rel in ext.relations:
                subj = resolved[(ci, raw_rel.subject)].id
                obj = resolved[(ci, raw_rel.object)].id
                if subj == obj:
                    continue
                if raw_rel.kind == "cooccurrence" and obj < subj:
                    subj, obj = obj, subj
                rid = relation_id(subj, raw_rel.predicate, obj)
                span = _span(document, chunk, raw_rel.sentence_start, raw_rel.sentence_end)
                prior = relations.get(rid)
                if prior is None:
                    relations[rid] = Relation(
                        id=rid,
                        subject_id=subj,
                        predicate=raw_rel.predicate,
                        object_id=obj,
                        kind=raw_rel.kind,
                        confidence=raw_rel.confidence,
                        evidence=(span,),
                    )
                elif span not in prior.evidence:
                    relations[rid] = prior.model_copy(
                        update={
                            "evidence": (*prior.evidence, span),
                            "confidence": max(prior.confidence, raw_rel.confidence),
                        }
                    )
        entity_ids = dict.fromkeys(m.entity_id for m in mentions)
        return DocumentGraph(
            document=document,
            chunks=tuple(ext.chunk for ext in extractions),
            entities=tuple(self._registry.entities[e] for e in entity_ids),
            mentions=tuple(mentions),
            relations=tuple(relations.values()),
        )


def _span(document: Document, chunk: Chunk, start: int, end: int) -> Span:
    return Span(
        chunk_id=chunk.id,
        document_id=document.id,
        start=start,
        end=end,
        text=document.text[start:end],
    )
