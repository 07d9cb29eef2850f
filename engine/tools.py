"""Threadline as tools for agents: JSON-schema function definitions (the OpenAI
tool-calling format) and one dispatcher, shared by the research agent, ``threadline
mcp`` and any framework that takes OpenAI-style tools.

Every result is a typed model (:mod:`agents.toolbox`) and carries provenance: answers
come with their validated claims (facts, spans with document offsets, documents,
verdicts), chunks with their document and offsets, facts with the sentences that state
them.

A toolbox reads for one caller; unless it was made with ``pii=True`` personal data is
masked in every result and in the arguments before they are used (:mod:`engine.redaction`),
and :meth:`ThreadlineToolbox.validate` checks claims against the stored text, so claims
quoted from masked results still validate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents import Mode
from agents.toolbox import (
    AskResult,
    ChunkHit,
    CommunitiesResult,
    EntityResult,
    FactsResult,
    PathsResult,
    PlanStepBrief,
    SearchResult,
    ToolError,
    ToolResult,
)
from engine.redaction import Redactor, redactor_for
from engine.threadline import Threadline
from graph import Access, ThreadlineError
from graph.provenance import Claim
from graph.views import NeighborhoodView

__all__ = ["TOOL_ARGUMENTS", "ThreadlineToolbox", "openai_tools"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskArgs(_Args):
    """Answer a question from the knowledge base, with validated provenance chains."""

    question: str = Field(min_length=1, max_length=2000, description="the question")
    k: int = Field(default=5, ge=1, le=20, description="evidence chunks to use")
    mode: Mode = Field(default="threadline", description="threadline (planned), single or dense")


class SearchArgs(_Args):
    """Find the text chunks that best match a query (hybrid dense + keyword + graph search)."""

    query: str = Field(min_length=1, max_length=2000, description="what to look for")
    k: int = Field(default=5, ge=1, le=20, description="how many chunks")


class EntityArgs(_Args):
    """Look up an entity by name, alias or id, with where it is mentioned."""

    name: str = Field(min_length=1, max_length=300, description="entity name, alias or ent_ id")


class NeighborhoodArgs(_Args):
    """The facts around an entity: its neighbours in the knowledge graph."""

    name: str = Field(min_length=1, max_length=300, description="entity name, alias or ent_ id")
    depth: int = Field(default=1, ge=1, le=3, description="hops from the entity")
    limit: int = Field(default=20, ge=1, le=100, description="facts per hop")


class PathsArgs(_Args):
    """Shortest chains of facts connecting two entities."""

    source: str = Field(min_length=1, max_length=300, description="first entity")
    target: str = Field(min_length=1, max_length=300, description="second entity")
    max_hops: int = Field(default=3, ge=1, le=6, description="longest chain")
    limit: int = Field(default=3, ge=1, le=10, description="how many chains")


class FactsArgs(_Args):
    """The facts stated about an entity, each with the sentences that state it."""

    name: str = Field(min_length=1, max_length=300, description="entity name, alias or ent_ id")
    predicate: str | None = Field(default=None, max_length=80, description="only this relation")
    limit: int = Field(default=20, ge=1, le=100, description="how many facts")


class CommunitiesArgs(_Args):
    """The corpus as a whole: communities of linked entities (its themes), largest first,
    each with members and a cited summary. Use for questions about the whole corpus."""

    level: int | None = Field(default=0, ge=0, le=5, description="0: broadest themes")
    limit: int = Field(default=5, ge=1, le=50, description="how many communities")


#: Each tool's argument model (its docstring is the tool's description).
TOOL_ARGUMENTS: dict[str, type[_Args]] = {
    "ask": AskArgs,
    "search": SearchArgs,
    "entity": EntityArgs,
    "neighborhood": NeighborhoodArgs,
    "paths": PathsArgs,
    "facts": FactsArgs,
    "communities": CommunitiesArgs,
}


def openai_tools(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The tools as OpenAI ``tools`` entries (``{"type": "function", "function": {...}}``)."""
    out = []
    for name, model in TOOL_ARGUMENTS.items():
        if names is not None and name not in names:
            continue
        schema = model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": (model.__doc__ or "").strip(),
                    "parameters": schema,
                },
            }
        )
    return out


_SEEN_MAX = 20_000


class ThreadlineToolbox:
    """Runs the tools for one caller (``access``) against one Threadline; ``pii``: the
    caller reads personal data unmasked."""

    def __init__(self, tl: Threadline, access: Access, *, pii: bool = False) -> None:
        self.tl = tl
        self.access = access
        self.pii = pii
        self.browser = tl.browse(access)
        # What masking changed in results handed out (masked -> stored), so claims quoted
        # from them are validated against the stored text.
        self._seen: dict[str, str] = {}

    async def _redactor(self) -> Redactor:
        return await redactor_for(self.tl, self.access, pii=self.pii)

    def specs(self) -> list[dict[str, Any]]:
        """The OpenAI-format tool definitions."""
        return openai_tools()

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run a tool. Bad arguments, unknown names and names that match nothing come back
        as :class:`ToolError` (an agent can read them and try again); nothing is raised
        for them."""
        model = TOOL_ARGUMENTS.get(name)
        redact = await self._redactor()
        if model is None:
            return ToolError(
                error=f"no tool named {name!r}; the tools are {', '.join(TOOL_ARGUMENTS)}"
            )
        try:
            args = redact.scrub_input(model.model_validate(arguments))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            return ToolError(error=f"bad arguments for {name}: {where}: {first['msg']}")
        try:
            result: ToolResult = await getattr(self, f"_{name}")(args)
        except ThreadlineError as exc:
            return ToolError(error=redact.text(str(exc)))
        if len(self._seen) > _SEEN_MAX:
            self._seen.clear()
        return redact.scrub(result, seen=self._seen)

    async def call_json(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """:meth:`call` with the result as JSON data (for MCP and JSON-only frameworks)."""
        return (await self.call(name, arguments)).model_dump(mode="json")

    async def validate(self, claims: Sequence[Claim]) -> list[Claim]:
        """Verdicts for claims, read as this caller: text this toolbox handed out masked
        is checked as stored, and comes back masked."""
        redact = await self._redactor()
        stored = redact.restore(list(claims), self._seen)
        return redact.scrub(await self.tl.validator().validate(stored, self.access))

    # ------------------------------------------------------------------ tools

    async def _ask(self, args: AskArgs) -> AskResult:
        answer = await self.tl.ask(args.question, self.access, k=args.k, mode=args.mode)
        return AskResult(
            question=answer.question,
            answer=answer.answer,
            claims=answer.claims,
            plan=tuple(
                PlanStepBrief(
                    id=s.id, kind=s.kind, input=s.input, output=tuple(b.name for b in s.output[:3])
                )
                for s in answer.plan
            ),
            plan_note=answer.plan_note,
        )

    async def _search(self, args: SearchArgs) -> SearchResult:
        # Tool results go into a model's context: chunks flagged as text aimed at a model
        # are left out (THREADLINE_PRIVACY__INJECTION=exclude) or carry their flags (quote).
        exclude = self.tl.settings.privacy.injection == "exclude"
        retrieval = await self.tl.retrieve(args.query, self.access, k=args.k)
        hits = []
        for s in await self.browser.sources(retrieval.evidence):
            flags = tuple(dict.fromkeys(t.type for t in s.chunk.tagged("injection")))
            if flags and exclude:
                continue
            hits.append(
                ChunkHit(
                    chunk_id=s.chunk.id,
                    document_id=s.document.id,
                    title=s.document.title,
                    version=s.document.version,
                    start=s.chunk.start,
                    end=s.chunk.end,
                    text=s.chunk.text,
                    score=round(s.evidence.score, 5),
                    found_by=tuple(sorted(s.evidence.signals)),
                    flags=flags,
                )
            )
        return SearchResult(query=args.query, chunks=tuple(hits))

    async def _entity(self, args: EntityArgs) -> EntityResult:
        detail = await self.browser.detail(args.name, mentions=5, facts=0)
        return EntityResult(entity=detail.entity, mentions=detail.mentions)

    async def _neighborhood(self, args: NeighborhoodArgs) -> NeighborhoodView:
        hood = await self.browser.neighborhood(args.name, depth=args.depth, limit=args.limit)
        facts = tuple(f for f in hood.facts if f.kind != "cooccurrence")
        return hood.model_copy(update={"facts": facts})

    async def _paths(self, args: PathsArgs) -> PathsResult:
        paths = await self.browser.paths(
            args.source, args.target, max_hops=args.max_hops, limit=args.limit
        )
        return PathsResult(source=args.source, target=args.target, paths=tuple(paths))

    async def _communities(self, args: CommunitiesArgs) -> CommunitiesResult:
        found = await self.browser.communities(level=args.level, limit=args.limit)
        return CommunitiesResult(communities=tuple(found))

    async def _facts(self, args: FactsArgs) -> FactsResult:
        entity = await self.browser.entity(args.name)
        preds = [args.predicate] if args.predicate else []
        facts = await self.browser.facts(entity.id, predicates=preds, limit=args.limit)
        return FactsResult(entity=entity, facts=tuple(facts))
