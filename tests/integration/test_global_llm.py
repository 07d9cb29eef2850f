"""A corpus-wide question with a model configured: the model writes the answer from the
communities' points, and every claim is validated before the answer leaves (against the
real llama.cpp server the suite starts; a 135M model's prose is poor, so only the
protocol is checked, not the quality)."""

from __future__ import annotations

import pytest

from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline

pytestmark = pytest.mark.llm


async def test_a_model_writes_the_corpus_wide_answer_and_each_claim_is_validated(
    model_settings: Settings, sample_records: list[dict[str, str]]
) -> None:
    async with await Threadline.open(model_settings) as tl:
        await tl.ingest(
            [
                SourceDocument(source=r["id"], title=r["title"], text=r["text"], origin=r["id"])
                for r in sample_records[:15]
            ]
        )
        answer = await tl.ask(
            "What are the main topics discussed across these documents?",
            llm=True,
            unsupported=True,
        )
        listed = await tl.browse(tl.access()).communities(limit=500)
    assert answer.mode == "global"
    assert answer.plan[0].id == "communities"
    assert answer.claims
    assert all(c.reason != "not validated yet" for c in answer.claims)
    known = {v.id for v in listed}
    assert all(set(c.communities) <= known for c in answer.claims)
    if answer.synthesis == "model":
        assert answer.model
        assert answer.prompts
        assert answer.usage["calls"] >= 1
        # A model claim citing a point's sentence is tagged with that point's community.
        assert any(c.communities for c in answer.claims if c.spans)
    else:
        assert "could not be used" in answer.synthesis_note
