"""Threadline as tools for agents: JSON-schema function definitions (the OpenAI
tool-calling format) and one dispatcher, shared by the research agent, ``threadline
mcp`` and any framework that takes OpenAI-style tools.

Every result is a JSON object and carries provenance: answers come with their validated
claims (facts, spans with document offsets, documents, verdicts), chunks with their
document and offsets, facts with the sentences that state them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents import Mode, ProvenanceValidator
from engine.threadline import Threadline
from graph import Access, Relation, ThreadlineError
from graph.provenance import Claim

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


#: Each tool's argument model (its docstring is the tool's description).
TOOL_ARGUMENTS: dict[str, type[_Args]] = {
    "ask": AskArgs,
    "search": SearchArgs,
    "entity": EntityArgs,
    "neighborhood": NeighborhoodArgs,
    "paths": PathsArgs,
    "facts": FactsArgs,
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


class ThreadlineToolbox:
    """Runs the tools for one caller (``access``) against one Threadline."""

    def __init__(self, tl: Threadline, access: Access | None = None) -> None:
        self.tl = tl
        self.access = access or Access(tenant=tl.settings.tenant)

    def specs(self) -> list[dict[str, Any]]:
        """The OpenAI-format tool definitions."""
        return openai_tools()

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run a tool. Bad arguments and unknown names come back as ``{"error": ...}``
        (an agent can read them and try again); nothing is raised for them."""
        model = TOOL_ARGUMENTS.get(name)
        if model is None:
            return {"error": f"no tool named {name!r}; the tools are {', '.join(TOOL_ARGUMENTS)}"}
        try:
            args = model.model_validate(arguments)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            return {"error": f"bad arguments for {name}: {where}: {first['msg']}"}
        try:
            result: dict[str, Any] = await getattr(self, f"_{name}")(args)
        except ThreadlineError as exc:
            return {"error": str(exc)}
        return result

    async def validate(self, claims: Sequence[Claim]) -> list[Claim]:
        """Verdicts for claims, read as this caller."""
        return await ProvenanceValidator(graph=self.tl.graph).validate(claims, self.access)

    # ------------------------------------------------------------------ tools

    async def _ask(self, args: AskArgs) -> dict[str, Any]:
        answer = await self.tl.ask(args.question, self.access, k=args.k, mode=args.mode)
        return {
            "question": answer.question,
            "answer": answer.answer,
            "claims": [c.model_dump(mode="json") for c in answer.claims],
            "plan": [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "input": s.input,
                    "output": [b.name for b in s.output[:3]],
                }
                for s in answer.plan
            ],
            "plan_note": answer.plan_note,
        }

    async def _search(self, args: SearchArgs) -> dict[str, Any]:
        retrieval = await self.tl.retrieve(args.query, self.access, k=args.k)
        hits = []
        for item, chunk, doc in await self.tl.sources(retrieval.evidence, self.access):
            hits.append(
                {
                    "chunk_id": chunk.id,
                    "document_id": doc.id,
                    "title": doc.title,
                    "version": doc.version,
                    "start": chunk.start,
                    "end": chunk.end,
                    "text": chunk.text,
                    "score": round(item.score, 5),
                    "found_by": sorted(item.signals),
                }
            )
        return {"query": args.query, "chunks": hits}

    async def _entity(self, args: EntityArgs) -> dict[str, Any]:
        entity = await self.tl.entity(args.name, self.access)
        mentions = await self.tl.mentions(entity.id, self.access, limit=5)
        return {
            "entity": entity.model_dump(mode="json"),
            "mentions": [m.span.model_dump(mode="json") for m in mentions],
        }

    async def _neighborhood(self, args: NeighborhoodArgs) -> dict[str, Any]:
        entity, hood = await self.tl.neighbors(
            args.name, self.access, depth=args.depth, limit=args.limit
        )
        names = {e.id: e.name for e in hood.entities}
        return {
            "entity": entity.model_dump(mode="json"),
            "entities": [e.model_dump(mode="json") for e in hood.entities],
            "facts": [_fact(r, names) for r in hood.relations if r.kind != "cooccurrence"],
            "truncated": hood.truncated,
        }

    async def _paths(self, args: PathsArgs) -> dict[str, Any]:
        paths = await self.tl.paths(
            args.source, args.target, self.access, max_hops=args.max_hops, limit=args.limit
        )
        ids = list({e for p in paths for e in p.entity_ids})
        names = {e.id: e.name for e in await self.tl.graph.entities(ids, self.access)}
        return {
            "source": args.source,
            "target": args.target,
            "paths": [
                {
                    "entities": [names.get(e, e) for e in p.entity_ids],
                    "facts": [_fact(r, names) for r in p.relations],
                }
                for p in paths
            ],
        }

    async def _facts(self, args: FactsArgs) -> dict[str, Any]:
        entity = await self.tl.entity(args.name, self.access)
        preds = [args.predicate] if args.predicate else []
        facts = await self.tl.facts(entity.id, self.access, predicates=preds, limit=args.limit)
        ids = list({e for r in facts for e in (r.subject_id, r.object_id)})
        names = {e.id: e.name for e in await self.tl.graph.entities(ids, self.access)}
        return {
            "entity": entity.model_dump(mode="json"),
            "facts": [_fact(r, names) for r in facts if r.kind != "cooccurrence"],
        }


def _fact(fact: Relation, names: dict[Any, str]) -> dict[str, Any]:
    return {
        "relation_id": fact.id,
        "subject_id": fact.subject_id,
        "subject": names.get(fact.subject_id, fact.subject_id),
        "predicate": fact.predicate,
        "object_id": fact.object_id,
        "object": names.get(fact.object_id, fact.object_id),
        "kind": fact.kind,
        "confidence": fact.confidence,
        "evidence": [s.model_dump(mode="json") for s in fact.evidence],
    }
