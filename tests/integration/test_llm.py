"""The model path against a real OpenAI-compatible server: llama.cpp's llama-server with
SmolLM2-135M-Instruct, started by the suite (see ``llm_server`` in conftest).

A 135M model answers poorly, so these tests assert protocol, schema conformance, span
checks and validator behaviour — never facts.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents import NOT_FOUND, FallbackPlanner, Plan, RulePlanner
from agents.model_planner import ModelPlanner
from agents.synthesis import answer_format
from engine import Settings, Threadline
from engine.llm import OpenAIChatClient, OpenAIEmbedder
from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer
from engine.tools import openai_tools
from extractors import SpacyEntityExtractor
from extractors.chat import Completion, ReplyFormat, ask
from extractors.prompts import (
    EXTRACT,
    PLAN,
    REPORT,
    RESEARCH,
    SUPPORT,
    SYNTHESIZE,
    ExtractionReply,
    research_actions,
)
from graph import Access, LLMError, PlanningError
from tests.conftest import ROOT

pytestmark = pytest.mark.llm

PAGES = {
    "Lothair II": "Lothair II (835-869) was the king of Lotharingia. He was the son of "
    "Emperor Lothair I and Ermengarde of Tours.",
    "Ermengarde of Tours": "Ermengarde of Tours died on 20 March 851. She was the wife "
    "of Lothair I and the mother of three sons.",
    "Lotharingia": "Lotharingia was a kingdom in western Europe. Lothair II ruled it.",
    "Lothair I": "Lothair I was Holy Roman Emperor. Lothair I married Ermengarde of Tours.",
}
ABBEYS = {
    f"Abbey {i}": f"The Abbey of Saint {name} was founded near Tours by monks from Marmoutier."
    for i, name in enumerate(["Martin", "Julian", "Gatien", "Cosmas"])
}


def _jsonl(path: Path, pages: dict[str, str]) -> Path:
    path.write_text(
        "".join(json.dumps({"id": t, "title": t, "text": x}) + "\n" for t, x in pages.items()),
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def client(llm_server: LocalModelServer) -> AsyncIterator[OpenAIChatClient]:
    async with OpenAIChatClient(
        base_url=llm_server.base_url, model=LOCAL_MODEL_ALIAS, timeout_s=120, concurrency=2
    ) as opened:
        yield opened


# ---------------------------------------------------------------------- the client


async def test_check_knows_the_served_model(
    client: OpenAIChatClient, llm_server: LocalModelServer
) -> None:
    await client.check()
    assert LOCAL_MODEL_ALIAS in await client.models()
    async with OpenAIChatClient(base_url=llm_server.base_url, model="gpt-nonexistent") as wrong:
        with pytest.raises(
            LLMError, match=f"does not serve 'gpt-nonexistent'.*{LOCAL_MODEL_ALIAS}"
        ):
            await wrong.check()


async def test_structured_output_parses_into_the_reply_model(client: OpenAIChatClient) -> None:
    """The server constrains the reply to the schema sent; the same model parses it."""
    parsed, reply = await ask(
        client,
        [{"role": "user", "content": "Question: who ruled Lotharingia?\n[E1] Lothair II ruled "
          "Lotharingia.\n[E2] It was a kingdom.\n[F1] Lothair II — rule → Lotharingia"}],
        answer_format(["E1", "E2"], ["F1"]),
        max_tokens=200,
    )  # fmt: skip
    assert len(parsed.answer) <= 200
    for claim in parsed.claims:
        assert set(claim.evidence) <= {"E1", "E2"}
        assert set(claim.facts) <= {"F1"}
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    assert reply.model


async def test_extraction_and_plan_schemas_are_accepted(client: OpenAIChatClient) -> None:
    """The server compiles both schemas to grammars and replies within them."""
    # A reply cut at max_tokens keeps its whole items (salvaged), so it parses either way.
    extraction, completion = await ask(
        client,
        EXTRACT.messages(text="Lothair II ruled Lotharingia."),
        EXTRACT.expect(),
        max_tokens=1024,
        salvage=True,
    )
    assert completion.finish_reason in {"stop", "length"}
    assert isinstance(extraction, ExtractionReply)
    assert all(len(entity.name) <= 80 for entity in extraction.entities)
    planner = ModelPlanner(client)
    outcome: Plan | Exception
    try:
        outcome = await planner.plan("Where was the director of Night Harbour born?")
    except (PlanningError, LLMError) as exc:  # a reply that is not a valid plan is refused
        outcome = exc
    if isinstance(outcome, Plan):
        assert outcome.planner == "model"
        assert outcome.steps[-1].kind == "answer"
    else:
        assert str(outcome)
    assert planner.usage.calls == 1


def _formats() -> dict[str, tuple[list[dict[str, str]], ReplyFormat[Any]]]:
    """Every prompt with its reply format, narrowed as its callers narrow it."""
    return {
        "synthesize": (
            SYNTHESIZE.messages(question="Who ruled Lotharingia?", evidence="[E1] Lothair II."),
            answer_format(["E1"], []),
        ),
        "support": (
            SUPPORT.messages(evidence="Lothair II ruled it.", claim="Lothair II ruled it."),
            SUPPORT.expect(),
        ),
        "extract": (EXTRACT.messages(text="Lothair II ruled Lotharingia."), EXTRACT.expect()),
        "plan": (PLAN.messages(question="Where was Lothair II born?"), PLAN.expect()),
        "research": (
            RESEARCH.messages(question="Who ruled Lotharingia?"),
            RESEARCH.expect(reply=research_actions(openai_tools())),
        ),
        "report": (
            REPORT.messages(question="Who ruled it?", notes="[N1] Lothair II ruled it."),
            REPORT.expect({"statements.notes": ["N1"]}),
        ),
    }


@pytest.mark.parametrize("name", ["synthesize", "support", "extract", "plan", "research", "report"])
async def test_the_server_accepts_every_prompts_reply_schema(
    client: OpenAIChatClient, name: str
) -> None:
    """llama-server compiles each reply schema (a schema it cannot take fails the call)
    and its reply parses into the reply model unless it was cut off at its token limit."""
    messages, reply_format = _formats()[name]
    completion = await client.complete(
        messages, schema=reply_format.schema(), schema_name=reply_format.name, max_tokens=300
    )
    assert completion.text
    if completion.finish_reason == "length":
        return  # cut off: not whole JSON, nothing to parse
    assert isinstance(reply_format.parse(completion.text), reply_format.model)


async def test_streaming_yields_deltas_then_the_completion(client: OpenAIChatClient) -> None:
    before = client.usage
    parts = [
        p
        async for p in client.stream(
            [{"role": "user", "content": "Name three colours."}], max_tokens=40
        )
    ]
    *deltas, final = parts
    assert isinstance(final, Completion)
    assert deltas
    assert all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == final.text  # type: ignore[arg-type]
    assert final.usage.completion_tokens > 0
    assert client.usage.calls == before.calls + 1


async def test_concurrent_calls_are_bounded_and_all_answered(client: OpenAIChatClient) -> None:
    before = client.usage.calls
    replies = await asyncio.gather(
        *(
            client.complete([{"role": "user", "content": f"Say the number {i}."}], max_tokens=8)
            for i in range(6)
        )
    )
    assert len(replies) == 6
    assert all(r.usage.completion_tokens > 0 for r in replies)
    assert client.usage.calls == before + 6


async def test_an_unreachable_server_is_a_clear_error() -> None:
    async with OpenAIChatClient(
        base_url="http://127.0.0.1:9/v1", model="m", retries=1, backoff_s=0.01, connect_timeout_s=1
    ) as down:
        with pytest.raises(LLMError, match=r"cannot reach the model server .*serve-model-local"):
            await down.complete([{"role": "user", "content": "hi"}])
        with pytest.raises(LLMError, match="cannot reach"):
            async for _ in down.stream([{"role": "user", "content": "hi"}]):
                pass


async def test_embeddings_endpoint(tmp_path: Path) -> None:
    with LocalModelServer(embeddings=True, parallel=1, log=tmp_path / "embed.log") as server:
        embedder = OpenAIEmbedder(base_url=server.base_url, model=LOCAL_MODEL_ALIAS)
        vectors = await embedder.embed(
            ["Lothair II was king.", "Lothair II was a king.", "Photosynthesis in plants."]
        )
        assert vectors.shape == (3, embedder.dimension)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
        # The whole pipeline on the remote embedder: ingest, then dense retrieval.
        from engine.settings import EmbeddingSettings

        settings = Settings(
            data_dir=tmp_path / "data",
            embedding=EmbeddingSettings(base_url=server.base_url, model=LOCAL_MODEL_ALIAS),
        )
        async with await Threadline.open(settings) as tl:
            report = await tl.ingest(tl.read([_jsonl(tmp_path / "pages.jsonl", PAGES)]))
            assert report.vectors == report.chunks > 0
            found = await tl.retrieve("Lotharingia kingdom", k=2, mode="dense")
            assert len(found.evidence) == 2
            assert (await tl.stats(Access.admin())).vectors == report.chunks


# ---------------------------------------------------------------------- answers


@pytest.fixture
async def model_tl(model_settings: Settings, tmp_path: Path) -> AsyncIterator[Threadline]:
    async with await Threadline.open(model_settings) as opened:
        await opened.ingest(opened.read([_jsonl(tmp_path / "pages.jsonl", PAGES | ABBEYS)]))
        yield opened


async def test_model_answer_is_validated_before_it_leaves(model_tl: Threadline) -> None:
    answer = await model_tl.ask("When did Lothair II's mother die?", llm=True)
    assert answer.synthesis == "model", answer.synthesis_note
    assert answer.model
    assert SYNTHESIZE.id in answer.prompts
    assert "support@1" in answer.prompts
    assert answer.usage["completion_tokens"] > 0
    assert answer.usage["calls"] >= 1
    assert all(c.verdict in {"supported", "contradicted"} for c in answer.claims)
    docs = {d.id: d for d in await model_tl.browse(Access.admin()).documents(limit=100)}
    for claim in answer.claims:
        for span in claim.spans:
            assert docs[span.document_id].text[span.start : span.end] == span.text
    if answer.answer != NOT_FOUND:
        assert any(c.verdict == "supported" for c in answer.claims)
    everything = await model_tl.ask("When did Lothair II's mother die?", llm=True, unsupported=True)
    assert everything.removed_claims == 0
    flagged = [c for c in everything.claims if c.verdict == "unsupported"]
    assert all(c.reason != "not validated yet" for c in flagged)


async def test_model_answer_streams_then_sends_validated_claims(model_tl: Threadline) -> None:
    kinds: list[str] = []
    tokens: list[str] = []
    async for event in model_tl.ask_stream("Who ruled Lotharingia?", llm=True):
        kinds.append(event.kind)
        if event.kind == "token":
            tokens.append(event.text or "")
        if event.kind == "done":
            assert event.answer is not None
            assert event.answer.synthesis == "model", event.answer.synthesis_note
    assert kinds[0] == "evidence"
    assert kinds[-3:] == ["answer", "claims", "done"]
    assert "token" in kinds
    assert kinds.index("token") < kinds.index("answer")
    assert "".join(tokens).strip()


async def test_evidence_without_the_answer_yields_nothing_supported_about_it(
    model_settings: Settings, tmp_path: Path
) -> None:
    """The corpus never says when anyone was born: whatever the model claims about a
    birth date cannot be supported, and the answer is not found or copied from the text."""
    async with await Threadline.open(model_settings) as tl:
        await tl.ingest(tl.read([_jsonl(tmp_path / "abbeys.jsonl", ABBEYS)]))
        for question in [
            "When was Saint Martin born?",
            "Who founded the Abbey of Saint Julian in 1066?",
        ]:
            answer = await tl.ask(question, llm=True, unsupported=True)
            corpus = " ".join(ABBEYS.values())
            for claim in answer.claims:
                if claim.verdict != "supported":
                    continue
                cited = " ".join(s.text for s in claim.spans)
                for number in re.findall(r"\d+", claim.text):
                    assert number in cited, claim
                assert "born" not in claim.text.lower() or "born" in cited.lower()
            assert answer.answer == NOT_FOUND or answer.answer.lower() in corpus.lower()
            assert "1066" not in answer.answer


async def test_judge_model_can_only_withhold_support(model_tl: Threadline) -> None:
    """With the model as judge, claims the overlap check rejects stay rejected."""
    retrieval = await model_tl.retrieve("When did Ermengarde of Tours die?")
    validator = model_tl.validator(judge=model_tl.model)
    answer = await model_tl.ask("When did Ermengarde of Tours die?")  # extractive
    assert answer.claims
    assert answer.claims[0].verdict == "supported"
    bad = answer.claims[0].model_copy(update={"text": "Ermengarde of Tours died in 999."})
    (checked,) = await validator.validate(
        [bad], Access(tenant="default"), evidence={e.chunk_id for e in retrieval.evidence}
    )
    assert checked.verdict != "supported"


# ---------------------------------------------------------------------- extraction


async def test_model_extraction_is_span_checked_and_cached(
    llm_server: LocalModelServer, tmp_path: Path
) -> None:
    from engine.settings import ModelSettings

    settings = Settings(
        data_dir=tmp_path / "data",
        model=ModelSettings(
            base_url=llm_server.base_url, model=LOCAL_MODEL_ALIAS, extraction=True, timeout_s=120
        ),
    )
    corpus = _jsonl(tmp_path / "pages.jsonl", PAGES)
    async with await Threadline.open(settings) as tl:
        first = await tl.ingest(tl.read([corpus]))
        assert first.model_chunks == first.chunks > 0
        assert first.model_cache_hits == 0
        calls = tl.model.usage.calls
        assert calls == first.chunks - first.model_failed
        admin = Access.admin()
        entities = await tl.graph.search_entities("", admin, limit=1000)
        relations = await tl.graph.relations([e.id for e in entities], admin, limit=10_000)
        chunks = {
            c.id: c
            for c in await tl.graph.chunks(
                list({ev.chunk_id for r in relations for ev in r.evidence}), admin
            )
        }
        for rel in relations:
            for ev in rel.evidence:
                chunk = chunks[ev.chunk_id]
                assert chunk.start <= ev.start < ev.end <= chunk.end  # a real span of the chunk
        # The same text again (another tenant ingests the same file) is answered from the
        # cache ...
        other = await tl.ingest(tl.read([corpus]), tenant="other")
        assert other.model_chunks == other.chunks
        assert other.model_cache_hits == other.chunks - first.model_failed
        cached = tl.model.usage.calls
        assert cached == calls + first.model_failed
        # ... and deleting every copy erases the cached replies with the text.
        await tl.delete([*first.document_ids, *other.document_ids], Access.admin())
        again = await tl.ingest(tl.read([corpus]))
        assert again.model_chunks == again.chunks
        assert again.model_cache_hits == 0
        assert tl.model.usage.calls == cached + again.chunks


# ---------------------------------------------------------------------- planning


async def test_model_planner_with_rule_fallback(
    client: OpenAIChatClient, extractor: SpacyEntityExtractor
) -> None:
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "musique_plans.jsonl").open()][
        :4
    ]
    planner = FallbackPlanner(ModelPlanner(client), RulePlanner(extractor), timeout_s=60)
    for row in rows:
        plan = await planner.plan(row["question"])
        assert isinstance(plan, Plan)
        assert plan.steps[-1].kind == "answer"
        if plan.planner == "model":
            assert "plan@1" in plan.note
        else:
            assert "model planner" in plan.note  # says why it fell back


async def test_ask_with_the_model_planner(llm_server: LocalModelServer, tmp_path: Path) -> None:
    from engine.settings import ModelSettings

    settings = Settings(
        data_dir=tmp_path / "data",
        model=ModelSettings(
            base_url=llm_server.base_url,
            model=LOCAL_MODEL_ALIAS,
            planner=True,
            timeout_s=120,
            planner_timeout_s=60,
        ),
    )
    async with await Threadline.open(settings) as tl:
        await tl.ingest(tl.read([_jsonl(tmp_path / "pages.jsonl", PAGES)]))
        answer = await tl.ask("When did Lothair II's mother die?")
        assert answer.plan
        assert answer.plan[-1].kind == "answer"
        assert answer.plan_note
        if "planned by rules" not in answer.plan_note:
            assert "plan@1" in answer.prompts
        assert all(c.verdict == "supported" for c in answer.claims)


async def test_judge_is_asked_about_paraphrases(model_tl: Threadline) -> None:
    """A paraphrase that passes the word check goes to the judge model; whatever it
    says, the verdict is one of the three and a refusal names the prompt."""
    answer = await model_tl.ask("When did Ermengarde of Tours die?")  # extractive
    quoted = next(c for c in answer.claims if "20 March 851" in c.text)
    paraphrase = quoted.model_copy(update={"text": "Ermengarde of Tours died 20 March 851."})
    retrieval = await model_tl.retrieve("When did Ermengarde of Tours die?")
    validator = model_tl.validator(judge=model_tl.model)
    calls = model_tl.model.usage.calls
    (checked,) = await validator.validate(
        [paraphrase], Access(tenant="default"), evidence={e.chunk_id for e in retrieval.evidence}
    )
    assert model_tl.model.usage.calls == calls + 1
    assert checked.verdict in {"supported", "unsupported", "contradicted"}
    if checked.verdict != "supported":
        assert "support@1" in checked.reason
    (again,) = await model_tl.validator().validate([paraphrase], Access(tenant="default"))
    assert again.verdict == "supported", again.reason  # without a judge the words suffice
