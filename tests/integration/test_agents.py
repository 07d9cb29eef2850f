"""Threadline for agents: the tool definitions, the research agent (planner-driven and
with the local model's tool-calling loop), and ``threadline mcp`` driven over stdio by
the MCP client of the official SDK."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agents.research import ResearchAgent, ResearchBudget, split_questions
from engine import Settings, Threadline
from engine.tools import TOOL_ARGUMENTS, ThreadlineToolbox, openai_tools
from graph import Access
from tests.conftest import ROOT, SAMPLE

QUESTIONS = ROOT / "datasets" / "sample" / "musique_sample_questions.jsonl"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agents") / "data"


@pytest.fixture
async def tl(sample_dir: Path) -> AsyncIterator[Threadline]:
    async with await Threadline.open(Settings(data_dir=sample_dir)) as opened:
        await opened.ingest(opened.read([SAMPLE]))  # a no-op after the first test
        yield opened


def _questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.open(encoding="utf-8")]
    return [str(r["question"]) for r in rows if r["hops"] == 2][:n]


def test_tool_definitions_are_openai_functions() -> None:
    tools = openai_tools()
    assert [t["function"]["name"] for t in tools] == list(TOOL_ARGUMENTS)
    for tool in tools:
        assert tool["type"] == "function"
        params = tool["function"]["parameters"]
        assert params["type"] == "object"
        assert params["properties"]
        assert tool["function"]["description"]
    ask = next(t for t in tools if t["function"]["name"] == "ask")
    assert ask["function"]["parameters"]["required"] == ["question"]


def test_sub_questions() -> None:
    assert split_questions("Who directed Night Harbour and when was that director born?") == [
        "Who directed Night Harbour?",
        "When was that director born?",
    ]
    assert split_questions("Who founded the abbey?") == ["Who founded the abbey?"]


async def test_tools_return_provenance_and_errors(tl: Threadline) -> None:
    box = ThreadlineToolbox(tl, Access(tenant="default"))
    question = _questions(1)[0]
    asked = await box.call_json("ask", {"question": question})
    assert asked["claims"]
    for claim in asked["claims"]:
        assert claim["verdict"] in {"supported", "contradicted"}
        assert all({"document_id", "start", "end", "text"} <= set(s) for s in claim["spans"])
    found = await box.call_json("search", {"query": question, "k": 3})
    assert len(found["chunks"]) == 3
    assert all({"document_id", "start", "end", "text", "title"} <= set(c) for c in found["chunks"])
    name = (await tl.browse(tl.access()).entities(limit=1))[0].name
    facts = await box.call_json("facts", {"name": name})
    assert all(f["evidence"] for f in facts["facts"])
    assert (await box.call_json("nope", {}))["error"].startswith("no tool named 'nope'")
    assert "bad arguments for ask" in (await box.call_json("ask", {"question": ""}))["error"]
    assert "no entity named" in (await box.call_json("entity", {"name": "Zzyzx Qwerty"}))["error"]


async def test_research_reports_rest_on_supported_chains(tl: Threadline) -> None:
    """Three multi-hop research questions, planner-driven: every statement of every report
    cites notes and re-validates as supported for the caller."""
    reader = Access(tenant="default")
    box = ThreadlineToolbox(tl, reader)
    for question in _questions(3):
        report = await ResearchAgent(box, budget=ResearchBudget(max_steps=6)).run(question)
        assert report.mode == "planner"
        assert report.trace[0].tool == "ask"
        assert report.statements, f"no statement for {question!r}: {report.stopped}"
        notes = {n.id for n in report.notes}
        rechecked = await box.validate([s.claim for s in report.statements])
        for statement, claim in zip(report.statements, rechecked, strict=True):
            assert set(statement.notes) <= notes
            assert claim.verdict == "supported", claim.reason
            assert claim.spans
        assert len(report.trace) <= 6
        assert question in report.markdown()


async def test_research_stops_at_its_step_budget(tl: Threadline) -> None:
    box = ThreadlineToolbox(tl, Access(tenant="default"))
    question = " and ".join(q.rstrip("?") for q in _questions(3)) + "?"
    report = await ResearchAgent(box, budget=ResearchBudget(max_steps=2)).run(question)
    assert len(report.trace) == 2
    assert "step budget" in report.stopped


@pytest.mark.llm
async def test_research_tool_loop_with_the_local_model(
    sample_dir: Path, llm_server: Any, tmp_path: Path
) -> None:
    from engine.local_model import LOCAL_MODEL_ALIAS
    from engine.settings import ModelSettings

    model = ModelSettings(base_url=llm_server.base_url, model=LOCAL_MODEL_ALIAS, timeout_s=120)
    async with await Threadline.open(Settings(data_dir=sample_dir, model=model)) as tl:
        await tl.ingest(tl.read([SAMPLE]))
        box = ThreadlineToolbox(tl, Access(tenant="default"))
        question = _questions(1)[0]
        budget = ResearchBudget(max_steps=5, max_tokens=20_000)
        report = await ResearchAgent(box, model=tl.model, budget=budget).run(question)
    assert report.mode == "model"
    assert report.trace[0].by == "planner"  # the question itself is asked first
    assert report.usage.completion_tokens > 0  # the model chose its next steps
    assert report.stopped == "done" or "budget" in report.stopped
    for record in report.trace[1:]:
        assert record.by == "model"
        assert record.tool in TOOL_ARGUMENTS or "error" in record.result
    assert len(report.trace) <= 5
    async with await Threadline.open(Settings(data_dir=sample_dir)) as again:
        checked = await ThreadlineToolbox(again, Access(tenant="default")).validate(
            [s.claim for s in report.statements]
        )
    assert all(c.verdict == "supported" for c in checked)


async def test_research_json_tool_loop_with_a_scripted_model(tl: Threadline) -> None:
    """The tool-calling loop's protocol with the ChatModel seam scripted: the model asks
    for a tool, then a tool it was not offered (the reply is refused and asked for again
    with the reason), then finishes, then writes a report citing a note and one statement
    it made up; only the validated statement is kept."""
    from tests.scripted_model import ScriptedModel

    box = ThreadlineToolbox(tl, Access(tenant="default"))
    question = _questions(1)[0]
    entity = (await tl.browse(tl.access()).entities(limit=1))[0].name
    model = ScriptedModel(
        [
            json.dumps({"action": "facts", "arguments": {"name": entity, "limit": 5}}),
            json.dumps({"action": "nonexistent", "arguments": {}}),
            json.dumps({"action": "finish", "summary": "done"}),
            "REPORT",
        ]
    )
    agent = ResearchAgent(box, model=model, budget=ResearchBudget(max_steps=6))
    original = model.complete
    notes_seen: list[str] = []

    async def scripted(messages: Any, **kwargs: Any) -> Any:
        if model.replies == ["REPORT"]:
            listing = messages[-1]["content"]
            ids = re.findall(r"\[(N\d+)\]", listing)
            notes_seen.extend(ids)
            first = listing.split(f"[{ids[0]}] ", 1)[1].split("\n", 1)[0]
            model.replies = [
                json.dumps(
                    {
                        "statements": [
                            {"text": first, "notes": [ids[0]]},
                            {"text": "The moon is made of cheese.", "notes": [ids[0]]},
                        ]
                    }
                )
            ]
        return await original(messages, **kwargs)

    model.complete = scripted  # type: ignore[method-assign]
    run_report = await agent.run(question)
    assert [t.tool for t in run_report.trace] == ["ask", "facts"]
    assert [t.by for t in run_report.trace] == ["planner", "model"]
    retry = model.calls[2]["messages"][-1]["content"]
    assert "invalid" in retry
    assert "'nonexistent'" in retry
    assert run_report.stopped == "done"
    assert notes_seen
    assert len(run_report.statements) == 1
    assert run_report.dropped == 1
    assert run_report.statements[0].claim.verdict == "supported"
    schema = model.calls[1]["schema"]
    assert {o["properties"]["action"]["const"] for o in schema["anyOf"]} == {
        *TOOL_ARGUMENTS,
        "finish",
    }


@pytest.mark.subprocess
async def test_mcp_server_over_stdio(sample_dir: Path) -> None:
    async with await Threadline.open(Settings(data_dir=sample_dir)) as tl:
        await tl.ingest(tl.read([SAMPLE]))
        entity, other = [e.name for e in await tl.browse(tl.access()).entities(limit=2)]
    question = _questions(1)[0]
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engine", "mcp", "--data-dir", str(sample_dir)],
        cwd=str(ROOT),
    )
    calls = {
        "ask": {"question": question},
        "search": {"query": question, "k": 3},
        "entity": {"name": entity},
        "neighborhood": {"name": entity},
        "paths": {"source": entity, "target": other},
        "facts": {"name": entity},
    }
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        assert {t.name for t in listed.tools} == set(calls)
        for tool in listed.tools:
            assert tool.input_schema["type"] == "object"
            assert tool.description
        results = {}
        for name, args in calls.items():
            result = await session.call_tool(name, args)
            assert not result.is_error, result
            data = result.structured_content
            assert isinstance(data, dict)
            assert "error" not in data, data
            results[name] = data
    assert results["ask"]["claims"]
    assert all(s["document_id"] for c in results["ask"]["claims"] for s in c["spans"])
    assert all(c["document_id"] and c["text"] for c in results["search"]["chunks"])
    assert results["entity"]["mentions"]
    assert all(m["text"] for m in results["entity"]["mentions"])
    assert all(f["evidence"] for f in results["neighborhood"]["facts"])
    assert all(f["evidence"] for p in results["paths"]["paths"] for f in p["facts"])
    assert all(f["evidence"] for f in results["facts"]["facts"])
