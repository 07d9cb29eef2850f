"""The VectorIndex contract, run against Qdrant Edge and qdrant-client's local mode."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from graph import (
    PUBLIC_GROUP,
    Access,
    ChunkId,
    DocumentId,
    SentenceVector,
    StoreError,
    StoreUnavailableError,
    VectorIndex,
    VectorPoint,
)
from graph.backends.qdrant_client_index import QdrantClientVectorIndex
from graph.backends.qdrant_edge_index import QdrantEdgeVectorIndex

DIM = 8
Opener = Callable[[], Awaitable[VectorIndex]]


async def _edge(tmp_path: Path) -> Opener:
    async def open_() -> VectorIndex:
        return await QdrantEdgeVectorIndex.open(tmp_path / "edge", dimension=DIM)

    return open_


async def _client_memory(tmp_path: Path) -> Opener:
    async def open_() -> VectorIndex:
        return await QdrantClientVectorIndex.open(
            collection="chunks", dimension=DIM, location=":memory:"
        )

    return open_


async def _client_path(tmp_path: Path) -> Opener:
    async def open_() -> VectorIndex:
        return await QdrantClientVectorIndex.open(
            collection="chunks", dimension=DIM, path=str(tmp_path / "qdrant-local")
        )

    return open_


BACKENDS = {"edge": _edge, "client-memory": _client_memory, "client-path": _client_path}
PERSISTENT = {"edge", "client-path"}


def _unit(seed: int) -> tuple[float, ...]:
    vec = np.random.default_rng(seed).normal(size=DIM)
    return tuple(float(x) for x in vec / np.linalg.norm(vec))


def _point(
    n: int,
    doc: str,
    tenant: str = "acme",
    groups: tuple[str, ...] = (PUBLIC_GROUP,),
    seed: int | None = None,
) -> VectorPoint:
    return VectorPoint(
        chunk_id=ChunkId(f"chk_{n:04d}"),
        document_id=DocumentId(doc),
        tenant=tenant,
        groups=groups,
        vector=_unit(n if seed is None else seed),
    )


@pytest.fixture(params=sorted(BACKENDS))
async def opened(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, VectorIndex, Opener]]:
    opener = await BACKENDS[request.param](tmp_path)
    index = await opener()
    yield request.param, index, opener
    await index.close()


@pytest.fixture
async def index(opened: tuple[str, VectorIndex, Opener]) -> VectorIndex:
    return opened[1]


@pytest.fixture
async def loaded(index: VectorIndex) -> VectorIndex:
    points = [_point(i, f"doc_{i % 5}") for i in range(40)]
    points += [
        _point(100, "doc_secret", groups=("legal",)),
        _point(101, "doc_globex", tenant="globex"),
    ]
    await index.upsert(points)
    return index


async def test_satisfies_protocol(index: VectorIndex) -> None:
    assert isinstance(index, VectorIndex)
    assert index.dimension == DIM


async def test_nearest_first(loaded: VectorIndex) -> None:
    hits = await loaded.search(_unit(7), Access(tenant="acme"), limit=5)
    assert hits[0].chunk_id == "chk_0007"
    assert hits[0].document_id == "doc_2"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(hits) == 5


async def test_filters_by_tenant_and_group(loaded: VectorIndex) -> None:
    acme = await loaded.search(_unit(100), Access(tenant="acme"), limit=50)
    assert "chk_0100" not in {h.chunk_id for h in acme}
    assert "chk_0101" not in {h.chunk_id for h in acme}
    legal = await loaded.search(
        _unit(100), Access(tenant="acme", groups=frozenset({"legal"})), limit=1
    )
    assert legal[0].chunk_id == "chk_0100"
    globex = await loaded.search(_unit(3), Access(tenant="globex"), limit=50)
    assert [h.chunk_id for h in globex] == ["chk_0101"]
    assert await loaded.count(Access(tenant="acme")) == 40
    assert await loaded.count(Access(tenant="acme", groups=frozenset({"legal"}))) == 41
    assert await loaded.count(Access.admin()) == 42


async def test_restrict_to_documents(loaded: VectorIndex) -> None:
    hits = await loaded.search(
        _unit(7), Access(tenant="acme"), limit=50, document_ids=[DocumentId("doc_1")]
    )
    assert hits
    assert {h.document_id for h in hits} == {"doc_1"}


async def test_upsert_replaces_by_chunk_id(loaded: VectorIndex) -> None:
    await loaded.upsert([_point(7, "doc_2", seed=999)])
    assert await loaded.count(Access.admin()) == 42
    hits = await loaded.search(_unit(999), Access(tenant="acme"), limit=1)
    assert hits[0].chunk_id == "chk_0007"


async def test_delete_documents(loaded: VectorIndex) -> None:
    await loaded.delete_documents([DocumentId("doc_0"), DocumentId("doc_secret")])
    assert await loaded.count(Access.admin()) == 42 - 8 - 1
    hits = await loaded.search(_unit(0), Access.admin(), limit=50)
    assert not {"doc_0", "doc_secret"} & {h.document_id for h in hits}
    await loaded.delete_documents([])


async def test_wrong_dimension_is_rejected(index: VectorIndex) -> None:
    bad = VectorPoint(
        chunk_id=ChunkId("chk_bad"),
        document_id=DocumentId("d"),
        tenant="acme",
        groups=("*",),
        vector=(1.0, 0.0),
    )
    with pytest.raises(StoreError, match="dimensions"):
        await index.upsert([bad])


@pytest.mark.parametrize("name", sorted(PERSISTENT))
async def test_persists_across_reopen(name: str, tmp_path: Path) -> None:
    opener = await BACKENDS[name](tmp_path)
    index = await opener()
    await index.upsert([_point(i, "doc_x") for i in range(10)])
    await index.close()
    again = await opener()
    try:
        assert await again.count(Access.admin()) == 10
        hits = await again.search(_unit(4), Access(tenant="acme"), limit=1)
        assert hits[0].chunk_id == "chk_0004"
    finally:
        await again.close()


async def test_edge_refuses_a_second_opener_and_a_wrong_dimension(tmp_path: Path) -> None:
    first = await QdrantEdgeVectorIndex.open(tmp_path / "edge", dimension=DIM)
    try:
        with pytest.raises(StoreUnavailableError, match="Another Threadline process"):
            await QdrantEdgeVectorIndex.open(tmp_path / "edge", dimension=DIM)
    finally:
        await first.close()
    with pytest.raises(StoreUnavailableError, match="embedder"):
        await QdrantEdgeVectorIndex.open(tmp_path / "edge", dimension=DIM * 2)


async def test_a_query_the_driver_rejects_is_a_store_error(index: VectorIndex) -> None:
    await index.upsert([_point(1, "doc_a")])
    with pytest.raises(StoreError, match=r"Qdrant search at .+ failed") as caught:
        await index.search((1.0, 0.0, 0.0), Access(tenant="acme"))
    assert not isinstance(caught.value, StoreUnavailableError)
    assert caught.value.__cause__ is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# qdrant-client checks the server version in a thread of its own, which warns when it fails.
@pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")
async def test_client_with_no_server_listening_is_unavailable() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    before = set(threading.enumerate())
    with pytest.raises(
        StoreUnavailableError, match=re.escape(f"cannot reach Qdrant at {url}")
    ) as caught:
        await QdrantClientVectorIndex.open(collection="chunks", dimension=DIM, url=url)
    assert "THREADLINE_VECTOR__URL" in str(caught.value)
    for thread in set(threading.enumerate()) - before:
        if "_check_compatibility" in thread.name:
            thread.join(timeout=10)  # so that its warning is filtered here, not in a later test


async def test_client_refuses_a_second_opener_of_a_local_directory(tmp_path: Path) -> None:
    path = str(tmp_path / "qdrant-local")
    first = await QdrantClientVectorIndex.open(collection="chunks", dimension=DIM, path=path)
    try:
        with pytest.raises(StoreUnavailableError, match="Another Threadline process") as caught:
            await QdrantClientVectorIndex.open(collection="chunks", dimension=DIM, path=path)
        assert path in str(caught.value)
    finally:
        await first.close()


TEXTS = {
    1: "The Analytical Engine was designed by Charles Babbage in London.",
    2: "Ada Lovelace wrote notes on the engine and its programs.",
    3: "Grace Hopper built compilers for the UNIVAC computer.",
    4: "London is the capital of England and a large city.",
}


async def test_keyword_search_ranks_by_bm25_and_filters(index: VectorIndex) -> None:
    from extractors.sparse import Bm25Encoder

    bm25 = Bm25Encoder()
    points = [
        _point(n, f"doc_{n}").model_copy(update={"sparse": bm25.encode_document(text)})
        for n, text in TEXTS.items()
    ]
    points.append(
        _point(5, "doc_secret", groups=("legal",)).model_copy(
            update={"sparse": bm25.encode_document("Secret compilers notes by Grace Hopper.")}
        )
    )
    await index.upsert(points)
    acme = Access(tenant="acme")
    hits = await index.search_sparse(bm25.encode_query("Who built compilers?"), acme, limit=3)
    assert [h.chunk_id for h in hits] == ["chk_0003"]
    hits = await index.search_sparse(bm25.encode_query("engine London"), acme, limit=4)
    assert hits[0].chunk_id == "chk_0001"  # both terms
    assert {h.chunk_id for h in hits} == {"chk_0001", "chk_0002", "chk_0004"}
    legal = Access(tenant="acme", groups=frozenset({"legal"}))
    hits = await index.search_sparse(bm25.encode_query("compilers"), legal, limit=5)
    assert {h.chunk_id for h in hits} == {"chk_0003", "chk_0005"}
    only = await index.search_sparse(
        bm25.encode_query("compilers"), legal, limit=5, document_ids=[DocumentId("doc_secret")]
    )
    assert [h.chunk_id for h in only] == ["chk_0005"]
    assert await index.search_sparse(bm25.encode_query("the of and"), acme) == []


def _with_sentences(point: VectorPoint, *seeds: int) -> VectorPoint:
    sentences = tuple(
        SentenceVector(start=10 * i, end=10 * i + 9, vector=_unit(seed))
        for i, seed in enumerate(seeds)
    )
    return point.model_copy(update={"sentences": sentences})


async def test_sentence_vectors_round_trip_and_filter(index: VectorIndex) -> None:
    await index.upsert(
        [
            _with_sentences(_point(1, "doc_a"), 11, 12, 13),
            _point(2, "doc_a"),  # a chunk without sentence vectors
            _with_sentences(_point(3, "doc_secret", groups=("legal",)), 31),
            _with_sentences(_point(4, "doc_globex", tenant="globex"), 41),
        ]
    )
    acme = Access(tenant="acme")
    ids = [ChunkId(f"chk_{n:04d}") for n in (1, 2, 3, 4, 99)]
    found = await index.sentences(ids, acme)
    assert set(found) == {"chk_0001"}
    first = found[ChunkId("chk_0001")]
    assert [(s.start, s.end) for s in first] == [(0, 9), (10, 19), (20, 29)]
    for sentence, seed in zip(first, (11, 12, 13), strict=True):
        assert np.allclose(sentence.vector, _unit(seed), atol=1e-5)
    legal = await index.sentences(ids, Access(tenant="acme", groups=frozenset({"legal"})))
    assert set(legal) == {"chk_0001", "chk_0003"}
    assert set(await index.sentences(ids, Access.admin())) == {"chk_0001", "chk_0003", "chk_0004"}
    assert await index.sentences([], acme) == {}
    # Replacing a point replaces its sentences; searches are unaffected by them.
    await index.upsert([_with_sentences(_point(1, "doc_a"), 21)])
    again = await index.sentences([ChunkId("chk_0001")], acme)
    assert len(again[ChunkId("chk_0001")]) == 1
    hits = await index.search(_unit(1), acme, limit=1)
    assert hits[0].chunk_id == "chk_0001"
    bad = _with_sentences(_point(5, "doc_a"), 1).model_copy(
        update={"sentences": (SentenceVector(start=0, end=3, vector=(1.0, 0.0)),)}
    )
    with pytest.raises(StoreError, match="sentence vector"):
        await index.upsert([bad])


def _shared_shard(path: Path, points: list[VectorPoint], layout: int) -> None:
    """An index as Threadline wrote it before partitions: every tenant in one shard."""
    import qdrant_edge as qe

    from graph.backends.qdrant_common import point_payload, point_vectors
    from graph.ids import point_uuid

    vectors = {"chunk": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)}
    if layout >= 3:
        vectors["sentences"] = qe.EdgeVectorParams(
            size=DIM,
            distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim),
        )
    config = qe.EdgeConfig(
        vectors=vectors,
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    path.mkdir(parents=True)
    shard = qe.EdgeShard.create(str(path), config)
    keep = layout >= 3
    batch = [
        qe.Point(
            point_uuid(p.chunk_id),
            point_vectors(p, sentences=keep, sparse=qe.SparseVector),
            point_payload(p, sentences=keep),
        )
        for p in points
    ]
    shard.update(qe.UpdateOperation.upsert_points(batch))
    shard.flush()
    shard.close()
    meta = {"dimension": DIM, "format": layout}
    (path / "threadline-index.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize("layout", [2, 3])
async def test_edge_moves_a_shared_shard_into_tenant_partitions(
    tmp_path: Path, layout: int
) -> None:
    """Older indexes held every tenant in one shard; opening one splits it by tenant."""
    path = tmp_path / "edge"
    points = _tenant_points("acme", A_TEXTS) + _tenant_points("globex", {301: NOISE})
    points[0] = _with_sentences(points[0], 11, 12)
    _shared_shard(path, points, layout)
    # A migration that stopped half way left a partition behind; it is started over.
    (path / "tenants" / ("0" * 32)).mkdir(parents=True)
    index = await QdrantEdgeVectorIndex.open(path, dimension=DIM)
    try:
        assert await index.count(Access.admin()) == 4
        assert await index.count(Access(tenant="acme")) == 3
        assert await index.count(Access(tenant="globex")) == 1
        acme = await _tenant_view(index, Access(tenant="acme"))
        assert {c for c, _ in acme[0]} == {"chk_0201", "chk_0202", "chk_0203"}
        stored = await index.sentences([ChunkId("chk_0201")], Access(tenant="acme"))
        assert len(stored.get(ChunkId("chk_0201"), [])) == (2 if layout >= 3 else 0)
    finally:
        await index.close()
    assert sorted(p.name for p in path.iterdir()) == [".lock", "tenants", "threadline-index.json"]
    assert json.loads((path / "threadline-index.json").read_text())["format"] == 4
    assert len(list((path / "tenants").iterdir())) == 2
    # The same scores as an index built partitioned from the start.
    fresh = await QdrantEdgeVectorIndex.open(tmp_path / "fresh", dimension=DIM)
    try:
        await fresh.upsert(_tenant_points("acme", A_TEXTS))
        expected = await _tenant_view(fresh, Access(tenant="acme"))
    finally:
        await fresh.close()
    reopened = await QdrantEdgeVectorIndex.open(path, dimension=DIM)
    try:
        assert await _tenant_view(reopened, Access(tenant="acme")) == expected
    finally:
        await reopened.close()


async def test_edge_repairs_what_an_interrupted_write_left(tmp_path: Path) -> None:
    """Files of a split that committed, and a tenant shard never finished, are removed."""
    path = tmp_path / "edge"
    index = await QdrantEdgeVectorIndex.open(path, dimension=DIM)
    try:
        await index.upsert(_tenant_points("acme", A_TEXTS))
    finally:
        await index.close()
    (path / "segments").mkdir()  # the shared shard's files, after the commit
    (path / "wal").write_bytes(b"old")
    (path / "tenants" / ("f" * 32)).mkdir()  # a shard without its partition file
    again = await QdrantEdgeVectorIndex.open(path, dimension=DIM)
    try:
        assert await again.count(Access.admin()) == 3
    finally:
        await again.close()
    assert sorted(p.name for p in path.iterdir()) == [".lock", "tenants", "threadline-index.json"]
    assert len(list((path / "tenants").iterdir())) == 1


async def test_edge_refuses_an_unknown_layout(tmp_path: Path) -> None:
    path = tmp_path / "edge"
    index = await QdrantEdgeVectorIndex.open(path, dimension=DIM)
    await index.close()
    meta = path / "threadline-index.json"
    meta.write_text(json.dumps({"dimension": DIM, "format": 1}), encoding="utf-8")
    with pytest.raises(StoreUnavailableError, match="another Threadline version"):
        await QdrantEdgeVectorIndex.open(path, dimension=DIM)


A_TEXTS = {
    201: "Quantum lattice reactors power the northern harbour.",
    202: "The harbour authority inspected the lattice reactors twice.",
    203: "Northern engineers publish quantum results every spring.",
}
NOISE = "quantum lattice reactors harbour quantum lattice northern harbour reactors"


def _tenant_points(tenant: str, texts: dict[int, str]) -> list[VectorPoint]:
    from extractors.sparse import Bm25Encoder

    bm25 = Bm25Encoder()
    return [
        _point(n, f"doc_{tenant}_{n}", tenant=tenant).model_copy(
            update={"sparse": bm25.encode_document(text)}
        )
        for n, text in texts.items()
    ]


async def _tenant_view(index: VectorIndex, access: Access) -> list[list[tuple[str, float]]]:
    from extractors.sparse import Bm25Encoder

    query = Bm25Encoder().encode_query("quantum lattice reactors in the northern harbour")
    sparse = await index.search_sparse(query, access, limit=10)
    dense = await index.search(_unit(202), access, limit=10)
    return [[(h.chunk_id, h.score) for h in hits] for hits in (sparse, dense)]


async def test_another_tenants_writes_never_move_a_tenants_scores(index: VectorIndex) -> None:
    """Keyword statistics are the tenant's own: another tenant's words change no score."""
    acme = Access(tenant="acme")
    await index.upsert(_tenant_points("acme", A_TEXTS))
    before = await _tenant_view(index, acme)
    assert [c for c, _ in before[0]] == ["chk_0201", "chk_0202", "chk_0203"]
    assert len(before[1]) == 3
    await index.upsert(_tenant_points("globex", {300 + i: NOISE for i in range(40)}))
    assert await _tenant_view(index, acme) == before
    await index.delete_documents([DocumentId(f"doc_globex_{300 + i}") for i in range(40)])
    assert await _tenant_view(index, acme) == before
    assert await index.count(acme) == 3


async def test_admin_reads_every_tenant(index: VectorIndex) -> None:
    from extractors.sparse import Bm25Encoder

    await index.upsert(_tenant_points("acme", A_TEXTS))
    await index.upsert(_tenant_points("globex", {301: NOISE, 302: "Nothing in common here."}))
    admin = Access.admin()
    assert await index.count(admin) == 5
    sparse = await index.search_sparse(Bm25Encoder().encode_query("lattice"), admin, limit=10)
    assert {h.chunk_id for h in sparse} == {"chk_0201", "chk_0202", "chk_0301"}
    dense = await index.search(_unit(302), admin, limit=2)
    assert dense[0].chunk_id == "chk_0302"
    assert [h.score for h in dense] == sorted((h.score for h in dense), reverse=True)
    assert len(await index.search(_unit(1), admin, limit=50)) == 5
    globex = await index.search(_unit(202), Access(tenant="globex"), limit=10)
    assert {h.chunk_id for h in globex} == {"chk_0301", "chk_0302"}
    assert await index.count(Access(tenant="initech")) == 0
    assert await index.search(_unit(1), Access(tenant="initech")) == []


async def test_client_moves_a_shared_collection_into_tenant_collections(tmp_path: Path) -> None:
    """Older versions kept every tenant in one collection; opening one splits it by tenant."""
    from qdrant_client import AsyncQdrantClient, models

    from graph.backends.qdrant_common import point_payload, point_vectors
    from graph.ids import point_uuid

    path = str(tmp_path / "qdrant-local")
    old = AsyncQdrantClient(path=path)
    await old.create_collection(
        "chunks",
        vectors_config={"chunk": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    points = _tenant_points("acme", A_TEXTS) + _tenant_points("globex", {301: NOISE})

    def sparse(indices: list[int], values: list[float]) -> models.SparseVector:
        return models.SparseVector(indices=indices, values=values)

    await old.upsert(
        "chunks",
        [
            models.PointStruct(
                id=point_uuid(p.chunk_id),
                vector=point_vectors(p, sentences=False, sparse=sparse),
                payload=point_payload(p, sentences=False),
            )
            for p in points
        ],
    )
    await old.close()
    index = await QdrantClientVectorIndex.open(collection="chunks", dimension=DIM, path=path)
    try:
        assert await index.count(Access.admin()) == 4
        assert await index.count(Access(tenant="acme")) == 3
        acme = await _tenant_view(index, Access(tenant="acme"))
        assert [c for c, _ in acme[0]] == ["chk_0201", "chk_0202", "chk_0203"]
    finally:
        await index.close()
    check = AsyncQdrantClient(path=path)
    try:
        names = sorted(c.name for c in (await check.get_collections()).collections)
    finally:
        await check.close()
    assert len(names) == 2
    assert all(re.fullmatch(r"chunks-t-[0-9a-f]{32}", n) for n in names)
