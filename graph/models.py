"""The knowledge model: frozen pydantic types that cross every module boundary."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from graph.ids import ChunkId, DocumentId, EntityId, RelationId

__all__ = [
    "PUBLIC_GROUP",
    "Access",
    "Chunk",
    "DeleteReport",
    "Document",
    "DocumentGraph",
    "Entity",
    "GraphPath",
    "Mention",
    "Neighborhood",
    "Relation",
    "RelationKind",
    "Section",
    "Span",
    "StoreStats",
    "Tag",
    "TagKind",
]

#: Group stored for documents that carry no access list: readable by the whole tenant.
PUBLIC_GROUP = "*"

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s*][^\s]*$")]

#: What a chunk tag classifies: personal data, or text aimed at a model.
TagKind = Literal["pii", "injection"]

RelationKind = Literal[
    "svo", "copula", "appositive", "possessive", "preposition", "cooccurrence", "model"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Access(_Frozen):
    """Who is reading: a tenant and the groups the caller belongs to.

    ``Access.admin()`` reads everything (local operators, migrations). Everyone else reads a
    document when it belongs to their tenant and it is public within the tenant or shares a
    group with them.
    """

    tenant: Name | None
    groups: frozenset[Name] = frozenset()

    @classmethod
    def admin(cls) -> Access:
        """Unrestricted access, for local operators only."""
        return cls(tenant=None)

    @property
    def is_admin(self) -> bool:
        """Whether this access sees every tenant."""
        return self.tenant is None

    def readable_groups(self) -> list[str]:
        """Stored group values this caller may read (their groups plus the public marker)."""
        return sorted({PUBLIC_GROUP, *self.groups})

    def can_read(self, tenant: str, groups: Iterable[str]) -> bool:
        """Whether a document with this tenant and stored groups is readable."""
        if self.tenant is None:
            return True
        if tenant != self.tenant:
            return False
        return any(g == PUBLIC_GROUP or g in self.groups for g in groups)


class Section(_Frozen):
    """Where a part of a document sits in its source: a page label and/or a heading.

    ``start``/``end`` are offsets into the document text; a document's sections are sorted
    by ``start`` and do not overlap.
    """

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    page: str | None = Field(default=None, max_length=64)
    heading: str | None = Field(default=None, max_length=500)


class Document(_Frozen):
    """One version of a source document.

    ``groups`` is the access list as stored: ``("*",)`` when the document is public within
    its tenant.
    """

    id: DocumentId
    source: str = Field(min_length=1, max_length=2000)
    title: str
    version: int = Field(ge=1)
    tenant: Name
    groups: tuple[str, ...] = (PUBLIC_GROUP,)
    content_hash: str
    ingested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    text: str
    sections: tuple[Section, ...] = ()
    #: Names the text says the document is about (the grammatical subject of its
    #: opening sentence, as written and as resolved), read at ingest. Pages are found by
    #: these as by the title, so documents titled by file name or topic still have them.
    about: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _sections_fit(self) -> Document:
        last = 0
        for section in self.sections:
            if section.start < last or section.end < section.start or section.end > len(self.text):
                raise ValueError(
                    "document sections must be sorted, non-overlapping spans of the text"
                )
            last = section.end
        return self

    @property
    def access_groups(self) -> tuple[str, ...]:
        """The access list as the user gave it (empty when public within the tenant)."""
        return tuple(g for g in self.groups if g != PUBLIC_GROUP)

    def section_at(self, offset: int) -> Section | None:
        """The section containing ``offset``, if the document has sections."""
        starts = [s.start for s in self.sections]
        i = bisect.bisect_right(starts, offset) - 1
        if i >= 0 and offset < self.sections[i].end:
            return self.sections[i]
        return None


class Tag(_Frozen):
    """A classification of a span of a chunk, in document offsets.

    ``kind`` is ``"pii"`` (``type`` is the personal-data type, such as ``EMAIL_ADDRESS``,
    ``score`` the detector's confidence) or ``"injection"`` (text aimed at a model;
    ``type`` is the rule that matched, such as ``override``).
    """

    kind: TagKind
    type: str = Field(min_length=1, max_length=64)
    start: int = Field(ge=0)
    end: int
    score: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Tag:
        if self.end <= self.start:
            raise ValueError("a tag covers at least one character")
        return self


class Chunk(_Frozen):
    """A contiguous span of a document: ``document.text[start:end] == text``.

    ``tags`` classify spans inside it (personal data, text aimed at a model).
    """

    id: ChunkId
    document_id: DocumentId
    index: int = Field(ge=0)
    start: int = Field(ge=0)
    end: int
    text: str
    tags: tuple[Tag, ...] = ()

    @model_validator(mode="after")
    def _span_matches(self) -> Chunk:
        if self.end - self.start != len(self.text):
            raise ValueError("chunk span length does not match its text")
        if any(t.start < self.start or t.end > self.end for t in self.tags):
            raise ValueError("a chunk's tags must lie inside the chunk")
        return self

    def tagged(self, kind: TagKind) -> tuple[Tag, ...]:
        """This chunk's tags of one kind."""
        return tuple(t for t in self.tags if t.kind == kind)


class Span(_Frozen):
    """An exact piece of source text, in document offsets."""

    chunk_id: ChunkId
    document_id: DocumentId
    start: int = Field(ge=0)
    end: int
    text: str

    @model_validator(mode="after")
    def _length_matches(self) -> Span:
        if self.end - self.start != len(self.text):
            raise ValueError("span length does not match its text")
        return self


class Entity(_Frozen):
    """A resolved entity: canonical name, type and the other names it goes by."""

    id: EntityId
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()


class Mention(_Frozen):
    """An entity mentioned at an exact span of a chunk."""

    entity_id: EntityId
    span: Span


class Relation(_Frozen):
    """A fact ``subject —predicate→ object`` with the sentences that state it.

    Co-occurrence facts are undirected; their subject is the entity with the smaller id.
    """

    id: RelationId
    subject_id: EntityId
    predicate: str = Field(min_length=1)
    object_id: EntityId
    kind: RelationKind
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: tuple[Span, ...] = Field(min_length=1)


class DocumentGraph(_Frozen):
    """Everything extracted from one document: the unit a store writes atomically."""

    document: Document
    chunks: tuple[Chunk, ...]
    entities: tuple[Entity, ...]
    mentions: tuple[Mention, ...]
    relations: tuple[Relation, ...]


class Neighborhood(_Frozen):
    """A bounded subgraph around some entities."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]
    truncated: bool = False


class GraphPath(_Frozen):
    """A chain of facts linking two entities: ``entity_ids[i]`` and ``entity_ids[i + 1]``
    are the ends of ``relations[i]`` (in either direction)."""

    entity_ids: tuple[EntityId, ...]
    relations: tuple[Relation, ...]


class DeleteReport(_Frozen):
    """What deleting documents removed."""

    documents: int = 0
    chunks: int = 0
    mentions: int = 0
    relations: int = 0
    entities: int = 0


class StoreStats(_Frozen):
    """Counts of what a caller can see in a graph store."""

    documents: int
    chunks: int
    entities: int
    mentions: int
    relations: int
