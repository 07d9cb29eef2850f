"""Erasure: after a document is deleted, no string only it stated is found anywhere.

Three documents of one tenant: ``early`` names Zurich, ``memo`` (the one deleted) states a
unique full name whose acronym the others also use, a unique spelling of a shared place
(an alias), a unique person, organisation and sentence; ``late`` uses the acronym and the
place. After ``memo`` is deleted, every read path, through the Python API and over real
HTTP, is walked with the tenant's key and with an operator's, and none returns a string
unique to ``memo``; the model-extraction cache file holds none either.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic_core import to_jsonable_python

from engine import Settings, Threadline
from engine.api import create_app
from engine.keys import KeyStore
from engine.readers import SourceDocument
from extractors.model_extractor import ExtractionCache
from extractors.prompts import EXTRACT
from graph import Access, EntityId
from tests.bolt_server import free_port

pytestmark = pytest.mark.security

ACME = Access(tenant="acme")
ADMIN = Access.admin()

EARLY = ("early", "The Zurich office opened in spring, said Mara Olsen.")
MEMO = (
    "memo",
    "Zorblax Quantum Holdings (ZQH) will acquire Kestrel Dynamics in Zürich. "
    "Theodora Vantrell, the chief executive of ZQH, signed the Marrowgate accord in Zürich.",
)
LATE = ("late", "A spokesperson for ZQH said the company would open an office in Zurich.")
#: Ingested after everything naming ZQH is gone: resolution must not remember memo's name.
AFTER = ("after", "A spokesperson for ZQH said the company would hire engineers in Zurich.")

#: Strings only ``memo`` states (its full name, alias, people, organisations, sentence).
UNIQUE = ("Zorblax", "Quantum Holdings", "Zürich", "Kestrel", "Vantrell", "Theodora", "Marrowgate")
#: Questions that reach memo's sentences without naming anything unique to it.
QUESTIONS = (
    "Who will ZQH acquire?",
    "Who is the chief executive of ZQH?",
    "What accord was signed in Zurich?",
)
MODES = ("threadline", "single", "dense")
#: A model reply quoting memo, as a model-extraction run would have cached it.
CACHED_REPLY = {
    "entities": [{"name": "Zorblax Quantum Holdings", "type": "ORG"}],
    "relations": [],
    "quote": MEMO[1],
}


def _decoded(text: str) -> Any:
    """A response body as data: JSON, or Server-Sent Events whose data lines are JSON."""
    try:
        return json.loads(text)
    except ValueError:
        lines = []
        for line in text.splitlines():
            body = line.removeprefix("data:").strip()
            try:
                lines.append(json.loads(body))
            except ValueError:
                lines.append(line)
        return lines


def _leaks(value: Any) -> list[str]:
    """The unique strings ``value`` contains, whatever its shape."""
    data = _decoded(value) if isinstance(value, str) else value
    text = json.dumps(to_jsonable_python(data), ensure_ascii=False).casefold()
    return [u for u in UNIQUE if u.casefold() in text]


def _source(pair: tuple[str, str]) -> SourceDocument:
    source, text = pair
    return SourceDocument(source=source, title=source.title(), text=text, origin=source)


def _seed_cache(data_dir: Path) -> tuple[str, str]:
    """Cache a reply for memo's text and one for late's, as model extraction would."""
    cache = ExtractionCache(data_dir / "model_cache.sqlite")
    try:
        keys = (
            ExtractionCache.key(MEMO[1], EXTRACT.id, "extraction-model"),
            ExtractionCache.key(LATE[1], EXTRACT.id, "extraction-model"),
        )
        cache.put(keys[0], EXTRACT.id, "extraction-model", CACHED_REPLY)
        cache.put(keys[1], EXTRACT.id, "extraction-model", {"entities": [], "relations": []})
    finally:
        cache.close()
    return keys


def _check_files(data_dir: Path, pattern: str) -> None:
    """No file matching ``pattern`` in the data dir holds a unique string, even unlinked."""
    paths = list(data_dir.glob(pattern))
    assert paths, f"no {pattern} in {data_dir}"
    for path in paths:
        raw = path.read_bytes()
        for text in UNIQUE:
            assert text.encode() not in raw, f"{path.name} still holds {text!r}"


def _check_cache(data_dir: Path, keys: tuple[str, str]) -> None:
    cache = ExtractionCache(data_dir / "model_cache.sqlite")
    try:
        assert cache.get(keys[0]) is None, "the deleted chunk's model extraction is still cached"
        assert cache.get(keys[1]) is not None, "a kept chunk's model extraction was purged"
    finally:
        cache.close()
    _check_files(data_dir, "model_cache.sqlite*")


# ---------------------------------------------------------------------------- Python API


async def _walk(tl: Threadline, access: Access, zqh: EntityId) -> dict[str, Any]:
    """Every read of the Python API, keyed by what it is."""
    browse = tl.browse(access)
    seen: dict[str, Any] = {"search all": await browse.entities("", limit=500)}
    for text in (*UNIQUE, "ZQH", "Zurich"):
        seen[f"search {text}"] = await browse.entities(text, limit=500)
    seen["entity by id"] = await browse.detail(zqh, mentions=100, facts=100)
    seen["entity by name"] = await browse.detail("ZQH", mentions=100, facts=100)
    seen["facts"] = await browse.facts("ZQH", cooccurrence=True)
    seen["mentions"] = await browse.mentions("Zurich", limit=100)
    seen["neighbourhood"] = await browse.neighborhood(["ZQH", "Zurich"], depth=3, limit=500)
    seen["paths"] = await browse.paths("ZQH", "Zurich", max_hops=6, limit=20)
    seen["documents"] = await browse.documents(limit=1000)
    for question in QUESTIONS:
        for mode in MODES:
            events = [e async for e in tl.ask_stream(question, access, mode=mode, unsupported=True)]
            seen[f"ask {mode} {question}"] = events
            done = [e.answer for e in events if e.answer is not None]
            assert done, f"ask {mode} ended without an answer"
            seen[f"sources {mode} {question}"] = await browse.sources(done[-1].evidence)
            retrieval = await tl.retrieve(question, access, k=20, mode=mode)
            seen[f"search {mode} {question}"] = await browse.sources(retrieval.evidence)
    return seen


async def test_deleting_a_document_erases_it_from_every_read_path(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
        for pair in (EARLY, MEMO, LATE):
            await tl.ingest([_source(pair)], tenant="acme")
        memo = next(d for d in await tl.graph.documents(ADMIN) if d.source == "memo")
        (zqh,) = await tl.browse(ACME).entities("Zorblax")
        # The walk can fail: before the delete it finds memo's strings.
        before = await _walk(tl, ACME, zqh.id)
        assert set(_leaks(before)) == set(UNIQUE)
        exported = await tl.graph.export([memo.id])
        memo_chunks = [c.id for g in exported for c in g.chunks]
        assert await tl.vectors.sentences(memo_chunks, ADMIN)
        keys = _seed_cache(data_dir)

        await tl.delete([memo.id], ACME)

        for access in (ACME, ADMIN):
            for what, value in (await _walk(tl, access, zqh.id)).items():
                assert not _leaks(value), f"{what} still shows {_leaks(value)}: {value!r}"
        (renamed,) = await tl.browse(ACME).entities("ZQH")
        assert (renamed.id, renamed.name, renamed.aliases) == (zqh.id, "ZQH", ())
        assert not await tl.vectors.sentences(memo_chunks, ADMIN)
        _check_cache(data_dir, keys)
        _check_files(data_dir, "graph.sqlite*")
        # Counts are those of a store that never held memo.
        erased = await tl.stats(ADMIN)
        async with await Threadline.open(Settings(data_dir=tmp_path / "fresh")) as fresh:
            for pair in (EARLY, LATE):
                await fresh.ingest([_source(pair)], tenant="acme")
            assert erased == await fresh.stats(ADMIN)

        # Resolution does not remember names learned from deleted documents.
        late = next(d for d in await tl.graph.documents(ADMIN) if d.source == "late")
        await tl.delete([late.id], ACME)
        await tl.ingest([_source(AFTER)], tenant="acme")
        found = await tl.browse(ACME).entities("", limit=500)
        assert not _leaks(found), found
        assert "ZQH" in {e.name for e in found}


# ---------------------------------------------------------------------------- HTTP API


class _Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.keys = asyncio.run(self._create_keys())
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(
                    Settings.model_validate(
                        {
                            "data_dir": data_dir,
                            "api": {"rate_per_minute": 100_000, "burst": 10_000},
                        }
                    )
                ),
                host="127.0.0.1",
                port=free_port(),
                log_config=None,
                access_log=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _create_keys(self) -> dict[str, str]:
        store = await KeyStore.open(self.data_dir / "keys.sqlite")
        try:
            specs: dict[str, dict[str, Any]] = {
                "admin": {"tenant": None, "admin": True, "name": "ops"},
                "acme": {"tenant": "acme"},
            }
            return {name: (await store.create(**spec)).secret for name, spec in specs.items()}
        finally:
            await store.close()

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.server.config.port}",
            headers={"Authorization": f"Bearer {self.keys[key]}"},
            timeout=120,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    running = _Server(tmp_path_factory.mktemp("erasure") / "data")
    running.thread.start()
    deadline = time.monotonic() + 120
    while not running.server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        assert running.thread.is_alive(), "the API server stopped while starting"
        time.sleep(0.1)
    try:
        yield running
    finally:
        running.server.should_exit = True
        running.thread.join(timeout=60)


def _ingest(client: httpx.Client, pair: tuple[str, str]) -> None:
    source, text = pair
    job = client.post(
        "/v1/documents", json={"documents": [{"id": source, "title": source.title(), "text": text}]}
    )
    assert job.status_code == 202, job.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{job.json()['id']}").json()
        if state["status"] in {"succeeded", "failed"}:
            assert state["status"] == "succeeded", state
            return
        time.sleep(0.2)
    raise AssertionError("the ingest job did not finish")


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    return response.json()


def _walk_http(client: httpx.Client, zqh: str, zurich: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"entities": _get(client, "/v1/entities", limit=500)}
    for text in (*UNIQUE, "ZQH", "Zurich"):
        seen[f"entities {text}"] = _get(client, "/v1/entities", q=text, limit=500)
    for eid in (zqh, zurich):
        seen[f"entity {eid}"] = _get(client, f"/v1/entities/{eid}", mentions=500, facts=500)
        seen[f"neighbourhood {eid}"] = _get(
            client, f"/v1/entities/{eid}/neighborhood", depth=3, limit=500
        )
    seen["paths"] = _get(client, "/v1/paths", source=zqh, target=zurich, max_hops=6, limit=20)
    documents = _get(client, "/v1/documents", limit=1000)
    seen["documents"] = documents
    for doc in documents["documents"]:
        seen[f"document {doc['id']}"] = _get(client, f"/v1/documents/{doc['id']}")
    for question in QUESTIONS:
        for mode in MODES:
            answer = client.post(
                "/v1/ask", json={"question": question, "mode": mode, "unsupported": True}
            )
            assert answer.status_code == 200, answer.text
            seen[f"ask {mode} {question}"] = answer.text
            streamed = client.post(
                "/v1/ask",
                json={"question": question, "mode": mode, "unsupported": True, "stream": True},
            )
            assert streamed.status_code == 200, streamed.text
            seen[f"ask stream {mode} {question}"] = streamed.text
            hits = client.post("/v1/search", json={"query": question, "mode": mode, "k": 50})
            assert hits.status_code == 200, hits.text
            seen[f"search {mode} {question}"] = hits.text
    return seen


def test_deleting_over_http_erases_it_from_every_read_route(server: _Server) -> None:
    with server.client("acme") as acme, server.client("admin") as admin:
        for pair in (EARLY, MEMO, LATE):
            _ingest(acme, pair)
        (zqh,) = _get(acme, "/v1/entities", q="zorblax")["entities"]
        (zurich,) = _get(acme, "/v1/entities", q="zurich")["entities"]
        before = _walk_http(acme, zqh["id"], zurich["id"])
        assert set(_leaks(before)) == set(UNIQUE)
        memo = next(
            d["id"]
            for d in _get(admin, "/v1/documents", limit=1000)["documents"]
            if d["source"] == "memo"
        )
        keys = _seed_cache(server.data_dir)

        deleted = acme.delete(f"/v1/documents/{memo}")
        assert deleted.status_code == 200, deleted.text

        for client in (acme, admin):
            for what, value in _walk_http(client, zqh["id"], zurich["id"]).items():
                assert not _leaks(value), f"{what} still shows {_leaks(value)}: {value!r}"
            gone = client.get(f"/v1/documents/{memo}")
            assert gone.status_code == 404
            assert not _leaks(gone.text)
        _check_cache(server.data_dir, keys)
