"""Communities and corpus-wide questions end to end: real spaCy, the real embedder, the
embedded stores, the bundled sample passages; then the CLI over the same data dir."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.global_answer import is_global_question
from agents.toolbox import CommunitiesResult, community_claims
from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline
from engine.tools import ThreadlineToolbox
from graph import Access, DocumentId

PASSAGES = 40
GLOBAL = "What are the main topics discussed across these documents?"


def _source(record: dict[str, str]) -> SourceDocument:
    return SourceDocument(
        source=record["id"], title=record["title"], text=record["text"], origin=record["id"]
    )


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, sample_records: list[dict[str, str]]
) -> dict[str, Any]:
    """One data dir: ingest, list, ask, then change the corpus and list again."""
    data_dir = tmp_path_factory.mktemp("communities") / "data"

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {"data_dir": data_dir}
        async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
            await tl.ingest([_source(r) for r in sample_records[:PASSAGES]])
            browser = tl.browse(tl.access())
            out["first"] = await browser.refresh_communities()
            out["views"] = await browser.communities(limit=500)
            out["again"] = await browser.refresh_communities()
            texts = {}
            for v in out["views"]:
                for line in v.summary:
                    for s in line.spans:
                        doc = await browser.document(s.document_id)
                        texts[(s.document_id, s.start, s.end)] = doc.text[s.start : s.end]
            out["texts"] = texts
            toolbox = ThreadlineToolbox(tl, tl.access())
            out["tool"] = await toolbox.call_json("communities", {"limit": 3})
            out["tool_claims"] = await toolbox.validate(
                community_claims(CommunitiesResult.model_validate(out["tool"]))
            )
            out["summary"] = await tl.summarize_community(out["views"][0].id)
            out["global"] = await tl.ask(GLOBAL)
            out["factoid"] = await tl.ask("Who wrote the song Heartbeat?")
            out["none"] = await tl.ask(GLOBAL, Access(tenant="nobody"))
            await tl.ingest([_source(sample_records[PASSAGES])])
            out["after_ingest"] = await browser.refresh_communities()
            gone = out["views"][0].summary[-1].spans[0].document_id
            await tl.delete([DocumentId(gone)], tl.access())
            out["gone"] = gone
            out["after_delete"] = await browser.communities(limit=500)
        return out

    return asyncio.run(go())


def test_communities_have_members_and_a_cited_summary(run: dict[str, Any]) -> None:
    views = run["views"]
    assert run["first"].scopes == 1
    assert run["first"].communities == len(views) >= 5
    assert run["again"].scopes == 0  # nothing changed: nothing rebuilt
    for view in views:
        assert view.size >= 2
        assert view.members
        assert view.documents >= 1
        assert view.summary
        assert {line.kind for line in view.summary} >= {"entity"}
        for line in view.summary:
            for s in line.spans:
                assert run["texts"][(s.document_id, s.start, s.end)] == s.text
    assert sum(1 for v in views if any(line.kind == "sentence" for line in v.summary)) >= 5


def test_communities_are_hierarchical(run: dict[str, Any]) -> None:
    views = {v.id: v for v in run["views"]}
    assert {v.level for v in views.values()} >= {0}
    for view in views.values():
        assert view.level <= 2
        if view.parent is not None:
            parent = views[view.parent]
            assert parent.level == view.level - 1
            assert view.id in parent.children
            assert view.size < parent.size


def test_a_corpus_wide_question_gets_cited_points_from_several_communities(
    run: dict[str, Any],
) -> None:
    answer = run["global"]
    assert answer.mode == "global"
    assert len(answer.claims) >= 3
    assert all(c.verdict == "supported" for c in answer.claims)
    assert all(c.spans and c.communities for c in answer.claims)
    assert len({i for c in answer.claims for i in c.communities}) >= 3
    support = [c.support for c in answer.claims]
    assert support == sorted(support, reverse=True)
    for n, claim in enumerate(answer.claims, 1):
        assert f"{n}. {' '.join(claim.text.split())}" in answer.answer
    assert answer.plan[0].id == "communities"
    assert answer.answer_verdict == "supported"


def test_the_communities_tool_gives_cited_summaries_an_agent_can_note(
    run: dict[str, Any],
) -> None:
    listed = run["tool"]["communities"]
    assert 1 <= len(listed) <= 3
    assert all(c["level"] == 0 and c["summary"] for c in listed)
    verdicts = [c.verdict for c in run["tool_claims"]]
    assert verdicts
    assert "supported" in verdicts


def test_a_community_summary_is_a_validated_answer(run: dict[str, Any]) -> None:
    summary = run["summary"]
    assert summary.mode == "community"
    assert summary.synthesis == "extractive"
    assert summary.claims
    assert all(c.verdict == "supported" for c in summary.claims)
    assert all(c.communities == (run["views"][0].id,) for c in summary.claims)


def test_factoid_questions_keep_the_usual_path(run: dict[str, Any]) -> None:
    assert run["factoid"].mode == "threadline"
    assert run["none"].claims == ()  # a tenant without documents has no communities


def test_changes_rebuild_only_the_affected_scope(run: dict[str, Any]) -> None:
    assert run["after_ingest"].scopes == 1
    assert run["after_ingest"].seconds["detect"] > 0
    assert 0 < run["after_ingest"].reused < run["after_ingest"].communities
    cited = {s.document_id for v in run["after_delete"] for line in v.summary for s in line.spans}
    assert run["gone"] not in cited
    assert run["after_delete"]


def test_cli_lists_communities_as_json(run: dict[str, Any]) -> None:
    command = [sys.executable, "-m", "engine", "communities", "--level", "0", "--json"]
    proc = subprocess.run(
        [*command, "--data-dir", str(run["data_dir"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert listed
    assert all(c["level"] == 0 and c["members"] and c["summary"] for c in listed)
    assert all(line["spans"] for c in listed for line in c["summary"])


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What are the main themes in these reports?", True),
        ("What risks do these filings discuss?", True),
        ("Who are the key people in this case and how are they connected?", True),
        ("Summarize the documents.", True),
        ("What is this collection about?", True),
        ("What places and organisations are central in these documents?", True),
        ("Which companies are most discussed?", True),
        ("Who wrote the song Heartbeat?", False),
        ("What is the main language of Brazil?", False),
        ("When was the company that bought Plinth Robotics founded?", False),
        ("What risks does Acme face in Brazil?", False),
        ("Which river is central to the city of Lyon?", False),
    ],
)
def test_global_questions_are_recognised_by_general_cues(question: str, expected: bool) -> None:
    assert is_global_question(question) is expected


async def test_a_reader_giving_up_does_not_cancel_the_rebuild_and_writes_can_rebuild_eagerly(
    tmp_path: Path, sample_records: list[dict[str, str]]
) -> None:
    data_dir = tmp_path / "data"
    async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
        await tl.ingest([_source(r) for r in sample_records[:12]])
        browser = tl.browse(tl.access())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(browser.communities(), timeout=0.01)
        scopes = await tl.graph.community_scopes(tl.access())
        again = await tl.communities.refresh(scopes)  # waits for the running rebuild
        assert again.scopes == 0
        assert not any(s.stale for s in await tl.graph.community_scopes(tl.access()))
        assert await tl.graph.communities(tl.access())
    eager = Settings.model_validate({"data_dir": data_dir, "ingest": {"communities": True}})
    async with await Threadline.open(eager) as tl:
        await tl.ingest([_source(r) for r in sample_records[12:16]])
        assert not any(s.stale for s in await tl.graph.community_scopes(tl.access()))
        first = (await tl.browse(tl.access()).documents(limit=1))[0]
        await tl.delete([first.id], tl.access())
        assert not any(s.stale for s in await tl.graph.community_scopes(tl.access()))
        cited = {
            s.document_id
            for v in await tl.browse(tl.access()).communities(limit=500)
            for line in v.summary
            for s in line.spans
        }
        assert first.id not in cited
