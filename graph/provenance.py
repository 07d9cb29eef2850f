"""Answers and their provenance chains: claim → graph facts → chunk spans → documents."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.ids import ChunkId, DocumentId, EntityId, RelationId

__all__ = [
    "Answer",
    "Claim",
    "DocumentRef",
    "Evidence",
    "FactRef",
    "LinkedEntity",
    "Signal",
    "SpanRef",
    "Verdict",
]

Verdict = Literal["supported", "unsupported", "contradicted"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FactRef(_Frozen):
    """A cited graph fact."""

    relation_id: RelationId
    subject_id: EntityId
    subject: str
    predicate: str
    object_id: EntityId
    object: str


class SpanRef(_Frozen):
    """A cited piece of source text: ``document.text[start:end] == text``.

    ``page`` and ``section`` say where the span sits in the source file when the reader
    knew (PDF page labels, DOCX page breaks, Markdown and HTML headings).
    """

    chunk_id: ChunkId
    document_id: DocumentId
    start: int = Field(ge=0)
    end: int
    text: str
    page: str | None = None
    section: str | None = None


class DocumentRef(_Frozen):
    """The document a span comes from, at the version that was cited."""

    document_id: DocumentId
    title: str
    version: int
    source: str


class Claim(_Frozen):
    """One statement of an answer with its provenance chain and the validator's verdict."""

    text: str
    facts: tuple[FactRef, ...] = ()
    spans: tuple[SpanRef, ...] = ()
    documents: tuple[DocumentRef, ...] = ()
    verdict: Verdict = "unsupported"
    reason: str = "not validated yet"


class Signal(_Frozen):
    """Why a retriever returned a chunk."""

    rank: int = Field(ge=1)
    score: float
    entities: tuple[str, ...] = ()
    relations: tuple[RelationId, ...] = ()


class Evidence(_Frozen):
    """One retrieved chunk with the signals that found it (dense, sparse, graph)."""

    chunk_id: ChunkId
    document_id: DocumentId
    score: float
    signals: dict[str, Signal]


class LinkedEntity(_Frozen):
    """A question phrase linked to a graph entity, and how."""

    mention: str
    entity_id: EntityId
    name: str
    type: str
    method: Literal["exact", "alias", "fuzzy", "embedding"]
    score: float


class Answer(_Frozen):
    """An answer: text, validated claims, the evidence behind them, and timings."""

    question: str
    answer: str
    mode: str
    claims: tuple[Claim, ...]
    evidence: tuple[Evidence, ...]
    entities: tuple[LinkedEntity, ...] = ()
    timings_ms: dict[str, float] = Field(default_factory=dict)
