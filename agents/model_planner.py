"""A planner that asks a model for the plan's steps as JSON (prompt ``plan``).

The reply is constrained to :class:`extractors.prompts.PlanReply` (the same model parses
it), then checked like any other plan: the DAG must be valid, the last step must be an
answer step, and every ``link`` mention must be words of the question (a model that
invents a name gets no plan). Use it behind :class:`agents.planner.FallbackPlanner` so the
rule planner plans when the model fails.

The question is escaped in the prompt (:func:`extractors.prompts.escape_prompt_text`);
mentions the model copied from it are unescaped before they are checked.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from agents.plan import Plan, Step
from extractors.chat import ChatModel, ModelReplyError, Usage, ask, reply_usage
from extractors.prompts import PLAN, unescape_prompt_text
from graph import PlanningError, normalize_name

__all__ = ["ModelPlanner", "steps_schema"]


def steps_schema() -> dict[str, Any]:
    """The structured-output schema of a model's plan: ``{"steps": [Step, ...]}``."""
    return PLAN.expect().schema()


class ModelPlanner:
    """Plans with a model; raises :class:`PlanningError` on a reply that is not a valid plan."""

    def __init__(self, model: ChatModel, *, max_tokens: int = 600) -> None:
        self.model = model
        self.name = "model"
        self.max_tokens = max_tokens
        self.usage = Usage()

    async def plan(self, question: str) -> Plan:
        """The model's plan for ``question`` (prompt id in the plan's note)."""
        try:
            reply, completion = await ask(
                self.model,
                PLAN.messages(question=question),
                PLAN.expect(),
                max_tokens=self.max_tokens,
            )
        except ModelReplyError as exc:
            self.usage += reply_usage(exc)
            raise PlanningError(f"the model's plan is not a valid plan: {exc}") from exc
        self.usage += completion.usage
        try:
            plan = Plan(
                question=question,
                steps=tuple(Step.model_validate(_unescaped(s.model_dump())) for s in reply.steps),
                planner="model",
                note=f"planned by {self.model.model} ({PLAN.id})",
            )
        except ValidationError as exc:
            raise PlanningError(f"the model's plan is not a valid plan: {exc}") from exc
        asked = normalize_name(question)
        invented = [
            s.mention or ""
            for s in plan.steps
            if s.kind == "link" and (not s.mention or normalize_name(s.mention) not in asked)
        ]
        if invented or not any(s.kind == "link" for s in plan.steps):
            raise PlanningError(
                "the model's plan links names that are not in the question: "
                + (", ".join(repr(m) for m in invented) or "no link step")
            )
        return plan


def _unescaped(step: dict[str, Any]) -> dict[str, Any]:
    """A step with the words it copied from the escaped question unescaped."""
    return {k: unescape_prompt_text(v) if isinstance(v, str) else v for k, v in step.items()}
