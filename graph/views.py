"""Read views of the graph: facts with their entities' names, entity details, paths.

These are what every surface shows (the HTTP API, the CLI, agent tools, MCP,
notebooks): one shape each, built in one place (``engine.browse.GraphBrowser``) so no
surface rebuilds "a fact with its names" on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.communities import CommunityId
from graph.ids import EntityId, RelationId
from graph.models import Chunk, Document, Entity, Relation, RelationKind, Span
from graph.provenance import Evidence, FactRef, SpanRef

__all__ = [
    "CitedLine",
    "CommunityView",
    "EntityDetail",
    "FactView",
    "NeighborhoodView",
    "PathView",
    "Source",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FactView(_Frozen):
    """A fact with the names of its two entities and the sentences that state it."""

    id: RelationId
    subject_id: EntityId
    subject: str
    predicate: str
    object_id: EntityId
    object: str
    kind: RelationKind
    confidence: float
    evidence: tuple[Span, ...]

    @classmethod
    def of(cls, fact: Relation, names: Mapping[EntityId, str]) -> FactView:
        """``fact`` with names from ``names`` (an entity the caller cannot see keeps its id)."""
        return cls(
            id=fact.id,
            subject_id=fact.subject_id,
            subject=names.get(fact.subject_id, fact.subject_id),
            predicate=fact.predicate,
            object_id=fact.object_id,
            object=names.get(fact.object_id, fact.object_id),
            kind=fact.kind,
            confidence=fact.confidence,
            evidence=fact.evidence,
        )


class EntityDetail(_Frozen):
    """An entity with where it is mentioned and the facts that touch it."""

    entity: Entity
    mentions: tuple[Span, ...]
    facts: tuple[FactView, ...]


class NeighborhoodView(_Frozen):
    """The bounded subgraph around some entities (``centres``), facts named.

    ``truncated`` is true when the limit left out entities or facts within the depth.
    """

    centres: tuple[Entity, ...]
    entities: tuple[Entity, ...]
    facts: tuple[FactView, ...]
    truncated: bool = False


class PathView(_Frozen):
    """A chain of facts: ``entities[i]`` and ``entities[i + 1]`` are the ends of
    ``facts[i]`` (in either direction)."""

    entities: tuple[Entity, ...]
    facts: tuple[FactView, ...]


class Source(_Frozen):
    """A piece of evidence with the chunk and document it points at."""

    evidence: Evidence
    chunk: Chunk
    document: Document


class CitedLine(_Frozen):
    """One line of a community summary with the exact source spans it rests on
    (``document.text[start:end] == text`` for each span) and, for a fact, the fact."""

    kind: Literal["entity", "fact", "sentence"]
    text: str
    spans: tuple[SpanRef, ...] = Field(min_length=1)
    facts: tuple[FactRef, ...] = ()


class CommunityView(_Frozen):
    """A community of the entity graph as a caller sees it: its most central members and a
    summary whose every line is cited.

    ``size`` counts its members, ``documents`` and ``passages`` the documents and chunks
    that mention them;
    ``children`` are its parts one level down (level 0 is the coarsest).
    """

    id: CommunityId
    level: int
    parent: CommunityId | None
    children: tuple[CommunityId, ...]
    name: str
    size: int
    documents: int
    passages: int
    members: tuple[Entity, ...]
    summary: tuple[CitedLine, ...]
