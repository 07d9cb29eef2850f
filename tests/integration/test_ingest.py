"""The whole embedded pipeline on real text: spaCy, the packaged embedder, SQLite, Qdrant Edge."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import Settings, Threadline
from graph import Access, InputError, NotFoundError, StoreUnavailableError


@pytest.fixture
async def tl(settings: Settings) -> AsyncIterator[Threadline]:
    async with await Threadline.open(settings) as opened:
        yield opened


async def _ingest(tl: Threadline, path: Path, **kwargs):
    return await tl.ingest(tl.read([path]), **kwargs)


async def test_ingest_builds_graph_and_vectors(tl: Threadline, small_corpus: Path) -> None:
    report = await _ingest(tl, small_corpus)
    assert report.added == 30
    stats = await tl.stats(Access.admin())
    assert stats.documents == 30
    assert stats.chunks == stats.vectors >= 30
    assert stats.entities > 100
    assert stats.relations > 100
    # Every span stored is exact: document.text[start:end] == quoted text.
    docs = {d.id: d for d in await tl.browse(Access.admin()).documents(limit=100)}
    for ent in await tl.graph.search_entities("", Access.admin(), limit=40):
        for m in await tl.browse(Access.admin()).mentions(ent.id, limit=3):
            assert docs[m.span.document_id].text[m.span.start : m.span.end] == m.span.text
        for rel in await tl.graph.relations([ent.id], Access.admin(), limit=3):
            for span in rel.evidence:
                assert docs[span.document_id].text[span.start : span.end] == span.text
    # Explicit (non co-occurrence) facts come out of the dependency parse.
    kinds = set()
    for ent in await tl.graph.search_entities("", Access.admin(), limit=200):
        kinds |= {r.kind for r in await tl.graph.relations([ent.id], Access.admin())}
    assert {"svo", "cooccurrence"} <= kinds
    assert kinds & {"copula", "appositive", "possessive", "preposition"}


async def test_reingest_is_a_no_op(tl: Threadline, small_corpus: Path) -> None:
    await _ingest(tl, small_corpus)
    before = await tl.stats(Access.admin())
    again = await _ingest(tl, small_corpus)
    assert (again.added, again.replaced, again.unchanged) == (0, 0, 30)
    assert await tl.stats(Access.admin()) == before


async def test_changed_document_replaces_old_version(tl: Threadline, tmp_path: Path) -> None:
    path = tmp_path / "doc.jsonl"
    path.write_text(
        json.dumps({"id": "p1", "title": "T", "text": "Ada Lovelace lived in London."}) + "\n"
    )
    await _ingest(tl, path)
    path.write_text(
        json.dumps({"id": "p1", "title": "T", "text": "Grace Hopper lived in New York City."})
        + "\n"
    )
    report = await _ingest(tl, path)
    assert (report.added, report.replaced) == (0, 1)
    docs = await tl.browse(Access.admin()).documents()
    assert [(d.source, d.version) for d in docs] == [("p1", 2)]
    stats = await tl.stats(Access.admin())
    assert stats.documents == 1
    assert stats.vectors == stats.chunks == 1
    assert not await tl.graph.search_entities("Lovelace", Access.admin())
    assert await tl.graph.search_entities("Grace Hopper", Access.admin())


async def test_delete_cascades_and_keeps_shared_knowledge(tl: Threadline, tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "Ada Lovelace worked with Charles Babbage in London."})
        + "\n"
        + json.dumps({"id": "b", "text": "Charles Babbage was born in London."})
        + "\n"
    )
    report = await _ingest(tl, path)
    doc_a = next(d for d in await tl.browse(Access.admin()).documents() if d.source == "a")
    deleted = await tl.delete([doc_a.id], Access.admin())
    assert deleted.documents == 1
    assert deleted.entities >= 1
    assert not await tl.graph.search_entities("Ada Lovelace", Access.admin())
    babbage = await tl.browse(Access.admin()).entity("Charles Babbage")
    assert babbage.type == "PERSON"
    stats = await tl.stats(Access.admin())
    assert stats.documents == 1
    assert stats.vectors == stats.chunks
    with pytest.raises(NotFoundError, match=doc_a.id):
        await tl.delete([doc_a.id], Access.admin())
    assert report.added == 2


async def test_tenants_and_groups_are_isolated(tl: Threadline, tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("Project Falcon was led by Maria Gonzalez in Madrid.")
    b = tmp_path / "b.txt"
    b.write_text("Project Osprey was led by Kenji Tanaka in Osaka.")
    await tl.ingest(tl.read([a]), tenant="acme", groups=["research"])
    await tl.ingest(tl.read([b]), tenant="globex")
    research = Access(tenant="acme", groups=frozenset({"research"}))
    outsider = Access(tenant="acme", groups=frozenset({"sales"}))
    globex = Access(tenant="globex")
    assert (await tl.stats(research)).documents == 1
    assert (await tl.stats(outsider)).documents == 0
    assert (await tl.stats(outsider)).vectors == 0
    assert await tl.graph.search_entities("Maria Gonzalez", research)
    assert not await tl.graph.search_entities("Maria Gonzalez", globex)
    assert not await tl.graph.search_entities("Kenji Tanaka", research)
    with pytest.raises(NotFoundError):
        await tl.browse(globex).entity("Maria Gonzalez")
    vector = (await tl._embedder.embed(["Who led Project Falcon?"]))[0]
    hits = await tl.vectors.search(vector, globex, limit=10)
    assert {h.document_id for h in hits} == {d.id for d in await tl.browse(globex).documents()}


async def test_bad_input_changes_nothing(
    tl: Threadline, small_corpus: Path, tmp_path: Path
) -> None:
    await _ingest(tl, small_corpus)
    before = await tl.stats(Access.admin())
    good = tmp_path / "good.txt"
    good.write_text("Alan Turing worked at Bletchley Park.")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "text": "fine"}) + "\n{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2:"):
        await tl.ingest(tl.read([good, bad]))
    assert await tl.stats(Access.admin()) == before
    with pytest.raises(InputError, match="access group"):
        await tl.ingest(tl.read([good]), groups=["has space"])
    assert await tl.stats(Access.admin()) == before


async def test_second_process_on_same_data_dir_is_refused(
    tl: Threadline, settings: Settings
) -> None:
    with pytest.raises(StoreUnavailableError, match="in use by another Threadline process"):
        await Threadline.open(settings)


async def test_data_survives_reopen(settings: Settings, small_corpus: Path) -> None:
    async with await Threadline.open(settings) as tl:
        await _ingest(tl, small_corpus)
        before = await tl.stats(Access.admin())
        hood = await tl.browse(Access.admin()).neighborhood("United States")
    async with await Threadline.open(settings) as tl:
        assert await tl.stats(Access.admin()) == before
        again = await tl.browse(Access.admin()).neighborhood("United States")
        assert hood.facts
        assert again == hood


async def test_qdrant_client_backend(tmp_path: Path, small_corpus: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        vector={"backend": "qdrant", "path": tmp_path / "qdrant", "collection": "chunks"},
    )
    async with await Threadline.open(settings) as tl:
        await _ingest(tl, small_corpus)
        stats = await tl.stats(Access.admin())
        assert stats.vectors == stats.chunks
        vector = (await tl._embedder.embed(["journal published by a physics institute"]))[0]
        hits = await tl.vectors.search(vector, Access(tenant="default"), limit=3)
        assert len(hits) == 3
        chunks = await tl.graph.chunks([h.chunk_id for h in hits], Access(tenant="default"))
        assert len(chunks) == 3


async def test_failed_graph_write_is_rolled_back_on_next_open(
    settings: Settings, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graph import StoreError

    async with await Threadline.open(settings) as tl:
        store = tl.graph

        async def failing_upsert(*args: object, **kwargs: object) -> None:
            raise StoreError("disk full (injected)")

        monkeypatch.setattr(store, "upsert", failing_upsert)
        with pytest.raises(StoreError, match="injected"):
            await _ingest(tl, small_corpus)
        # The vectors were written before the graph failed: they are there, but orphaned.
        assert await tl.vectors.count(Access.admin()) > 0
        assert (await tl.graph.stats(Access.admin())).documents == 0
    monkeypatch.undo()
    async with await Threadline.open(settings) as tl:
        stats = await tl.stats(Access.admin())
        assert stats.documents == 0
        assert stats.vectors == 0
        report = await _ingest(tl, small_corpus)
        assert report.added == 30


@pytest.mark.parametrize(("backend", "pooled"), [("edge", False), ("qdrant", True)])
async def test_opening_sentences_are_embedded_at_ingest(
    tmp_path: Path, small_corpus: Path, backend: str, pooled: bool
) -> None:
    """Each document's first sentences get their own vectors, stored on the first chunk's
    point (later chunks have none): the ones the embedder gives each sentence alone (the
    default) or, with ``pooled_sentences``, pooled from the chunk's own forward pass."""
    vector: dict[str, object] = {"backend": backend}
    if backend == "qdrant":
        vector |= {"path": tmp_path / "qdrant", "collection": "chunks"}
    settings = Settings(
        data_dir=tmp_path / "data", vector=vector, ingest={"pooled_sentences": pooled}
    )
    async with await Threadline.open(settings) as tl:
        await _ingest(tl, small_corpus)
        access = Access(tenant="default")
        docs = await tl.graph.documents(access, limit=5)
        pages = await tl.graph.pages([d.title for d in docs], access)
        firsts = [pages[d.title][0] for d in docs if d.title in pages]
        assert len(firsts) == len(docs)
        stored = await tl.vectors.sentences([c.id for c in firsts], access)
        assert set(stored) == {c.id for c in firsts}
        for chunk in firsts:
            sentences = stored[chunk.id]
            assert 1 <= len(sentences) <= 3
            texts = [chunk.text[s.start : s.end] for s in sentences]
            assert all(t.strip() == t and t for t in texts)
            if pooled:
                _, rows = tl._embedder.embed_with_spans(
                    [chunk.text], [[(s.start, s.end) for s in sentences]]
                )
                expected = rows[0]
            else:
                expected = await tl._embedder.embed(texts)
            for sentence, row in zip(sentences, expected, strict=True):
                assert sum(a * b for a, b in zip(sentence.vector, row, strict=True)) > 0.99
        assert await tl.vectors.sentences([c.id for c in firsts], Access(tenant="other")) == {}
