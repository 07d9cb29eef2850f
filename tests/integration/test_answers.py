"""Grounded answers on the bundled MuSiQue sample: retrieval signals, provenance, verdicts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents import NOT_FOUND, ProvenanceValidator
from engine import Settings, Threadline
from graph import Access
from graph.provenance import Claim, FactRef, SpanRef
from tests.conftest import ROOT, SAMPLE

QUESTIONS = ROOT / "datasets" / "sample" / "musique_sample_questions.jsonl"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("answers") / "data"


@pytest.fixture
async def tl(sample_dir: Path) -> AsyncIterator[Threadline]:
    async with await Threadline.open(Settings(data_dir=sample_dir)) as opened:
        await opened.ingest(opened.read([SAMPLE]))  # a no-op after the first test
        yield opened


def _two_hop() -> dict[str, object]:
    with QUESTIONS.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return next(r for r in rows if r["hops"] == 2)


async def test_answer_claims_round_trip_to_the_source(tl: Threadline) -> None:
    question = _two_hop()
    answer = await tl.ask(str(question["question"]))
    assert answer.claims
    assert answer.evidence
    docs = {d.id: d for d in await tl.documents(limit=1000)}
    for claim in answer.claims:
        assert claim.verdict == "supported", claim.reason
        for span in claim.spans:
            assert docs[span.document_id].text[span.start : span.end] == span.text
        for ref in claim.documents:
            assert docs[ref.document_id].version == ref.version
        for fact in claim.facts:
            (stored,) = await tl.graph.facts([fact.relation_id], Access.admin())
            assert (stored.subject_id, stored.predicate, stored.object_id) == (
                fact.subject_id,
                fact.predicate,
                fact.object_id,
            )
    assert answer.answer != NOT_FOUND
    assert answer.answer in answer.claims[0].text
    for ev in answer.evidence:
        assert ev.signals
        assert set(ev.signals) <= {"dense", "sparse", "graph"}
    assert {"retrieval", "answer", "validation", "total"} <= set(answer.timings_ms)


async def test_graph_signal_names_its_entities(tl: Threadline) -> None:
    question = _two_hop()
    retrieval = await tl.retrieve(str(question["question"]), k=5)
    assert retrieval.linked, "no question entity was linked"
    graph_hits = [e for e in retrieval.evidence if "graph" in e.signals]
    assert graph_hits
    assert any(e.signals["graph"].entities for e in graph_hits)


async def test_dense_mode_uses_vectors_only(tl: Threadline) -> None:
    question = _two_hop()
    retrieval = await tl.retrieve(str(question["question"]), k=5, mode="dense")
    assert len(retrieval.evidence) == 5
    assert all(set(e.signals) == {"dense"} for e in retrieval.evidence)
    scores = [e.score for e in retrieval.evidence]
    assert scores == sorted(scores, reverse=True)


async def test_fabricated_facts_and_altered_spans_are_caught(tl: Threadline) -> None:
    answer = await tl.ask(str(_two_hop()["question"]))
    good = (
        next(c for c in answer.claims if c.facts)
        if any(c.facts for c in answer.claims)
        else answer.claims[0]
    )
    validator = ProvenanceValidator(graph=tl.graph)
    reader = Access(tenant="default")
    span = good.spans[0]

    altered = good.model_copy(
        update={
            "spans": (
                span.model_copy(update={"text": span.text.replace(span.text[:4], "XXXX", 1)}),
            )
        }
    )
    shifted = good.model_copy(
        update={"spans": (span.model_copy(update={"start": span.start + 1, "end": span.end + 1}),)}
    )
    invented = Claim(
        text=span.text,
        spans=(span,),
        documents=good.documents,
        facts=(
            FactRef(
                relation_id="rel_0000000000000000",  # type: ignore[arg-type]
                subject_id="ent_0000000000000000",  # type: ignore[arg-type]
                subject="Nobody",
                predicate="invented",
                object_id="ent_1111111111111111",  # type: ignore[arg-type]
                object="Nothing",
            ),
        ),
    )
    unsourced = Claim(text="The moon is made of cheese.", spans=(span,), documents=good.documents)
    no_spans = Claim(text=span.text)
    foreign = good.model_copy(
        update={"spans": (SpanRef(**{**span.model_dump(), "chunk_id": "chk_missing"}),)}
    )
    verdicts = await validator.validate(
        [good, altered, shifted, invented, unsourced, no_spans, foreign], reader
    )
    assert [v.verdict for v in verdicts] == ["supported"] + ["unsupported"] * 6
    assert "does not match the source" in verdicts[1].reason
    assert "not in the graph" in verdicts[3].reason
    assert "not found in the cited text" in verdicts[4].reason
    # A reader from another tenant cannot have the same claim validated.
    (outsider,) = await validator.validate([good], Access(tenant="globex"))
    assert outsider.verdict == "unsupported"


async def test_a_fact_with_another_object_is_contradicted(tl: Threadline) -> None:
    validator = ProvenanceValidator(graph=tl.graph)
    reader = Access(tenant="default")
    for ent in await tl.graph.search_entities("", reader, limit=300):
        facts = [r for r in await tl.graph.relations([ent.id], reader) if r.kind != "cooccurrence"]
        if facts:
            fact = facts[0]
            break
    else:
        pytest.fail("no explicit fact in the sample graph")
    span = fact.evidence[0]
    doc = (await tl.graph.documents(reader, ids=[span.document_id]))[0]
    other = next(
        e
        for e in await tl.graph.search_entities("", reader, limit=50)
        if e.id not in {fact.subject_id, fact.object_id}
    )
    from graph import relation_id
    from graph.provenance import DocumentRef

    lie = Claim(
        text=span.text,
        spans=(SpanRef(**span.model_dump()),),
        documents=(
            DocumentRef(
                document_id=doc.id, title=doc.title, version=doc.version, source=doc.source
            ),
        ),
        facts=(
            FactRef(
                relation_id=relation_id(fact.subject_id, fact.predicate, other.id),
                subject_id=fact.subject_id,
                subject="s",
                predicate=fact.predicate,
                object_id=other.id,
                object=other.name,
            ),
        ),
    )
    (verdict,) = await validator.validate([lie], reader)
    assert verdict.verdict == "contradicted", verdict.reason
    assert other.name in verdict.reason


async def test_tenant_isolation_holds_for_answers(tl: Threadline) -> None:
    answer = await tl.ask(str(_two_hop()["question"]), Access(tenant="globex"))
    assert answer.evidence == ()
    assert answer.answer == NOT_FOUND


async def test_reading_hop_reaches_the_bridge_entitys_page(tmp_path: Path) -> None:
    """The graph has no "mother" fact, but the question entity's own page names her:
    the reading hop follows that sentence to her page."""
    pages = {
        "Lothair II": "Lothair II (835-869) was the king of Lotharingia. He was the son of "
        "Emperor Lothair I and Ermengarde of Tours.",
        "Ermengarde of Tours": "Ermengarde of Tours died on 20 March 851. She was the wife "
        "of Lothair I and the mother of three sons.",
        "Lotharingia": "Lotharingia was a kingdom in western Europe. Lothair II ruled it.",
        "Lothair I": "Lothair I was Holy Roman Emperor. His son Lothair II became king.",
    }
    pages |= {
        f"Abbey {i}": f"The Abbey of Saint {name} was founded in the ninth century near Tours."
        for i, name in enumerate(["Martin", "Julian", "Gatien", "Cosmas", "Perpetuus"])
    }
    corpus = tmp_path / "pages.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": t, "title": t, "text": x}) + "\n" for t, x in pages.items()),
        encoding="utf-8",
    )
    async with await Threadline.open(Settings(data_dir=tmp_path / "data")) as tl:
        await tl.ingest(tl.read([corpus]))
        found = await tl.retrieve("When did Lothair II's mother die?", Access.admin(), k=5)
        docs = {d.id: d.title for d in await tl.documents(limit=100)}
        hops = [e for e in found.evidence if "hop" in e.signals]
        assert hops, [docs[e.document_id] for e in found.evidence]
        reached = {docs[e.document_id]: e.signals["hop"].entities for e in hops}
        assert reached["Ermengarde of Tours"] == ("Lothair II", "Ermengarde of Tours")
        top = [docs[e.document_id] for e in found.evidence]
        assert {"Lothair II", "Ermengarde of Tours"} <= set(top)
