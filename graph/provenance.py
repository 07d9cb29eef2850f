"""Answers and their provenance chains: claim → graph facts → chunk spans → documents."""

from __future__ import annotations

from html import escape
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graph.ids import ChunkId, DocumentId, EntityId, RelationId
from graph.models import Document, Entity, Relation

__all__ = [
    "Answer",
    "Binding",
    "Claim",
    "DocumentRef",
    "Evidence",
    "FactRef",
    "LinkedEntity",
    "Signal",
    "SpanRef",
    "StepKind",
    "StepTrace",
    "Verdict",
]

Verdict = Literal["supported", "unsupported", "contradicted"]
StepKind = Literal["link", "traverse", "path", "lookup", "read", "compare", "answer"]


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

    @classmethod
    def of(cls, fact: Relation, subject: Entity | None, obj: Entity | None) -> FactRef:
        """A citation of ``fact``, its ends named (an entity not given keeps its id)."""
        return cls(
            relation_id=fact.id,
            subject_id=fact.subject_id,
            subject=subject.name if subject else fact.subject_id,
            predicate=fact.predicate,
            object_id=fact.object_id,
            object=obj.name if obj else fact.object_id,
        )


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

    @classmethod
    def of(cls, doc: Document, chunk: ChunkId, start: int, end: int, text: str) -> SpanRef:
        """A citation of ``doc.text[start:end]`` with the page and heading it sits under."""
        section = doc.section_at(start)
        return cls(
            chunk_id=chunk,
            document_id=doc.id,
            start=start,
            end=end,
            text=text,
            page=section.page if section else None,
            section=section.heading if section else None,
        )


class DocumentRef(_Frozen):
    """The document a span comes from, at the version that was cited."""

    document_id: DocumentId
    title: str
    version: int
    source: str
    #: What the document's opening sentence is about (``Document.about``).
    about: tuple[str, ...] = ()

    @classmethod
    def of(cls, doc: Document) -> DocumentRef:
        """A citation of ``doc`` at its current version."""
        return cls(
            document_id=doc.id,
            title=doc.title,
            version=doc.version,
            source=doc.source,
            about=doc.about,
        )


class Claim(_Frozen):
    """One statement of an answer with its provenance chain and the validator's verdict."""

    text: str
    facts: tuple[FactRef, ...] = ()
    spans: tuple[SpanRef, ...] = ()
    documents: tuple[DocumentRef, ...] = ()
    verdict: Verdict = "unsupported"
    reason: str = "not validated yet"
    citations_valid: bool | None = Field(
        default=None,
        description="whether every cited span and fact exists, matches the stored text and "
        "may be read (null: not validated yet); the verdict says whether the text follows",
    )
    communities: tuple[str, ...] = Field(
        default=(), description="the communities a corpus-wide answer's point was drawn from"
    )
    support: int | None = Field(
        default=None,
        description="passages (chunks) behind the point's communities (corpus-wide answers; "
        "points are ordered by it)",
    )


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


class Binding(_Frozen):
    """One candidate a step produced: an entity (with its page) or a value."""

    name: str
    score: float
    entity_id: str | None = None
    chunk_id: str | None = Field(default=None, description="the page the candidate was read on")
    sentence: tuple[int, int] | None = Field(
        default=None, description="document offsets of the sentence that named it"
    )
    home: str | None = Field(default=None, description="the candidate's own page (chunk id)")
    via: str | None = Field(default=None, description="the binding of the subject it came from")


class StepTrace(_Frozen):
    """What a step did: ``{"id", "kind", "depends_on", "input", "output", "evidence", "ms"}``."""

    id: str
    kind: StepKind
    depends_on: tuple[str, ...]
    input: dict[str, Any]
    output: tuple[Binding, ...]
    evidence: tuple[str, ...] = Field(default=(), description="chunk and fact ids used")
    ms: float
    note: str = ""


class Answer(_Frozen):
    """An answer: text, validated claims, the evidence behind them, and timings."""

    question: str
    answer: str
    mode: str
    claims: tuple[Claim, ...]
    evidence: tuple[Evidence, ...]
    entities: tuple[LinkedEntity, ...] = ()
    timings_ms: dict[str, float] = Field(default_factory=dict)
    plan: tuple[StepTrace, ...] = Field(
        default=(), description="the executed query plan, step by step (threadline mode)"
    )
    plan_note: str = ""
    synthesis: Literal["extractive", "model"] = "extractive"
    synthesis_note: str = Field(
        default="", description="why a model answer was not used (the extractive one was)"
    )
    model: str | None = Field(default=None, description="the model that wrote the answer")
    prompts: tuple[str, ...] = Field(default=(), description="ids (name@version) of prompts used")
    usage: dict[str, int] = Field(
        default_factory=dict, description="model tokens: prompt_tokens, completion_tokens, calls"
    )
    removed_claims: int = Field(
        default=0,
        description="unsupported claims left out of the answer (ask for them to see them)",
    )
    answer_verdict: Verdict | None = Field(
        default=None,
        description="whether the answer follows from the supported claims (null: no answer "
        "was found, so there is nothing to verify)",
    )
    answer_reason: str = Field(default="", description="why the answer has its verdict")
    warnings: tuple[str, ...] = Field(
        default=(),
        description="what the caller should know about how the question was handled (for "
        "example: the question held text aimed at a model, which was left out)",
    )

    def _repr_html_(self) -> str:
        """The answer in a notebook: the text, then each claim with its chain, collapsible."""
        colours = {"supported": "#2e7d32", "contradicted": "#c62828", "unsupported": "#b26a00"}
        parts = [
            f"<div><div style='color:#666'>{escape(self.question)}</div>",
            "<div style='font-size:1.3em;font-weight:600;margin:4px 0'>"
            f"<span style='color:{colours.get(self.answer_verdict or '', '#555')};"
            "font-size:0.7em;margin-right:6px'>"
            f"{escape((self.answer_verdict or 'not found').upper())}</span>"
            f"{escape(self.answer)}</div>",
            f"<div style='color:#666;font-size:0.85em'>{escape(self.answer_reason)}</div>",
            f"<div style='color:#666;font-size:0.85em'>mode {escape(self.mode)} · "
            f"{escape(self.synthesis)} · {len(self.evidence)} evidence chunks · "
            f"{self.timings_ms.get('total', 0):.0f} ms</div>",
        ]
        for n, claim in enumerate(self.claims, 1):
            colour = colours.get(claim.verdict, "#555")
            rows = [
                f"<li>fact <b>{escape(f.subject)}</b> —{escape(f.predicate)}→ "
                f"<b>{escape(f.object)}</b> <code>{escape(f.relation_id)}</code></li>"
                for f in claim.facts
            ]
            rows += [
                f"<li>span <code>{escape(s.document_id)} [{s.start}:{s.end}]</code> "
                f"“{escape(s.text)}”</li>"
                for s in claim.spans
            ]
            rows += [
                f"<li>document {escape(d.title)} (v{d.version}, "
                f"<code>{escape(d.source)}</code>)</li>"
                for d in claim.documents
            ]
            parts.append(
                f"<details style='margin:4px 0'><summary><span style='color:{colour};"
                f"font-weight:600'>{n}. {claim.verdict}</span> {escape(claim.text)}</summary>"
                f"<div style='color:#666;font-size:0.85em'>{escape(claim.reason)}</div>"
                f"<ul>{''.join(rows)}</ul></details>"
            )
        if self.plan:
            steps = "".join(
                f"<li>{escape(s.id)} {escape(s.kind)} → "
                f"{escape(', '.join(b.name for b in s.output[:3]) or '—')}</li>"
                for s in self.plan
            )
            summary = f"<summary>plan ({len(self.plan)} steps)</summary>"
            parts.append(f"<details>{summary}<ul>{steps}</ul></details>")
        parts.append("</div>")
        return "".join(parts)
