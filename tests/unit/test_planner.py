"""The model-free planner on real parses: hand-checked MuSiQue chains, comparisons,
fallbacks, and the plan model's own rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agents import FallbackPlanner, Plan, RulePlanner, Step, plan_from_parse, plan_json_schema
from extractors import SpacyEntityExtractor
from graph import LLMError

DATA = Path(__file__).parents[1] / "data"
CASES = [json.loads(line) for line in (DATA / "musique_plans.jsonl").open(encoding="utf-8")]
#: Hand-written questions an analyst asks of company documents (no benchmark's): roles
#: ("founder", "CFO", "the parent company"), acquisitions, reduced relative clauses.
ANALYST = [json.loads(line) for line in (DATA / "analyst_plans.jsonl").open(encoding="utf-8")]


def _plan(extractor: SpacyEntityExtractor, question: str) -> Plan:
    return plan_from_parse(extractor.parse(question))


def test_the_case_file_covers_two_to_three_hops() -> None:
    assert len(CASES) == 20
    assert {c["hops"] for c in CASES} == {2, 3}


def test_the_analyst_file_holds_thirty_questions() -> None:
    assert len(ANALYST) >= 30
    assert len({c["question"] for c in ANALYST}) == len(ANALYST)


@pytest.mark.parametrize("case", CASES + ANALYST, ids=[c["id"] for c in CASES + ANALYST])
def test_chains(extractor: SpacyEntityExtractor, case: dict[str, Any]) -> None:
    """Each question's plan has its expected number of hops, starts at the right name
    (never at a role: "the CFO of X" starts at X), and binds every hop's subject to the
    previous hop's output."""
    plan = _plan(extractor, case["question"])
    assert plan.complete, plan.note
    assert plan.hops == case["hops"]
    link = plan.steps[0]
    assert link.kind == "link"
    assert link.mention == case["anchor"]
    chain = [s for s in plan.steps if s.kind in {"traverse", "read"}]
    assert [[s.kind, s.relation] for s in chain] == case["chain"]
    previous = link.id
    for step in chain:  # the bridge: each hop reads the one before it
        assert step.subject == previous
        assert step.depends_on == (previous,)
        previous = step.id
    answer = plan.steps[-1]
    assert answer.kind == "answer"
    assert answer.subject == previous


def test_bridge_comparison(extractor: SpacyEntityExtractor) -> None:
    plan = _plan(
        extractor,
        "Which film has the director who was born first, El Tonto or The Heart Of Doreon?",
    )
    kinds = [s.kind for s in plan.steps]
    assert kinds == ["link", "traverse", "read", "link", "traverse", "read", "compare", "answer"]
    compare = plan.steps[6]
    assert compare.op == "earliest"
    branches = [plan.steps[2], plan.steps[5]]
    assert compare.operands == tuple(s.id for s in branches)
    for read in branches:
        assert read.relation == "born"
        assert "DATE" in read.answer_types
        traverse = next(s for s in plan.steps if s.id == read.subject)
        assert traverse.relation == "director"
        assert "PERSON" in traverse.answer_types
    assert [plan.steps[0].mention, plan.steps[3].mention] == ["El Tonto", "The Heart Of Doreon"]


@pytest.mark.parametrize(
    ("question", "op", "attribute"),
    [
        ("Are Marufabad and Nasamkhrali both located in the same country?", "same", "country"),
        ("Who was born first, Aivar Kuusmaa or Andy Summers?", "earliest", "born"),
        ("Which film came out first, 3 Dots or Dying God?", "earliest", "come out"),
        (
            "Which film has the director who is older, Blind Husbands or Sunrise?",
            "earliest",
            "born",
        ),
    ],
)
def test_comparisons(
    extractor: SpacyEntityExtractor, question: str, op: str, attribute: str
) -> None:
    plan = _plan(extractor, question)
    compare = next(s for s in plan.steps if s.kind == "compare")
    assert compare.op == op
    assert compare.relation == attribute
    assert len(compare.operands) == 2


@pytest.mark.parametrize(
    ("question", "relations"),
    [
        ("When did Lothair II's mother die?", ["mother", "die"]),
        ("Who is Raghnall Mac Ruaidhrí's paternal grandfather?", ["paternal grandfather"]),
        (
            "What is the place of birth of the director of film Gaby: A True Story?",
            ["director", "place of birth"],
        ),
        ("Where was the place of death of Maurice, Prince Of Orange's father?", None),
    ],
)
def test_possessives_and_of_phrases(
    extractor: SpacyEntityExtractor, question: str, relations: list[str] | None
) -> None:
    plan = _plan(extractor, question)
    chain = [s.relation for s in plan.steps if s.kind in {"traverse", "read"}]
    if relations is None:  # a name with a comma stays one name
        assert plan.steps[0].mention == "Maurice, Prince Of Orange"
        assert chain == ["father", "place of death"]
    else:
        assert chain == relations


def test_undecomposable_questions_fall_back_and_say_so(extractor: SpacyEntityExtractor) -> None:
    plan = _plan(extractor, "what is the boiling point of water?")
    assert not plan.decomposed
    assert [s.kind for s in plan.steps] == ["lookup", "answer"]
    assert plan.note.startswith("single-shot retrieval")
    partial = _plan(
        extractor, "Who wrote the book named after the artist known as the creation of MTV?"
    )
    if partial.decomposed and not partial.complete:
        assert partial.note.startswith("partial")
        assert partial.uncovered


def test_plan_model_rules() -> None:
    link = Step(id="s1", kind="link", mention="X")
    answer = Step(id="s2", kind="answer", depends_on=("s1",), subject="s1")
    plan = Plan(question="q", steps=(link, answer))
    assert Plan.model_validate_json(plan.model_dump_json()) == plan
    with pytest.raises(ValidationError, match="do not come before"):
        Plan(question="q", steps=(answer, link))
    with pytest.raises(ValidationError, match="answer step"):
        Plan(question="q", steps=(link,))
    with pytest.raises(ValidationError, match="used twice"):
        Plan(question="q", steps=(link, link, answer))
    schema = plan_json_schema()
    assert "steps" in schema["properties"]
    assert "Step" in json.dumps(schema)


class _Scripted:
    """A stand-in for the model planner (a seam Threadline owns): returns or raises."""

    name = "model"

    def __init__(self, result: Plan | Exception) -> None:
        self.result = result

    async def plan(self, question: str) -> Plan:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_fallback_planner_uses_the_rules_when_the_model_fails(
    extractor: SpacyEntityExtractor,
) -> None:
    question = "When did Lothair II's mother die?"
    rules = RulePlanner(extractor)
    good = _plan(extractor, question).model_copy(update={"planner": "model"})
    assert (await FallbackPlanner(_Scripted(good), rules).plan(question)) == good
    for failure in (LLMError("server unreachable"), ValueError("invalid JSON")):
        plan = await FallbackPlanner(_Scripted(failure), rules).plan(question)
        assert plan.planner == "rules"
        assert plan.hops == 2
        assert plan.note.startswith("model planner failed")
    flat = Plan(
        question=question,
        steps=(Step(id="s1", kind="lookup", query=question), Step(id="s2", kind="answer")),
    )
    plan = await FallbackPlanner(_Scripted(flat), rules).plan(question)
    assert plan.decomposed
    assert "did not decompose" in plan.note
