"""Entity identity is scoped by what a caller may read, walked over real HTTP.

Tenant bravo names "Zorblax Quantum Holdings" and calls it "ZQH"; tenant acme only ever
says "ZQH". Inside acme, group g2 names "Quillon Marine Dynamics" and calls it "QMD";
group g1 only says "QMD".
Before entity ids were scoped, acme's "ZQH" was bravo's entity: acme's entity search
returned bravo's full name with the alias, and acme's answers linked "ZQH" to it. Every
string of every response is checked, not only ids.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import AsyncGraphDatabase

from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, StoreError, entity_id, entity_scope
from graph.backends.networkx_store import NetworkxGraphStore
from graph.scoping import ENTITY_IDS
from tests.bolt_server import DATABASE, PASSWORD, USER, BoltServer
from tests.contract.factories import entity, make_graph, open_test_store, wipe
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.security

#: (tenant, groups, source, text)
DOCUMENTS = [
    ("bravo", (), "bravo-1", "Zorblax Quantum Holdings (ZQH) will acquire Plinth Robotics."),
    ("bravo", (), "bravo-2", "A spokesperson for ZQH said the purchase was on track."),
    ("acme", (), "acme-1", "A spokesperson for ZQH said the deal was on track."),
    ("acme", ("g2",), "acme-g2", "Quillon Marine Dynamics (QMD) will acquire Tessaly Ports."),
    (
        "acme",
        ("g2",),
        "acme-g2b",
        "Analysts at QMD expect the Tessaly purchase to close in Kestrelford.",
    ),
    (
        "acme",
        ("g1",),
        "acme-g1",
        "A spokesperson for QMD said the merger was on track in Kestrelford.",
    ),
]

#: reader -> (tenant, groups, strings it must never see in any response)
READERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "acme": ("acme", (), ("zorblax", "quantum holdings", "quillon", "tessaly", "kestrelford")),
    "acme-g1": ("acme", ("g1",), ("zorblax", "quantum holdings", "quillon", "marine", "tessaly")),
    "acme-g2": ("acme", ("g2",), ("zorblax", "quantum holdings", "merger")),
    "acme-both": ("acme", ("g1", "g2"), ("zorblax", "quantum holdings", "purchase was")),
    "bravo": ("bravo", (), ("deal", "merger", "quillon", "tessaly", "kestrelford")),
}

#: Questions (their words are echoed in answers, so no forbidden string is in one).
QUESTIONS = (
    "What did the spokesperson for ZQH say?",
    "Who will acquire Plinth Robotics?",
    "What did the spokesperson for QMD say?",
)


@dataclass
class Server:
    base: str
    keys: dict[str, str]

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=120
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("entity-scope") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            "admin": {"tenant": None, "admin": True},
            **{n: {"tenant": t, "groups": g} for n, (t, g, _) in READERS.items()},
        },
    )
    with running_api(config) as base:
        running = Server(base, keys)
        with running.client("admin") as admin:
            # One at a time and in this order: bravo's full name is known before acme's
            # acronym arrives, which is what used to merge them.
            for tenant, groups, source, text in DOCUMENTS:
                job = admin.post(
                    "/v1/documents",
                    json={
                        "tenant": tenant,
                        "groups": list(groups),
                        "documents": [{"id": source, "title": f"note {source}", "text": text}],
                    },
                )
                assert job.status_code == 202, job.text
                state = wait_job(admin, job.json()["id"])
                assert state["status"] == "succeeded", state
        yield running


def _entities(server: Server, reader: str, q: str) -> list[dict[str, Any]]:
    with server.client(reader) as client:
        response = client.get("/v1/entities", params={"q": q, "limit": 100})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["entities"]
        return found


def test_acronym_in_one_tenant_never_shows_anothers_name(server: Server) -> None:
    assert _entities(server, "acme", "zorblax") == []
    zqh = [e for e in _entities(server, "acme", "zqh") if e["name"] == "ZQH"]
    assert [(e["name"], e["aliases"]) for e in zqh] == [("ZQH", [])]
    # Within bravo the acronym still resolves to the full name it abbreviates.
    bravo = [e for e in _entities(server, "bravo", "zqh") if "ZQH" in e["aliases"]]
    assert [e["name"] for e in bravo] == ["Zorblax Quantum Holdings"]
    assert zqh[0]["id"] != bravo[0]["id"]
    with server.client("acme") as client:
        assert client.get(f"/v1/entities/{bravo[0]['id']}").status_code == 404


def test_acronym_in_one_group_never_shows_anothers_name(server: Server) -> None:
    assert _entities(server, "acme-g1", "quillon") == []
    qmd = [e for e in _entities(server, "acme-g1", "qmd") if e["name"] == "QMD"]
    assert [(e["name"], e["aliases"]) for e in qmd] == [("QMD", [])]
    g2 = [e for e in _entities(server, "acme-g2", "qmd") if "QMD" in e["aliases"]]
    assert [e["name"] for e in g2] == ["Quillon Marine Dynamics"]
    assert qmd[0]["id"] != g2[0]["id"]


def _walk(server: Server, reader: str) -> list[tuple[str, str, str]]:
    """Every entity read and every question as ``reader``: (what was asked, the answer, the
    answer without the words it echoes from the request, such as the question itself)."""
    seen: list[tuple[str, str, str]] = []
    with server.client(reader) as client:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            response = client.request(method, path, **kwargs)
            assert response.status_code < 500, (path, response.text)
            answer = json.dumps(response.json()).casefold()
            unechoed = answer
            for value in [*kwargs.get("params", {}).values(), *kwargs.get("json", {}).values()]:
                if isinstance(value, str) and value:
                    unechoed = unechoed.replace(json.dumps(value).casefold()[1:-1], "")
            seen.append((f"{method} {path} {kwargs}", answer, unechoed))
            return response.json()

        entities = call("GET", "/v1/entities", params={"q": "", "limit": 500})["entities"]
        assert entities, f"{reader} sees no entity at all"
        for probe in ("zqh", "qmd", "zorblax", "quillon", "plinth", "tessaly", "holdings"):
            call("GET", "/v1/entities", params={"q": probe})
        for entity in entities:
            call("GET", f"/v1/entities/{entity['id']}", params={"mentions": 50, "facts": 50})
            call("GET", f"/v1/entities/{entity['id']}/neighborhood", params={"depth": 3})
        for a, b in itertools.combinations(entities, 2):
            call("GET", "/v1/paths", params={"source": a["id"], "target": b["id"]})
        for question in QUESTIONS:
            for mode in ("threadline", "single", "dense"):
                body = {"question": question, "mode": mode, "unsupported": True}
                call("POST", "/v1/ask", json=body)
            call("POST", "/v1/search", json={"query": question, "k": 10})
    return seen


@pytest.mark.parametrize("reader", sorted(READERS))
def test_no_response_carries_an_unreadable_name(server: Server, reader: str) -> None:
    forbidden = READERS[reader][2]
    for asked, _answered, unechoed in _walk(server, reader):
        leaked = [
            unechoed[max(0, i - 200) : i + 60] for s in forbidden if (i := unechoed.find(s)) >= 0
        ]
        assert not leaked, (reader, asked, leaked)


def test_answers_link_the_acronym_to_the_readers_own_entity(server: Server) -> None:
    with server.client("acme") as client:
        answer = client.post(
            "/v1/ask", json={"question": QUESTIONS[0], "mode": "single", "unsupported": True}
        ).json()
    own = {e["id"] for e in _entities(server, "acme", "")}
    linked = _linked_ids(answer)
    assert linked, answer
    assert linked <= own, (linked - own, answer)


def test_a_name_in_two_readable_scopes_links_both(server: Server) -> None:
    """Kestrelford is one entity in g1 and another in g2; a key holding both reads both."""
    places = {
        reader: [e["id"] for e in _entities(server, reader, "kestrelford")]
        for reader in ("acme-g1", "acme-g2", "acme-both")
    }
    assert len(places["acme-g1"]) == len(places["acme-g2"]) == 1
    assert sorted(places["acme-both"]) == sorted(places["acme-g1"] + places["acme-g2"])
    with server.client("acme-both") as client:
        for mode in ("threadline", "single"):
            answer = client.post(
                "/v1/ask",
                json={"question": "What happened in Kestrelford?", "mode": mode},
            ).json()
            assert set(places["acme-both"]) <= _linked_ids(answer), (mode, answer)


def _linked_ids(payload: Any) -> set[str]:
    """Every ``entity_id`` anywhere in a response."""
    found: set[str] = set()
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key == "entity_id" and isinstance(value, str):
                found.add(value)
            else:
                found |= _linked_ids(value)
    elif isinstance(payload, list):
        for item in payload:
            found |= _linked_ids(item)
    return found


async def test_a_store_with_shared_entity_ids_is_rescoped_on_open(tmp_path: Path) -> None:
    """An embedded store written before ids had a scope: one node shared by two tenants."""
    shared = entity("Zorblax Quantum Holdings", "ORG", aliases=("ZQH",), scope="")
    plinth = entity("Plinth Robotics", "ORG", scope="")
    path = tmp_path / "graph.sqlite"
    store = await NetworkxGraphStore.open(path)
    await store.upsert(
        [
            make_graph(
                "bravo-1",
                "Zorblax Quantum Holdings will acquire Plinth Robotics.",
                tenant="bravo",
                entities={"Zorblax Quantum Holdings": shared, "Plinth Robotics": plinth},
                facts=[("Zorblax Quantum Holdings", "acquire", "Plinth Robotics")],
            ),
            make_graph(
                "acme-1",
                "A spokesperson for ZQH said the deal was on track.",
                entities={"ZQH": shared},
                facts=[],
            ),
        ]
    )
    await store.close()
    with sqlite3.connect(path) as db:  # what a store of the earlier layout holds
        db.execute("DELETE FROM meta WHERE key='entity_ids'")
    acme, bravo = Access(tenant="acme"), Access(tenant="bravo")
    store = await NetworkxGraphStore.open(path)
    try:
        assert await store.search_entities("zorblax", acme) == []
        (zqh,) = await store.search_entities("zqh", acme)
        assert (zqh.name, zqh.aliases) == ("ZQH", ())
        assert zqh.id == entity_id("ZQH", "ORG", scope=entity_scope("acme", ["*"]))
        (full,) = await store.search_entities("zorblax", bravo)
        assert (full.name, full.aliases) == ("Zorblax Quantum Holdings", ())
        (fact,) = await store.relations([full.id], bravo)
        assert fact.object_id == entity_id(
            "Plinth Robotics", "ORG", scope=entity_scope("bravo", ["*"])
        )
        assert await store.entities([shared.id, plinth.id], Access.admin()) == []
        assert (await store.stats(Access.admin())).documents == 2
    finally:
        await store.close()
    # The marker is written with the new ids: the next open reads them as they are.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='entity_ids'").fetchone()


@pytest.mark.neo4j
async def test_a_neo4j_database_with_shared_entity_ids_is_refused(bolt_server: BoltServer) -> None:
    store = await open_test_store(bolt_server)
    await wipe(store)
    shared = entity("Zorblax Quantum Holdings", "ORG", scope="")
    text = "Zorblax Quantum Holdings will acquire a rival."
    graph = make_graph("z", text, entities={"Zorblax Quantum Holdings": shared}, facts=[])
    await store.upsert([graph])
    await store.close()
    driver = AsyncGraphDatabase.driver(bolt_server.uri, auth=(USER, PASSWORD))
    try:
        # What a database of the earlier layout holds: entities and no marker.
        await driver.execute_query("MATCH (m:ThreadlineMeta) DELETE m", database_=DATABASE)
        with pytest.raises(StoreError, match="threadline migrate --to networkx"):
            await open_test_store(bolt_server)
    finally:
        await driver.execute_query(
            "MERGE (m:ThreadlineMeta {key: 'entity_ids'}) SET m.value = $layout",
            layout=ENTITY_IDS,
            database_=DATABASE,
        )
        await driver.close()
    store = await open_test_store(bolt_server)
    await wipe(store)
    await store.close()


async def test_a_deleted_name_is_not_resolved_to_again(tmp_path: Path) -> None:
    """Resolution forgets a deleted document's names: a later acronym is its own entity."""
    bravo = Access(tenant="bravo")
    async with await Threadline.open(Settings(data_dir=tmp_path / "data")) as tl:
        full = SourceDocument(source="b1", title="b1", text=DOCUMENTS[0][3], origin="b1")
        (doc_id,) = (await tl.ingest([full], tenant="bravo")).document_ids
        await tl.delete([doc_id], Access.admin())
        short = SourceDocument(source="b2", title="b2", text=DOCUMENTS[1][3], origin="b2")
        await tl.ingest([short], tenant="bravo")
        found = await tl.graph.search_entities("", bravo)
        assert [(e.name, e.aliases) for e in found] == [("ZQH", ())]
