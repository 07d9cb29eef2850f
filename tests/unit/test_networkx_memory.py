"""The embedded store's in-memory index keeps ids, adjacency and names, never texts.

Texts are read from SQLite, one query per read; a read of the index version a deletion
has not reached yet still finds the deleted texts.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Collection
from pathlib import Path

from graph import Access, DocumentGraph, Entity
from graph.backends.networkx_store import NetworkxGraphStore
from graph.ids import DocumentId
from tests.contract.factories import entity, make_graph

ADMIN = Access.admin()
ADA = entity("Ada Lovelace")
BABBAGE = entity("Charles Babbage")
LONDON = entity("London", "GPE")


def _graphs() -> list[DocumentGraph]:
    people = {"Ada Lovelace": ADA, "Charles Babbage": BABBAGE, "London": LONDON}
    return [
        make_graph(
            f"doc-{n}",
            f"Ada Lovelace met Charles Babbage in London, letter number {n} of the archive.",
            entities=people,
            facts=[
                ("Ada Lovelace", "meet", "Charles Babbage"),
                ("Charles Babbage", "in", "London"),
            ],
        )
        for n in range(6)
    ]


def _strings_held(root: object) -> set[str]:
    """Every string reachable from ``root`` through containers and plain objects."""
    seen: set[int] = set()
    found: set[str] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, threading.Condition)):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.add(obj)
            continue
        stack.extend(gc.get_referents(obj))
    return found


async def test_the_index_holds_no_document_or_evidence_text(tmp_path: Path) -> None:
    store = await NetworkxGraphStore.open(tmp_path / "graph.sqlite")
    try:
        graphs = _graphs()
        await store.upsert(graphs)
        index = store._index
        held = _strings_held(
            {k: v for k, v in vars(index).items() if k not in {"lock", "texts_from", "path"}}
        )
        texts = {g.document.text for g in graphs}
        assert not texts & held
        assert not any("letter number" in s for s in held)
        # Names and ids stay: reads match on them without touching SQLite.
        assert {"Ada Lovelace", ADA.id, graphs[0].document.id} <= held
        # Yet every read returns the texts as stored.
        docs = await store.documents(ADMIN)
        assert {d.text for d in docs} == texts
        chunks = await store.chunks([g.chunks[0].id for g in graphs], ADMIN)
        assert [c.text for c in chunks] == [g.chunks[0].text for g in graphs]
        facts = await store.relations([ADA.id], ADMIN)
        assert {s.text for r in facts for s in r.evidence} == texts
        mentions = await store.mentions([LONDON.id], ADMIN)
        assert {m.span.text for m in mentions} == {"London"}
    finally:
        await store.close()


async def test_each_read_reads_texts_in_one_query(tmp_path: Path) -> None:
    store = await NetworkxGraphStore.open(tmp_path / "graph.sqlite")
    try:
        graphs = _graphs()
        await store.upsert(graphs)
        index = store._index
        reader = index.texts_from
        calls: list[int] = []

        def counted(ids: Collection[DocumentId]) -> dict[DocumentId, str]:
            calls.append(len(ids))
            return reader(ids)

        index.texts_from = counted
        facts = await store.relations([ADA.id, BABBAGE.id], ADMIN)
        assert len({s.document_id for r in facts for s in r.evidence}) == len(graphs)
        assert calls == [len(graphs)]
        calls.clear()
        mentions = await store.mentions([ADA.id, BABBAGE.id, LONDON.id], ADMIN)
        assert len(mentions) == 3 * len(graphs)
        assert calls == [len(graphs)]
        calls.clear()
        exported = await store.export([g.document.id for g in graphs])
        assert exported == graphs
        assert calls == [1] * len(graphs)  # one query per exported document
    finally:
        await store.close()


async def test_a_read_of_the_index_before_a_delete_still_finds_the_texts(tmp_path: Path) -> None:
    """The writer commits a deletion, then waits for the readers of the older index
    version to finish; those readers still cut their spans from the deleted texts."""
    path = tmp_path / "graph.sqlite"
    store = await NetworkxGraphStore.open(path)
    try:
        graphs = _graphs()
        await store.upsert(graphs)
        gone = graphs[0].document.id
        index = store._index
        holding, committed = threading.Event(), threading.Event()
        seen: list[DocumentGraph] = []

        def old_reader() -> None:
            with index.lock.shared():
                holding.set()
                committed.wait()
                seen.extend(store._export_all([gone]))

        reader = threading.Thread(target=old_reader)
        reader.start()
        await asyncio.to_thread(holding.wait)
        deleting = asyncio.ensure_future(store.delete([gone]))
        await asyncio.to_thread(_wait_until_committed, path, gone)
        committed.set()
        report = await deleting
        await asyncio.to_thread(reader.join)
        assert report.documents == 1
        assert seen == [graphs[0]]
        assert await store.documents(ADMIN, ids=[gone]) == []
        assert store._index.retiring == {}
    finally:
        await store.close()


def _wait_until_committed(path: Path, gone: DocumentId) -> None:
    db = sqlite3.connect(path)
    try:
        while db.execute("SELECT 1 FROM documents WHERE id=?", (gone,)).fetchone():
            threading.Event().wait(0.01)
    finally:
        db.close()


async def test_reopened_store_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite"
    store = await NetworkxGraphStore.open(path)
    graphs = _graphs()
    try:
        await store.upsert(graphs)
        before = await store.export([g.document.id for g in graphs])
    finally:
        await store.close()
    store = await NetworkxGraphStore.open(path)
    try:
        assert await store.export([g.document.id for g in graphs]) == before == graphs
        found: list[Entity] = await store.entities([ADA.id], ADMIN)
        assert found == [ADA]
    finally:
        await store.close()
