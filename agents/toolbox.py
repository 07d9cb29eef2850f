"""What a research agent calls: the :class:`Toolbox` seam and its typed results.

Every tool returns one of the result models below (or :class:`ToolError` for a bad call,
which an agent can read and correct); their JSON (``model_dump(mode="json")``) is what
agent frameworks and MCP clients see. Every result carries provenance: answers with
their validated claims, chunks with their document and offsets, facts with the
sentences that state them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from graph import ChunkId, DocumentId, Entity, Span
from graph.provenance import Claim, FactRef, SpanRef, StepKind
from graph.views import CommunityView, FactView, NeighborhoodView, PathView

__all__ = [
    "AskResult",
    "ChunkHit",
    "CommunitiesResult",
    "EntityResult",
    "FactsResult",
    "NeighborhoodView",
    "PathsResult",
    "PlanStepBrief",
    "SearchResult",
    "ToolError",
    "ToolResult",
    "Toolbox",
    "community_claims",
    "fact_claim",
]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolError(_Result):
    """A call that could not run: unknown tool, bad arguments, nothing found."""

    error: str


class PlanStepBrief(_Result):
    """One step of an answer's plan: what it looked for and the best bindings it found."""

    id: str
    kind: StepKind
    input: dict[str, Any]
    output: tuple[str, ...]


class AskResult(_Result):
    """An answer with its validated claims and the plan that found it."""

    question: str
    answer: str
    claims: tuple[Claim, ...]
    plan: tuple[PlanStepBrief, ...]
    plan_note: str


class ChunkHit(_Result):
    """A retrieved chunk with its document, offsets and the signals that found it."""

    chunk_id: ChunkId
    document_id: DocumentId
    title: str
    version: int
    start: int
    end: int
    text: str
    score: float
    found_by: tuple[str, ...]
    flags: tuple[str, ...] = Field(
        default=(), description="rules that flagged the chunk as text aimed at a model"
    )


class SearchResult(_Result):
    """The chunks that best match a query."""

    query: str
    chunks: tuple[ChunkHit, ...]


class EntityResult(_Result):
    """An entity and where it is mentioned."""

    entity: Entity
    mentions: tuple[Span, ...]


class PathsResult(_Result):
    """Shortest chains of facts between two entities."""

    source: str
    target: str
    paths: tuple[PathView, ...]


class FactsResult(_Result):
    """The facts stated about an entity."""

    entity: Entity
    facts: tuple[FactView, ...]


class CommunitiesResult(_Result):
    """Communities of the knowledge graph (groups of linked entities: the corpus's
    themes), each with its members and a summary whose every line is cited."""

    communities: tuple[CommunityView, ...]


#: What a tool call returns.
ToolResult = (
    AskResult
    | CommunitiesResult
    | SearchResult
    | EntityResult
    | NeighborhoodView
    | PathsResult
    | FactsResult
    | ToolError
)


class Toolbox(Protocol):
    """What the agent calls: tools by name, and the validator."""

    def specs(self) -> list[dict[str, Any]]:
        """OpenAI-format tool definitions."""
        ...

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """A tool's result (:class:`ToolError` for bad calls; nothing is raised for them)."""
        ...

    async def validate(self, claims: Sequence[Claim]) -> list[Claim]:
        """Verdicts for claims, read as the caller."""
        ...


def fact_claim(fact: FactView) -> Claim | None:
    """A fact as a claim: its first stated sentence, citing the fact."""
    if not fact.evidence:
        return None
    span = fact.evidence[0]
    ref = FactRef(
        relation_id=fact.id,
        subject_id=fact.subject_id,
        subject=fact.subject,
        predicate=fact.predicate,
        object_id=fact.object_id,
        object=fact.object,
    )
    cited = SpanRef(
        chunk_id=span.chunk_id,
        document_id=span.document_id,
        start=span.start,
        end=span.end,
        text=span.text,
    )
    return Claim(text=span.text, facts=(ref,), spans=(cited,))


def community_claims(result: CommunitiesResult, limit: int = 12) -> list[Claim]:
    """The cited sentences of communities' summaries as claims (quoting their spans)."""
    out = [
        Claim(text=line.text, spans=line.spans, facts=line.facts)
        for view in result.communities
        for line in view.summary
        if line.kind != "entity"
    ]
    return out[:limit]
