"""Query plans: a question decomposed into typed steps that form a DAG.

A plan is data. The model-free planner (:mod:`agents.planner`) reads it off the
question's parse; a model can produce the same plan as JSON against
:func:`plan_json_schema` (the :class:`Planner` protocol is the seam). The executor
(:mod:`agents.executor`) runs it and records, for every step, what went in, what came
out, the evidence it used and how long it took.

Step kinds:

``link``       a mention of the question → graph entities
``traverse``   entities of an earlier step —relation→ ? (the bridge: its output binds the
               ``subject`` of the next step)
``path``       chains of facts between the entities of two earlier steps
``lookup``     a vector search, optionally restricted to chunks mentioning the entities of
               an earlier step
``read``       the value of an attribute ("born", "nationality") read off the pages of the
               entities of an earlier step (sentence scoring, no model)
``compare``    the outputs of two or more branches compared (earliest, latest, same, ...)
``answer``     the final step: which step's output is the answer
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from extractors.prompts import CompareOp, PlanStep
from graph.provenance import Binding, StepKind, StepTrace

__all__ = [
    "Binding",
    "CompareOp",
    "Plan",
    "PlanTrace",
    "Planner",
    "Step",
    "StepKind",
    "StepTrace",
    "plan_json_schema",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(PlanStep):
    """One step. ``subject``/``object`` refer to earlier steps by id (``"s1"``). The
    fields are those a model writes for the ``plan`` prompt
    (:class:`extractors.prompts.PlanStep`)."""


class Plan(_Frozen):
    """A DAG of steps in execution order; the last step is the ``answer`` step."""

    question: str
    steps: tuple[Step, ...]
    planner: str = "rules"
    note: str = ""
    uncovered: tuple[str, ...] = Field(
        default=(), description="question words no step accounts for (a partial plan)"
    )

    @model_validator(mode="after")
    def _dag(self) -> Plan:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id} is used twice")
            refs = [*step.depends_on, *step.operands]
            refs += [r for r in (step.subject, step.object) if r is not None]
            unknown = [r for r in refs if r not in seen]
            if unknown:
                raise ValueError(
                    f"step {step.id} refers to {', '.join(unknown)}, which do not come before it"
                )
            seen.add(step.id)
        if self.steps and self.steps[-1].kind != "answer":
            raise ValueError("the last step of a plan must be an answer step")
        return self

    @property
    def decomposed(self) -> bool:
        """Whether the plan does more than one retrieval (else it is the single shot)."""
        return any(s.kind in {"traverse", "path", "read", "compare"} for s in self.steps)

    @property
    def complete(self) -> bool:
        """Whether the steps account for the whole question (so its answer is the plan's)."""
        return self.decomposed and not self.uncovered

    @property
    def hops(self) -> int:
        """Relation steps along the longest chain (a 2-hop question has 2)."""
        depth: dict[str, int] = {}
        for step in self.steps:
            before = max((depth[d] for d in step.depends_on), default=0)
            depth[step.id] = before + (1 if step.kind in {"traverse", "read"} else 0)
        return max(depth.values(), default=0)


@runtime_checkable
class Planner(Protocol):
    """Turns a question into a plan (the model-free planner, or a model asked for JSON)."""

    name: str

    async def plan(self, question: str) -> Plan:
        """The plan for ``question``; a question that cannot be decomposed gets the
        single-shot plan (link, lookup, answer) with a note saying so."""
        ...


class PlanTrace(_Frozen):
    """An executed plan."""

    plan: Plan
    steps: tuple[StepTrace, ...]
    answer: Binding | None = None
    ms: float = 0.0

    def output(self, step_id: str) -> tuple[Binding, ...]:
        """The bindings a step produced (empty when it produced none or did not run)."""
        return next((s.output for s in self.steps if s.id == step_id), ())


def plan_json_schema() -> dict[str, Any]:
    """The JSON schema a model's plan must conform to (structured output)."""
    return Plan.model_json_schema()
