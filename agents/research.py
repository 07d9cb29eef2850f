"""A multi-step research agent: sub-questions, tool calls, notes with provenance, and a
short report whose every statement rests on a validated chain.

The agent works through a :class:`Toolbox` (``engine.tools.ThreadlineToolbox`` is the
one Threadline provides: ask, search, entity, neighborhood, paths, facts, plus claim
validation). With a model it runs the OpenAI tool-calling loop: the model sees the tools,
asks for calls, reads their JSON results and decides the next step, within a step and a
token budget. Without a model it follows the planner: the question is split into
sub-questions, each is asked (the query planner decomposes it further), and the facts
around each answer are read.

Either way, notes are only ever taken from validated chains — an answer's ``supported``
claims, or a fact with the sentence that states it, re-validated for the caller — and
every statement of the report is checked again against the notes it cites. A statement
that does not come out ``supported`` is left out. Every tool call and its result is in
the report's trace.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.toolbox import (
    AskResult,
    CommunitiesResult,
    FactsResult,
    NeighborhoodView,
    PathsResult,
    Toolbox,
    ToolError,
    ToolResult,
    community_claims,
    fact_claim,
)
from extractors.chat import (
    ChatModel,
    Message,
    ModelReplyError,
    ToolCall,
    Usage,
    ask,
    reply_usage,
)
from extractors.prompts import (
    REPORT,
    RESEARCH,
    FinishAction,
    escape_prompt_text,
    research_actions,
)
from graph import LLMError
from graph.provenance import Claim
from graph.views import FactView

__all__ = [
    "Note",
    "Report",
    "ResearchAgent",
    "ResearchBudget",
    "Statement",
    "ToolRecord",
    "Toolbox",
    "action_schema",
    "split_questions",
]


@dataclass(frozen=True, slots=True)
class ResearchBudget:
    """Limits of one run: tool calls, model tokens and wall time."""

    max_steps: int = 12
    max_tokens: int = 30_000
    max_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class ToolRecord:
    """One tool call in the trace."""

    step: int
    tool: str
    arguments: dict[str, Any]
    result: ToolResult
    ms: float
    by: Literal["model", "planner"]


@dataclass(frozen=True, slots=True)
class Note:
    """Something learned, with the validated chain it rests on."""

    id: str
    text: str
    claim: Claim
    step: int  # the tool call it came from


@dataclass(frozen=True, slots=True)
class Statement:
    """One sentence of the report and the chain that supports it."""

    text: str
    notes: tuple[str, ...]
    claim: Claim


@dataclass(slots=True)
class Report:
    """What a research run produced."""

    question: str
    sub_questions: list[str]
    statements: list[Statement]
    notes: list[Note]
    trace: list[ToolRecord]
    mode: Literal["model", "planner"]
    usage: Usage = field(default_factory=Usage)
    stopped: str = "done"
    dropped: int = 0  # statements left out because they did not validate

    def markdown(self) -> str:
        """The report as Markdown: statements with note references, then the sources."""
        lines = [f"# {self.question}", ""]
        if not self.statements:
            lines.append("Nothing in the sources answers this.")
        for s in self.statements:
            lines.append(f"- {s.text} [{', '.join(s.notes)}]")
        lines += ["", "## Sources", ""]
        cited = {n for s in self.statements for n in s.notes}
        for note in self.notes:
            if note.id not in cited:
                continue
            for span in note.claim.spans:
                lines.append(
                    f"- {note.id}: {span.document_id} [{span.start}:{span.end}] “{span.text}”"
                )
        return "\n".join(lines)


class ResearchAgent:
    """Runs research questions through a toolbox, with or without a model."""

    def __init__(
        self,
        toolbox: Toolbox,
        *,
        model: ChatModel | None = None,
        budget: ResearchBudget | None = None,
        tool_calling: Literal["json", "native"] = "json",
    ) -> None:
        self.toolbox = toolbox
        self.model = model
        self.budget = budget or ResearchBudget()
        self.tool_calling = tool_calling

    async def run(self, question: str) -> Report:
        """Research ``question`` and write the report."""
        run = _Run(self, question)
        if self.model is None:
            await run.planned()
        else:
            await run.tool_loop(self.model)
        return await run.report()


class _Run:
    """The state of one research run."""

    def __init__(self, agent: ResearchAgent, question: str) -> None:
        self.agent = agent
        self.question = question.strip()
        self.sub_questions: list[str] = []
        self.notes: list[Note] = []
        self.trace: list[ToolRecord] = []
        self.usage = Usage()
        self.stopped = "done"
        self.started = time.monotonic()

    # ------------------------------------------------------------------ budget

    def _spent(self) -> str | None:
        budget = self.agent.budget
        if len(self.trace) >= budget.max_steps:
            return f"step budget ({budget.max_steps} tool calls) reached"
        if self.usage.total_tokens >= budget.max_tokens:
            return f"token budget ({budget.max_tokens}) reached"
        if time.monotonic() - self.started > budget.max_seconds:
            return f"time budget ({budget.max_seconds:.0f} s) reached"
        return None

    async def _call(
        self, tool: str, arguments: dict[str, Any], by: Literal["model", "planner"]
    ) -> ToolResult | None:
        why = self._spent()
        if why is not None:
            self.stopped = why
            return None
        started = time.perf_counter()
        result = await self.agent.toolbox.call(tool, arguments)
        step = len(self.trace) + 1
        self.trace.append(
            ToolRecord(
                step,
                tool,
                dict(arguments),
                result,
                round((time.perf_counter() - started) * 1000, 1),
                by,
            )
        )
        await self._take_notes(step, result)
        return result

    # ------------------------------------------------------------------ notes

    async def _take_notes(self, step: int, result: ToolResult) -> None:
        """Notes from a tool result: supported answer claims, and stated facts (re-validated)."""
        candidates = _candidates(result)
        if not candidates:
            return
        checked = await self.agent.toolbox.validate(candidates)
        known = {n.claim.spans for n in self.notes}
        for claim in checked:
            if claim.verdict != "supported" or claim.spans in known:
                continue
            known.add(claim.spans)
            self.notes.append(Note(f"N{len(self.notes) + 1}", claim.text, claim, step))

    # ------------------------------------------------------------------ without a model

    async def planned(self) -> None:
        """Sub-questions asked in turn; the facts around each answer are read."""
        self.sub_questions = split_questions(self.question)
        answers: list[str] = []
        for sub in self.sub_questions:
            result = await self._call("ask", {"question": sub}, "planner")
            if result is None:
                return
            if isinstance(result, AskResult) and result.claims and result.answer not in answers:
                answers.append(result.answer)
        for answer in answers:
            found = await self._call("facts", {"name": answer, "limit": 5}, "planner")
            if found is None:
                return

    # ------------------------------------------------------------------ with a model

    async def tool_loop(self, model: ChatModel) -> None:
        """The model picks tools until it finishes or the budget runs out. The question is
        asked once first, so the model starts from a planned answer and its chains."""
        self.sub_questions = split_questions(self.question)
        first = await self._call("ask", {"question": self.question}, "planner")
        messages: list[Message] = RESEARCH.messages(question=self.question)
        if first is not None:
            messages.append({"role": "user", "content": "ask → " + _brief(first)})
        specs = self.agent.toolbox.specs()
        native = self.agent.tool_calling == "native"
        while True:
            why = self._spent()
            if why is not None:
                self.stopped = why
                return
            try:
                calls, text = await self._next_calls(model, messages, specs, native=native)
            except LLMError as exc:
                self.stopped = f"the model failed ({exc})"
                return
            if not calls:
                return  # the model is done researching
            messages.append(_assistant(text, calls))
            for call in calls:
                result = await self._run_call(call)
                if result is None:
                    return
                content = _brief(result)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": content}
                    if native
                    else {"role": "user", "content": f"{call.name} → {content}"}
                )

    async def _next_calls(
        self,
        model: ChatModel,
        messages: list[Message],
        specs: list[dict[str, Any]],
        *,
        native: bool,
    ) -> tuple[tuple[ToolCall, ...], str]:
        """The tools the model wants called next (none: it is done), and its text."""
        if native:
            reply = await model.complete(messages, tools=specs, max_tokens=400)
            self.usage += reply.usage
            return reply.tool_calls, reply.text
        actions = RESEARCH.expect(reply=research_actions(specs))
        try:
            action, reply = await ask(model, messages, actions, max_tokens=300)
        except ModelReplyError as first:
            # Rejected once (e.g. a tool that is not offered): ask again with the reason.
            self.usage += reply_usage(first)
            retry = [
                *messages,
                {"role": "assistant", "content": (first.reply or "")[:2000]},
                {"role": "user", "content": f"That reply was invalid ({first}). Reply again "
                 "with JSON only, exactly as the schema says."},
            ]  # fmt: skip
            try:
                action, reply = await ask(model, retry, actions, max_tokens=300)
            except ModelReplyError as again:
                self.usage += reply_usage(again)
                raise
        self.usage += reply.usage
        chosen = action.root
        if isinstance(chosen, FinishAction):
            return (), reply.text
        arguments = json.dumps(chosen.arguments)
        step = len(self.trace) + 1
        return (ToolCall(id=f"action_{step}", name=chosen.action, arguments=arguments),), ""

    async def _run_call(self, call: ToolCall) -> ToolResult | None:
        arguments = _arguments(call.arguments)
        if isinstance(arguments, str):
            return ToolError(error=arguments)
        return await self._call(call.name, arguments, "model")

    # ------------------------------------------------------------------ the report

    async def report(self) -> Report:
        statements: list[Statement] = []
        dropped = 0
        if self.agent.model is not None and self.notes and self._spent() is None:
            statements, dropped = await self._written(self.agent.model)
        if not statements:
            statements = [Statement(n.text, (n.id,), n.claim) for n in self.notes[:8]]
        return Report(
            question=self.question,
            sub_questions=self.sub_questions,
            statements=statements,
            notes=self.notes,
            trace=self.trace,
            mode="planner" if self.agent.model is None else "model",
            usage=self.usage,
            stopped=self.stopped,
            dropped=dropped,
        )

    async def _written(self, model: ChatModel) -> tuple[list[Statement], int]:
        """The model writes statements citing note ids; each is validated against the
        chains of the notes it cites, and only supported ones are kept."""
        by_id = {n.id: n for n in self.notes}
        listing = "\n".join(f"[{n.id}] {n.text}" for n in self.notes[:20])
        try:
            written, reply = await ask(
                model,
                REPORT.messages(question=self.question, notes=listing),
                REPORT.expect({"statements.notes": list(by_id)}),
                max_tokens=600,
            )
        except ModelReplyError as exc:
            self.usage += reply_usage(exc)
            return [], 0
        except LLMError:
            return [], 0
        self.usage += reply.usage
        drafts: list[tuple[str, tuple[str, ...], Claim]] = []
        for item in written.statements:
            ids = tuple(dict.fromkeys(item.notes))
            text = item.text.strip()
            if not ids or not text:
                continue
            cited = [by_id[i].claim for i in ids]
            claim = Claim(
                text=text,
                facts=tuple(f for c in cited for f in c.facts),
                spans=tuple(s for c in cited for s in c.spans),
                documents=tuple({d.document_id: d for c in cited for d in c.documents}.values()),
            )
            drafts.append((text, ids, claim))
        checked = await self.agent.toolbox.validate([c for _, _, c in drafts])
        kept = [
            Statement(text, ids, claim)
            for (text, ids, _), claim in zip(drafts, checked, strict=True)
            if claim.verdict == "supported"
        ]
        return kept, len(drafts) - len(kept)


_SPLIT = re.compile(
    r"(?:\?\s+|;\s*|,?\s+and\s+(?=(?:who|what|when|where|which|how|why|did|does|do|is|was|were|are)\b))",
    re.IGNORECASE,
)


def split_questions(question: str) -> list[str]:
    """Sub-questions of a research question: its sentences, and clauses joined by "and"
    that are questions of their own ("Who directed X and when was she born?")."""
    parts = [p.strip(" ?;,") for p in _SPLIT.split(question.strip()) if p and p.strip(" ?;,")]
    subs = [p[0].upper() + p[1:] + "?" for p in parts if len(p.split()) >= 3]
    return subs or [question.strip()]


def _candidates(result: ToolResult) -> list[Claim]:
    """Claims a tool result offers as notes (validated before they are taken)."""
    out: list[Claim] = []
    facts: list[FactView] = []
    if isinstance(result, AskResult):
        out += [c for c in result.claims if c.verdict == "supported"]
    elif isinstance(result, FactsResult | NeighborhoodView):
        facts += result.facts
    elif isinstance(result, PathsResult):
        facts += [f for path in result.paths for f in path.facts]
    elif isinstance(result, CommunitiesResult):
        out += community_claims(result)
    out += [c for c in map(fact_claim, facts[:12]) if c is not None]
    return out


def action_schema(specs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Tool calling through structured output: the next action is one of the tools with
    arguments valid for it, or ``finish`` (:func:`extractors.prompts.research_actions`).
    Works with any server that takes a JSON schema (vLLM, llama.cpp), whether or not its
    chat template knows about tools."""
    return RESEARCH.expect(reply=research_actions(specs)).schema()


def _assistant(text: str, calls: Sequence[ToolCall]) -> Message:
    """The assistant message that asked for ``calls`` (it goes back into the context)."""
    return {
        "role": "assistant",
        "content": text or "",
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }


def _arguments(text: str) -> dict[str, Any] | str:
    """A tool call's arguments, or why they cannot be read."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        return f"arguments are not JSON: {exc.msg}"
    return value if isinstance(value, dict) else "arguments must be a JSON object"


def _brief(result: ToolResult, limit: int = 2500) -> str:
    """A tool result for the model's context: JSON, cut to ``limit`` characters, escaped
    (document text inside it cannot spell prompt structure)."""
    text = escape_prompt_text(result.model_dump_json())
    return text if len(text) <= limit else text[: limit - 20] + ' ..."(cut)"}'
