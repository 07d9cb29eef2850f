"""The Neo4j store against a real Bolt server: what the shared contract cannot show.

Transactions that fail leave nothing behind, the driver survives a server restart, two
writers can share entities, big batches go through, misconfiguration produces a message
that names the server, and the whole engine (ingest, ask, delete, migrate) runs on it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import Settings, Threadline
from engine.cli import app
from graph import (
    Access,
    ConfigError,
    DocumentGraph,
    Relation,
    StoreError,
    StoreUnavailableError,
    entity_id,
    relation_id,
)
from graph.backends.neo4j_store import Neo4jGraphStore
from tests.bolt_server import DATABASE, PASSWORD, USER, BoltServer
from tests.conftest import SAMPLE
from tests.contract.factories import entity, make_graph, open_test_store, wipe

pytestmark = pytest.mark.neo4j
ADMIN = Access.admin()


@pytest.fixture
async def store(bolt_server: BoltServer) -> AsyncIterator[Neo4jGraphStore]:
    opened = await open_test_store(bolt_server)
    await wipe(opened)
    yield opened
    await opened.close()


def _people(source: str, names: list[str], **kwargs: object) -> DocumentGraph:
    text = " and ".join(names) + " met."
    return make_graph(
        source,
        text,
        entities={n: entity(n) for n in names},
        facts=[(names[0], "meet", n) for n in names[1:]],
        **kwargs,  # type: ignore[arg-type]
    )


async def test_detects_the_server_dialect(store: Neo4jGraphStore) -> None:
    assert store.dialect == "arcadedb"


async def test_failed_transaction_leaves_nothing(store: Neo4jGraphStore) -> None:
    good = _people("good", ["Ada Lovelace", "Charles Babbage"])
    await store.upsert([good])
    before = await store.stats(ADMIN)
    ghost = entity_id("Nobody Known", "PERSON", scope="acme")
    bad = _people("bad", ["Alan Turing", "Grace Hopper"])
    broken_fact = Relation(
        id=relation_id(bad.entities[0].id, "know", ghost),
        subject_id=bad.entities[0].id,
        predicate="know",
        object_id=ghost,
        kind="svo",
        confidence=0.5,
        evidence=bad.relations[0].evidence,
    )
    broken = bad.model_copy(update={"relations": (*bad.relations, broken_fact)})
    # The document, its chunk, entities and mentions are written before the fact fails.
    with pytest.raises(StoreError, match="facts refer to entities"):
        await store.upsert([broken], replaces=[good.document.id])
    assert await store.stats(ADMIN) == before
    assert await store.search_entities("Turing", ADMIN) == []
    assert [d.source for d in await store.documents(ADMIN)] == ["good"]


async def test_subject_keys_leave_with_their_documents(store: Neo4jGraphStore) -> None:
    """What a deleted document was about is not kept as a lookup key (a name of erased
    text would otherwise outlive it); a key other documents share stays."""

    def memo(source: str, text: str, about: tuple[str, ...]) -> DocumentGraph:
        return make_graph(source, text, entities={}, facts=[], about=about)

    kept = memo("a.txt", "Globex grew.", ("Globex",))
    gone = memo("b.txt", "Globex and Initech signed.", ("Globex", "Initech"))
    await store.upsert([kept, gone])
    keys = "MATCH (t:Topic) RETURN t.key AS key ORDER BY key"
    assert [r["key"] for r in await store._read(keys)] == ["globex", "initech"]
    await store.delete([gone.document.id])
    assert [r["key"] for r in await store._read(keys)] == ["globex"]
    await store.upsert([memo("c.txt", "Initech moved.", ("Initech",))], replaces=[kept.document.id])
    assert [r["key"] for r in await store._read(keys)] == ["initech"]


async def test_reconnects_after_the_server_restarts(
    store: Neo4jGraphStore, bolt_server: BoltServer
) -> None:
    await store.upsert([_people("before", ["Ada Lovelace", "Charles Babbage"])])
    bolt_server.restart()
    # Pooled connections are dead now; the driver must notice and open new ones.
    assert [d.source for d in await store.documents(ADMIN)] == ["before"]
    await store.upsert([_people("after", ["Alan Turing", "Ada Lovelace"])])
    assert (await store.stats(ADMIN)).documents == 2


async def test_concurrent_writers_share_entities(
    store: Neo4jGraphStore, bolt_server: BoltServer
) -> None:
    other = await open_test_store(bolt_server)
    shared = ["Ada Lovelace", "Charles Babbage", "Alan Turing"]
    try:
        first = [_people(f"w1-{i}", [*shared, f"Person{i}a Smith"]) for i in range(8)]
        second = [_people(f"w2-{i}", [*shared, f"Person{i}b Jones"]) for i in range(8)]

        async def write(target: Neo4jGraphStore, graphs: list[DocumentGraph]) -> None:
            for graph in graphs:
                await target.upsert([graph])

        await asyncio.gather(write(store, first), write(other, second))
    finally:
        await other.close()
    stats = await store.stats(ADMIN)
    assert stats.documents == 16
    assert stats.entities == 3 + 16  # shared entities exist once
    assert stats.mentions == 16 * 4
    ada = (await store.match_entities(["Ada Lovelace"], ADMIN))["Ada Lovelace"]
    assert len(ada) == 1
    meet = await store.relations([ada[0].id], ADMIN, predicates=["meet"])
    babbage = next(r for r in meet if r.object_id == entity("Charles Babbage").id)
    assert len({s.document_id for s in babbage.evidence}) == 16


async def test_ten_thousand_entity_batch(store: Neo4jGraphStore) -> None:
    names = [f"Entity{i:05d} Example" for i in range(10_000)]
    entities = {n: entity(n, "ORG") for n in names}
    graph = make_graph("big", ". ".join(names) + ".", entities=entities, facts=[])
    facts = tuple(
        Relation(
            id=relation_id(entities[a].id, "near", entities[b].id),
            subject_id=entities[a].id,
            predicate="near",
            object_id=entities[b].id,
            kind="cooccurrence",
            confidence=0.3,
            evidence=(graph.mentions[i].span,),
        )
        for i, (a, b) in enumerate(itertools.pairwise(names))
    )
    graph = graph.model_copy(update={"relations": facts})
    await store.upsert([graph])
    stats = await store.stats(ADMIN)
    assert (stats.entities, stats.mentions, stats.relations) == (10_000, 10_000, 9_999)
    found = await store.search_entities("entity09999", ADMIN)
    assert [e.name for e in found] == ["Entity09999 Example"]
    report = await store.delete([graph.document.id])
    assert (report.entities, report.relations, report.mentions) == (10_000, 9_999, 10_000)
    assert await store.stats(ADMIN) == type(stats)(
        documents=0, chunks=0, entities=0, mentions=0, relations=0
    )


async def test_search_uses_the_full_text_index(store: Neo4jGraphStore) -> None:
    await store.upsert([_people("a", ["Ada Lovelace", "Charles Babbage"])])
    assert [e.name for e in await store.search_entities("love", ADMIN)] == ["Ada Lovelace"]
    assert [e.name for e in await store.search_entities("ovelac", ADMIN)] == ["Ada Lovelace"]
    assert store._fulltext  # the index answered; no fallback was needed


async def test_clear_errors_for_misconfiguration(bolt_server: BoltServer) -> None:
    with pytest.raises(StoreUnavailableError, match="rejected the credentials") as exc:
        await Neo4jGraphStore.open(bolt_server.uri, user=USER, password="wrong", database=DATABASE)
    assert bolt_server.uri in str(exc.value)
    with pytest.raises(StoreUnavailableError, match=r"cannot reach Neo4j at bolt://127\.0\.0\.1:1"):
        await Neo4jGraphStore.open(
            "bolt://127.0.0.1:1", user=USER, password=PASSWORD, connection_timeout=2
        )
    with pytest.raises(ConfigError, match="no database 'missing'"):
        await Neo4jGraphStore.open(
            bolt_server.uri,
            user=USER,
            password=PASSWORD,
            database="missing",
            http_url=bolt_server.http_url,
        )
    with pytest.raises(ConfigError, match="invalid Neo4j URI"):
        await Neo4jGraphStore.open("http://x:1", user=USER, password=PASSWORD)


def _neo4j_settings(server: BoltServer, data_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "graph": {
                "backend": "neo4j",
                "uri": server.uri,
                "user": USER,
                "password": PASSWORD,
                "database": DATABASE,
                "http_url": server.http_url,
            },
        }
    )


async def test_engine_runs_on_neo4j(
    store: Neo4jGraphStore, bolt_server: BoltServer, tmp_path: Path, small_corpus: Path
) -> None:
    settings = _neo4j_settings(bolt_server, tmp_path / "data")
    async with await Threadline.open(settings) as tl:
        report = await tl.ingest(tl.read([small_corpus]), tenant="acme", groups=["research"])
        assert report.added == 30
        answer = await tl.ask(
            "Who was the first president of the association which published "
            "Journal of Psychotherapy Integration?",
            access=Access(tenant="acme", groups=frozenset({"research"})),
        )
        assert answer.claims
        docs = {d.id: d for d in await tl.browse(ADMIN).documents(limit=100)}
        for claim in answer.claims:
            assert claim.verdict == "supported"
            for span in claim.spans:
                assert docs[span.document_id].text[span.start : span.end] == span.text
        # Another tenant, or the same tenant without the group, sees nothing.
        for outsider in (Access(tenant="globex"), Access(tenant="acme")):
            assert (await tl.stats(outsider)).entities == 0
            assert not (
                await tl.retrieve("Journal of Psychotherapy Integration", outsider)
            ).evidence
        removed = await tl.delete(list(docs), Access.admin())
        assert removed.documents == 30
        assert (await tl.stats(ADMIN)).entities == 0


@pytest.mark.slow
def test_migrate_round_trips_the_sample(
    bolt_server: BoltServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def clear() -> None:
        opened = await open_test_store(bolt_server)
        await wipe(opened)
        await opened.close()

    asyncio.run(clear())
    for key, value in {
        "URI": bolt_server.uri,
        "USER": USER,
        "PASSWORD": PASSWORD,
        "DATABASE": DATABASE,
        "HTTP_URL": bolt_server.http_url,
    }.items():
        monkeypatch.setenv(f"THREADLINE_GRAPH__{key}", value)
    runner = CliRunner()
    embedded, back = tmp_path / "embedded", tmp_path / "back"
    result = runner.invoke(app, ["ingest", str(SAMPLE), "--data-dir", str(embedded)])
    assert result.exit_code == 0, result.output
    there = runner.invoke(app, ["migrate", "--to", "neo4j", "--data-dir", str(embedded), "--json"])
    assert there.exit_code == 0, there.output
    report = json.loads(there.stdout.strip().splitlines()[-1])
    assert report["copied"] == report["documents"] == 196
    assert report["source"] == report["target"]
    assert report["facts_checked"] >= 400
    home = runner.invoke(app, ["migrate", "--to", "networkx", "--data-dir", str(back), "--json"])
    assert home.exit_code == 0, home.output
    returned = json.loads(home.stdout.strip().splitlines()[-1])
    assert returned["target"] == report["source"]  # identical counts after the round trip
    # A second run finds everything in place and copies nothing.
    again = runner.invoke(app, ["migrate", "--to", "neo4j", "--data-dir", str(embedded), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["already_present"] == 196
