"""The answer cache, attacked: an answer is reused only for the same access scope (tenant,
groups, operator) and corpus version, and an ingest or a delete in a scope drops that
scope's answers at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import Settings, Threadline
from graph import Access, DocumentId
from graph.provenance import Answer

pytestmark = pytest.mark.ops

QUESTION = "Who founded the Pellham Observatory?"
PUBLIC = ("public", "Orla Finch founded the Pellham Observatory in 1921 near Galway.")
RED = ("red", "Ivo Brandt founded the Pellham Observatory in 1931, the red memo says.")
BETA = ("beta", "Nadia Quill founded the Pellham Observatory in 1911 in Dunmore.")
LATER = ("later", "Colm Byrne founded the Pellham Observatory, a later survey claims.")

ACME = Access(tenant="acme")
ACME_RED = Access(tenant="acme", groups=frozenset({"red"}))
ACME_RED_BLUE = Access(tenant="acme", groups=frozenset({"red", "blue"}))
BETA_ = Access(tenant="beta")
OPERATOR = Access.admin()
SCOPES = (ACME, ACME_RED, ACME_RED_BLUE, BETA_, OPERATOR)


async def _ingest(
    tl: Threadline, tmp: Path, doc: tuple[str, str], tenant: str, groups: tuple[str, ...] = ()
) -> DocumentId:
    path = tmp / f"{doc[0]}.jsonl"
    path.write_text(json.dumps({"id": doc[0], "title": doc[0], "text": doc[1]}) + "\n", "utf-8")
    report = await tl.ingest(tl.read([path]), tenant=tenant, groups=groups)
    return report.document_ids[0]


async def _corpus(tl: Threadline, tmp: Path) -> dict[str, DocumentId]:
    return {
        "public": await _ingest(tl, tmp, PUBLIC, "acme"),
        "red": await _ingest(tl, tmp, RED, "acme", ("red",)),
        "beta": await _ingest(tl, tmp, BETA, "beta"),
    }


def _cached(answer: Answer) -> bool:
    return "cache" in answer.timings_ms


def _cites(answer: Answer) -> set[str]:
    cited = {e.document_id for e in answer.evidence}
    return cited | {d.document_id for c in answer.claims for d in c.documents}


async def test_an_answer_is_reused_only_within_one_access_scope(
    settings: Settings, tmp_path: Path
) -> None:
    async with await Threadline.open(settings) as tl:
        docs = await _corpus(tl, tmp_path)
        readable = {
            ACME: {docs["public"]},
            ACME_RED: {docs["public"], docs["red"]},
            ACME_RED_BLUE: {docs["public"], docs["red"]},
            BETA_: {docs["beta"]},
            OPERATOR: set(docs.values()),
        }
        first = {}
        for access in SCOPES:  # the red scope answers first, then the narrower ones
            answer = await tl.ask(QUESTION, access)
            assert not _cached(answer), access
            assert _cites(answer) <= readable[access], access
            first[access] = answer
        assert docs["red"] in _cites(first[ACME_RED])
        for access in SCOPES:
            again = await tl.ask(f"  {QUESTION} ", access)  # spacing is normalised
            assert _cached(again), access
            assert again.answer == first[access].answer
            assert _cites(again) <= readable[access], access
            assert again.usage == {}
        # The same groups given in another order are the same scope; other options are not.
        same = Access(tenant="acme", groups=frozenset(["blue", "red"]))
        assert _cached(await tl.ask(QUESTION, same))
        assert not _cached(await tl.ask(QUESTION, ACME, k=3))
        assert not _cached(await tl.ask(QUESTION, ACME, mode="dense"))
        assert not _cached(await tl.ask(QUESTION.lower(), ACME))
        stats = tl.caches["answer"]
        assert stats.hits == len(SCOPES) + 1
        assert tl.usage is not None
        rows = await tl.usage.report(by=["tenant"])
        assert {r.tenant: r.cache_hits for r in rows} == {"acme": 4, "beta": 1, "-": 1}


async def test_an_ingest_or_a_delete_drops_the_answers_of_its_scope(
    settings: Settings, tmp_path: Path
) -> None:
    async with await Threadline.open(settings) as tl:
        docs = await _corpus(tl, tmp_path)
        for access in (ACME_RED, BETA_, OPERATOR):
            await tl.ask(QUESTION, access)
        assert _cached(await tl.ask(QUESTION, ACME_RED))
        cached_red = await tl.ask(QUESTION, ACME_RED)
        assert docs["red"] in _cites(cached_red)

        await tl.delete([docs["red"]], OPERATOR)
        after = await tl.ask(QUESTION, ACME_RED)
        assert not _cached(after)
        assert docs["red"] not in _cites(after)
        assert "Ivo Brandt" not in after.answer
        assert not _cached(await tl.ask(QUESTION, OPERATOR))  # operators see every tenant
        assert _cached(await tl.ask(QUESTION, BETA_))  # another tenant's answers stay

        assert _cached(await tl.ask(QUESTION, ACME_RED))
        await _ingest(tl, tmp_path, LATER, "acme")
        assert not _cached(await tl.ask(QUESTION, ACME_RED))
        assert _cached(await tl.ask(QUESTION, BETA_))
