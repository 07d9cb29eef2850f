"""The model-reply contract: for every prompt the schema sent is its reply model's, and
the parser refuses exactly what that schema refuses (limits, extra fields, ids not
offered). The schema side is checked with a JSON-schema validator, the parser side with
:meth:`ReplyFormat.parse`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from agents.model_planner import ModelPlanner
from agents.research import action_schema
from agents.synthesis import answer_format, answer_schema
from extractors.chat import ModelReplyError, ReplyFormat, ask, reply_usage, strict_schema
from extractors.model_extractor import ModelExtractor, extraction_schema
from extractors.prompts import (
    EXTRACT,
    PLAN,
    PROMPTS,
    REPORT,
    RESEARCH,
    SUPPORT,
    SYNTHESIZE,
    ResearchAction,
    research_actions,
)
from extractors.types import ChunkExtraction
from graph import Chunk, ChunkId, DocumentId, LLMError, PlanningError
from graph import ModelReplyError as GraphModelReplyError
from tests.scripted_model import ScriptedModel

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string", "maxLength": 50}},
                "required": ["question"],
                "additionalProperties": False,
            },
        },
    }
    for name in ("ask", "search")
]


def _claim(text: str = "A was born in B.", evidence: tuple[str, ...] = ("E1",)) -> dict[str, Any]:
    return {"text": text, "evidence": list(evidence), "facts": []}


def _step(i: int, kind: str = "link", **more: Any) -> dict[str, Any]:
    return {"id": f"s{i}", "kind": kind, **more}


# A valid reply for every prompt, and the format it is parsed with (narrowed per call
# where the prompt's callers narrow it).
FORMATS: dict[str, tuple[ReplyFormat[Any], dict[str, Any]]] = {
    "synthesize": (
        answer_format(["E1", "E2"], ["F1"]),
        {"answer": "B", "claims": [_claim()]},
    ),
    "support": (SUPPORT.expect(), {"verdict": "supported"}),
    "extract": (
        EXTRACT.expect(),
        {
            "entities": [{"name": "A", "type": "PERSON", "text": "A"}],
            "relations": [{"subject": "A", "predicate": "born in", "object": "B", "text": "A b"}],
        },
    ),
    "plan": (
        PLAN.expect(),
        {"steps": [_step(1, mention="A"), _step(2, "answer", depends_on=["s1"])]},
    ),
    "research": (
        RESEARCH.expect(reply=research_actions(TOOLS)),
        {"action": "ask", "arguments": {"question": "who?"}},
    ),
    "report": (
        REPORT.expect({"statements.notes": ["N1", "N2"]}),
        {"statements": [{"text": "A was born in B.", "notes": ["N1"]}]},
    ),
}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A change to a reply: ``path`` (dotted, list indexes as numbers) set to ``value``."""

    def change(reply: dict[str, Any]) -> dict[str, Any]:
        out = json.loads(json.dumps(reply))
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return out

    return change


# Replies that break one limit the schema states: (prompt, what is wrong, change).
VIOLATIONS: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    ("synthesize", "answer too long", _set("answer", "x" * 201)),
    ("synthesize", "too many claims", _set("claims", [_claim()] * 5)),
    ("synthesize", "claim text too long", _set("claims.0.text", "x" * 301)),
    ("synthesize", "too many evidence ids", _set("claims.0.evidence", ["E1", "E2"] * 3)),
    ("synthesize", "evidence id not offered", _set("claims.0.evidence", ["E9"])),
    ("synthesize", "fact id not offered", _set("claims.0.facts", ["F2"])),
    ("synthesize", "fact id cited as evidence", _set("claims.0.evidence", ["F1"])),
    ("synthesize", "extra field", _set("confidence", 0.9)),
    ("synthesize", "extra field in a claim", _set("claims.0.source", "x")),
    ("synthesize", "claims missing", lambda r: {"answer": r["answer"]}),
    ("support", "verdict not offered", _set("verdict", "maybe")),
    ("support", "extra field", _set("reason", "x")),
    ("extract", "unknown entity type", _set("entities.0.type", "ALIEN")),
    ("extract", "name too long", _set("entities.0.name", "x" * 81)),
    ("extract", "predicate too long", _set("relations.0.predicate", "x" * 41)),
    ("extract", "too many entities", lambda r: {**r, "entities": r["entities"] * 11}),
    ("extract", "extra field", _set("entities.0.confidence", 1)),
    ("plan", "too few steps", lambda r: {"steps": r["steps"][:1]}),
    ("plan", "too many steps", lambda r: {"steps": [_step(i) for i in range(1, 12)]}),
    ("plan", "bad step id", _set("steps.0.id", "step1")),
    ("plan", "unknown step kind", _set("steps.0.kind", "guess")),
    ("plan", "extra field in a step", _set("steps.0.why", "x")),
    ("research", "tool not offered", _set("action", "delete")),
    ("research", "extra field", _set("thought", "x")),
    ("research", "finish with arguments", _set("action", "finish")),
    ("research", "summary too long", lambda r: {"action": "finish", "summary": "x" * 401}),
    ("report", "note not offered", _set("statements.0.notes", ["N3"])),
    ("report", "too many notes", _set("statements.0.notes", ["N1", "N2"] * 2)),
    ("report", "statement too long", _set("statements.0.text", "x" * 301)),
    ("report", "too many statements", lambda r: {"statements": r["statements"] * 6}),
]


def _objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [o for n in node for o in _objects(n)]
    if not isinstance(node, dict):
        return []
    own = [node] if "properties" in node else []
    return own + [o for v in node.values() for o in _objects(v)]


def test_every_prompt_declares_its_reply_and_sends_that_models_schema() -> None:
    assert set(FORMATS) == set(PROMPTS)
    for name, prompt in PROMPTS.items():
        config = prompt.reply.model_config
        assert config.get("frozen"), name
        schema = prompt.expect().schema()
        assert schema == strict_schema(prompt.reply.model_json_schema()), name
        text = json.dumps(schema)
        for unwanted in ("$ref", "$defs", '"title"'):
            assert unwanted not in text, name
        for node in _objects(schema):
            assert node["additionalProperties"] is False, (name, node)
            assert set(node["required"]) <= set(node["properties"]), (name, node)


def test_the_schema_helpers_are_the_reply_formats() -> None:
    assert answer_schema(["E1"], ["F1"]) == answer_format(["E1"], ["F1"]).schema()
    assert extraction_schema() == EXTRACT.expect().schema()
    assert action_schema(TOOLS) == RESEARCH.expect(reply=research_actions(TOOLS)).schema()
    actions = action_schema(TOOLS)["anyOf"]
    assert [a["properties"]["action"].get("const") for a in actions] == ["ask", "search", "finish"]
    # A tool's arguments are sent as that tool declares them.
    assert actions[0]["properties"]["arguments"] == TOOLS[0]["function"]["parameters"]
    assert issubclass(research_actions(TOOLS), ResearchAction)


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_valid_reply_fits_both_the_schema_and_the_parser(name: str) -> None:
    reply_format, reply = FORMATS[name]
    jsonschema.validate(reply, reply_format.schema())
    parsed = reply_format.parse(json.dumps(reply))
    assert isinstance(parsed, reply_format.model)
    assert parsed.model_dump(mode="json", exclude_defaults=True) == reply


@pytest.mark.parametrize(("name", "wrong", "change"), VIOLATIONS, ids=[v[1] for v in VIOLATIONS])
def test_a_reply_the_schema_refuses_the_parser_refuses(
    name: str, wrong: str, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    reply_format, valid = FORMATS[name]
    bad = change(valid)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, reply_format.schema())
    with pytest.raises(ModelReplyError, match=f"{name} schema at "):
        reply_format.parse(json.dumps(bad))


def test_the_violation_list_covers_every_prompt() -> None:
    assert {v[0] for v in VIOLATIONS} == set(PROMPTS)


def test_nothing_offered_allows_no_citation() -> None:
    reply_format = answer_format(["E1"], [])
    facts = reply_format.schema()["properties"]["claims"]["items"]["properties"]["facts"]
    assert facts["maxItems"] == 0
    reply_format.parse(json.dumps({"answer": "B", "claims": [_claim()]}))
    with pytest.raises(ModelReplyError, match=r"claims\.0\.facts\.0"):
        reply_format.parse(json.dumps({"answer": "B", "claims": [{**_claim(), "facts": ["F1"]}]}))


def test_a_narrowing_must_name_a_string_field() -> None:
    with pytest.raises(ValueError, match="no field"):
        SYNTHESIZE.expect({"claims.citations": ["E1"]}).schema()
    with pytest.raises(ValueError, match="string"):
        SYNTHESIZE.expect({"claims": ["E1"]}).schema()


def test_model_reply_error_is_in_the_error_tree() -> None:
    assert ModelReplyError is GraphModelReplyError
    assert issubclass(ModelReplyError, LLMError)


async def test_ask_sends_the_schema_it_parses_with_and_counts_rejected_replies() -> None:
    model = ScriptedModel(['{"verdict": "supported"}'])
    parsed, completion = await ask(model, [], SUPPORT.expect())
    assert parsed.verdict == "supported"
    assert completion.usage.calls == 1
    assert model.calls[0]["schema"] == SUPPORT.expect().schema()
    bad = ScriptedModel(['{"verdict": "supported", "why": "x"}'])
    with pytest.raises(ModelReplyError) as caught:
        await ask(bad, [], SUPPORT.expect())
    assert caught.value.reply == '{"verdict": "supported", "why": "x"}'
    assert reply_usage(caught.value).calls == 1


async def test_callers_send_their_prompts_reply_schema() -> None:
    model = ScriptedModel(["{}"])
    with pytest.raises(PlanningError, match="not a valid plan"):
        await ModelPlanner(model).plan("Where was A born?")
    assert model.calls[0]["schema"] == PLAN.expect().schema()
    extractor_model = ScriptedModel(['{"entities": [], "relations": []}'])
    chunk = Chunk(
        id=ChunkId("chk_1"), document_id=DocumentId("doc_1"), index=0, start=0, end=4, text="A b."
    )
    await ModelExtractor(extractor_model).extend(
        [ChunkExtraction(chunk=chunk, mentions=(), relations=())]
    )
    assert extractor_model.calls[0]["schema"] == EXTRACT.expect().schema()
