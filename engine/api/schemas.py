"""The API's request and response models, and the one place typed views become them.

Routes return these models; :func:`document_out`, :func:`entity_detail_out`,
:func:`subgraph_out`, :func:`path_out` and :func:`search_hit` turn the browse layer's
views (:mod:`graph.views`) and stored records into them, so every endpoint shows an
entity, a fact or a span the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.ingest import IngestReport
from engine.keys import ApiKey
from engine.views import DocumentPrivacy
from graph import Document, Entity, Span
from graph.views import EntityDetail as EntityDetailView
from graph.views import FactView, NeighborhoodView, PathView, Source

__all__ = [
    "AskRequest",
    "DeleteOut",
    "DocumentIn",
    "DocumentList",
    "DocumentOut",
    "EntityDetail",
    "EntityList",
    "EntityOut",
    "ErrorBody",
    "FactOut",
    "FeedbackIn",
    "FeedbackOut",
    "GraphEdge",
    "GraphNode",
    "Health",
    "IngestRequest",
    "JobOut",
    "KeyIn",
    "KeyList",
    "KeyOut",
    "MentionOut",
    "NewKeyOut",
    "PathList",
    "PathOut",
    "SearchHit",
    "SearchOut",
    "SearchRequest",
    "SectionOut",
    "Subgraph",
    "document_out",
    "entity_detail_out",
    "entity_out",
    "fact_out",
    "key_out",
    "mention_out",
    "path_out",
    "search_hit",
    "subgraph_out",
]

Mode = Literal["threadline", "single", "dense"]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s*][^\s]*$")]


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(examples=["not_found"])
    message: str = Field(examples=["no document doc_1234 you can read"])
    detail: Any = None


class DocumentIn(BaseModel):
    """One document to ingest."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=2000, description="your id; re-sending replaces")
    title: str = Field(default="", max_length=2000)
    text: str = Field(min_length=1)


class IngestRequest(BaseModel):
    """Documents to ingest for the key's tenant (admins may name a tenant)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "documents": [
                        {"id": "memo-1", "title": "Memo", "text": "Ada Lovelace met Babbage."}
                    ],
                    "groups": ["research"],
                }
            ]
        },
    )

    documents: list[DocumentIn] = Field(min_length=1, max_length=10_000)
    groups: list[Name] = Field(default_factory=list, max_length=100)
    tenant: Name | None = Field(default=None, description="admin keys only")


class JobOut(BaseModel):
    """An ingest job; poll ``GET /v1/jobs/{id}`` until it has finished."""

    id: str
    status: Literal["queued", "running", "succeeded", "failed"]
    tenant: str
    groups: list[str] = Field(
        default_factory=list, description="the access groups written; empty: tenant-wide"
    )
    done: int = 0
    total: int = 0
    report: IngestReport | None = None
    error: ErrorBody | None = None
    created_at: datetime
    finished_at: datetime | None = None


class SectionOut(BaseModel):
    start: int
    end: int
    page: str | None = None
    heading: str | None = None


class DocumentOut(BaseModel):
    id: str
    source: str
    title: str
    version: int
    tenant: str
    groups: list[str]
    ingested_at: datetime
    chars: int
    sections: list[SectionOut] = []
    about: list[str] = Field(
        default=[],
        description="what the document's opening sentence is about (the names its pages "
        "are found by, besides the title)",
    )
    text: str | None = None
    privacy: DocumentPrivacy | None = Field(
        default=None,
        description="personal data counted per type, contains_pii, and the spans flagged as "
        "text aimed at a model (one document's view only)",
    )


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class DeleteOut(BaseModel):
    documents: int
    chunks: int
    mentions: int
    relations: int
    entities: int


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "Who designed the Analytical Engine?", "k": 5}]
        },
    )

    question: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Mode = "threadline"
    stream: bool = Field(default=False, description="Server-Sent Events instead of one JSON")
    llm: bool | None = Field(
        default=None,
        description="the configured model writes the answer (default: THREADLINE_MODEL__SYNTHESIS)",
    )
    unsupported: bool = Field(
        default=False, description="keep claims the validator did not support (flagged)"
    )
    stream_draft: bool = Field(
        default=False,
        description="with stream: also send the unvalidated draft as it is written (token "
        'and answer events marked "unverified": true); otherwise only validated content '
        "is sent",
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"query": "Analytical Engine designer", "k": 10}]},
    )

    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=10, ge=1, le=100)
    mode: Mode = "threadline"


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    title: str
    score: float
    start: int
    end: int
    text: str
    page: str | None = None
    section: str | None = None
    signals: dict[str, Any]


class SearchOut(BaseModel):
    hits: list[SearchHit]


class EntityOut(BaseModel):
    id: str
    name: str
    type: str
    aliases: list[str] = []


class EntityList(BaseModel):
    entities: list[EntityOut]


class MentionOut(BaseModel):
    chunk_id: str
    document_id: str
    start: int
    end: int
    text: str


class FactOut(BaseModel):
    id: str
    subject: str
    predicate: str
    object: str
    kind: str
    confidence: float
    evidence: list[MentionOut]


class EntityDetail(BaseModel):
    entity: EntityOut
    mentions: list[MentionOut]
    facts: list[FactOut]


class GraphNode(BaseModel):
    id: str
    label: str
    type: str


class GraphEdge(BaseModel):
    id: str
    source: str
    target: str
    predicate: str
    kind: str
    confidence: float
    evidence: int


class Subgraph(BaseModel):
    """Nodes and edges, ready for a graph widget."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool


class PathOut(BaseModel):
    entities: list[EntityOut]
    facts: list[FactOut]


class PathList(BaseModel):
    paths: list[PathOut]


class FeedbackSpan(BaseModel):
    """A span the rated answer cited (from its claims' ``spans``): ids and offsets only."""

    model_config = ConfigDict(extra="forbid")

    document_id: str = Field(max_length=200)
    chunk_id: str = Field(max_length=200)
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "Who designed the Analytical Engine?",
                    "answer": "Charles Babbage",
                    "rating": 5,
                    "comment": "right, and the page citation helped",
                }
            ]
        },
    )

    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(default="", max_length=20_000)
    rating: int = Field(ge=1, le=5, description="1 (wrong) to 5 (right and well sourced)")
    comment: str = Field(default="", max_length=5000)
    request_id: str | None = Field(default=None, max_length=128)
    spans: list[FeedbackSpan] = Field(
        default_factory=list, max_length=50, description="the spans the rated answer cited"
    )


class FeedbackOut(BaseModel):
    id: str


class KeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tenant": "acme", "groups": ["research"], "name": "bi"}]},
    )

    tenant: Name | None = None
    groups: list[Name] = Field(default_factory=list, max_length=100)
    admin: bool = False
    name: str = Field(default="", max_length=200)
    permissions: list[Literal["write:tenant", "pii"]] = Field(
        default_factory=list,
        max_length=10,
        description=(
            "write:tenant lets a key with groups write documents public within its tenant "
            "(an ingest without groups); pii lets it read personal data unmasked (without "
            "it, e-mail addresses, phone numbers and other identifiers come back masked); "
            "admin keys hold every permission"
        ),
    )


class KeyOut(BaseModel):
    id: str
    name: str
    tenant: str | None
    groups: list[str]
    admin: bool
    permissions: list[str] = []
    created_at: datetime
    revoked_at: datetime | None = None


class NewKeyOut(BaseModel):
    key: KeyOut
    secret: str = Field(description="the API key; shown once, not stored")


class KeyList(BaseModel):
    keys: list[KeyOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# ---------------------------------------------------------------------------- views


def document_out(
    doc: Document, *, text: bool = False, privacy: DocumentPrivacy | None = None
) -> DocumentOut:
    """A stored document (with its text when ``text``, its tags' view when given)."""
    return DocumentOut(
        id=doc.id,
        source=doc.source,
        title=doc.title,
        version=doc.version,
        tenant=doc.tenant,
        groups=list(doc.access_groups),
        ingested_at=doc.ingested_at,
        chars=len(doc.text),
        sections=[SectionOut(**s.model_dump()) for s in doc.sections],
        about=list(doc.about),
        text=doc.text if text else None,
        privacy=privacy,
    )


def entity_out(ent: Entity) -> EntityOut:
    """An entity with its aliases."""
    return EntityOut(id=ent.id, name=ent.name, type=ent.type, aliases=list(ent.aliases))


def mention_out(span: Span) -> MentionOut:
    """A span of a chunk: a mention, or a sentence that states a fact."""
    return MentionOut(
        chunk_id=span.chunk_id,
        document_id=span.document_id,
        start=span.start,
        end=span.end,
        text=span.text,
    )


def fact_out(fact: FactView) -> FactOut:
    """A fact named by its entities, with its evidence spans."""
    return FactOut(
        id=fact.id,
        subject=fact.subject,
        predicate=fact.predicate,
        object=fact.object,
        kind=fact.kind,
        confidence=fact.confidence,
        evidence=[mention_out(s) for s in fact.evidence],
    )


def entity_detail_out(detail: EntityDetailView) -> EntityDetail:
    """An entity with its mentions and facts."""
    return EntityDetail(
        entity=entity_out(detail.entity),
        mentions=[mention_out(m) for m in detail.mentions],
        facts=[fact_out(f) for f in detail.facts],
    )


def subgraph_out(hood: NeighborhoodView) -> Subgraph:
    """A neighbourhood as nodes and edges for a graph widget."""
    return Subgraph(
        nodes=[GraphNode(id=e.id, label=e.name, type=e.type) for e in hood.entities],
        edges=[
            GraphEdge(
                id=f.id,
                source=f.subject_id,
                target=f.object_id,
                predicate=f.predicate,
                kind=f.kind,
                confidence=f.confidence,
                evidence=len(f.evidence),
            )
            for f in hood.facts
        ],
        truncated=hood.truncated,
    )


def path_out(path: PathView) -> PathOut:
    """A chain of facts with the entities along it."""
    return PathOut(
        entities=[entity_out(e) for e in path.entities], facts=[fact_out(f) for f in path.facts]
    )


def search_hit(source: Source) -> SearchHit:
    """A retrieved chunk with its document, score and the signals that found it."""
    chunk, doc, evidence = source.chunk, source.document, source.evidence
    section = doc.section_at(chunk.start)
    return SearchHit(
        chunk_id=chunk.id,
        document_id=doc.id,
        title=doc.title,
        score=evidence.score,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        page=section.page if section else None,
        section=section.heading if section else None,
        signals={k: s.model_dump(mode="json") for k, s in evidence.signals.items()},
    )


def key_out(key: ApiKey) -> KeyOut:
    """A key record (never the secret)."""
    return KeyOut(**key.model_dump())
