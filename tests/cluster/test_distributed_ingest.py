"""Distributed ingestion on a local Ray runtime with 2 workers (``--cluster local[2]``).

One single-process ingest of the MuSiQue sample is the reference; every distributed ingest
must produce exactly its graph (documents, chunks, entities, mentions, facts and their
spans) and its vectors, also when a worker process is killed mid-ingest and when an
interrupted ingest is re-run. One Ray runtime serves the whole module.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from engine import Settings, Threadline
from engine.cli import app
from engine.cluster import ClusterSpec, RayRunner, _StageWorker, parse_cluster
from engine.ingest import BatchRunner, BatchWork, LocalRunner, stage_for
from engine.settings import ExtractionSettings, IngestSettings, PrivacySettings
from graph import (
    Access,
    ChunkId,
    ConfigError,
    Document,
    DocumentGraph,
    ExtractionError,
    SentenceVector,
    StoreStats,
    VectorPoint,
)
from tests.conftest import SAMPLE

pytestmark = pytest.mark.cluster

# Document ids are keyed (privacy.id_key); every data dir of the module shares the key so
# that the runs name the same documents alike.
ID_KEY = "cluster-test-id-key-0123456789abcdef"
BATCH = 16  # 13 batches of the 196 sample passages
# Dense vectors: the same model in other processes, other thread counts and other batch
# shapes. In float32 they agree to 1e-6; in bfloat16 (where the CPU has it) the sums round
# differently, by up to ~1e-3 per element: the same direction to a cosine of 0.9999.
SAME_DIRECTION = 0.9999


def _same_vector(a: Sequence[float], b: Sequence[float]) -> None:
    cosine = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert cosine >= SAME_DIRECTION, cosine


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        privacy=PrivacySettings(id_key=SecretStr(ID_KEY)),
        ingest=IngestSettings(batch_documents=BATCH),
    )


class _Recorder:
    """A batch runner that keeps the vector points the runner it wraps produced."""

    def __init__(self, inner: BatchRunner) -> None:
        self.inner = inner
        self.points: dict[ChunkId, VectorPoint] = {}

    @property
    def window(self) -> int:
        return self.inner.window

    def submit(self, documents: Sequence[Document]) -> Awaitable[BatchWork]:
        return asyncio.ensure_future(self._keep(self.inner.submit(documents)))

    async def _keep(self, staged: Awaitable[BatchWork]) -> BatchWork:
        work = await staged
        self.points.update({p.chunk_id: p for p in work.points})
        return work


@dataclass(frozen=True)
class Snapshot:
    """Everything an ingest stored, comparable across data dirs."""

    stats: StoreStats
    vectors: int
    graphs: dict[str, DocumentGraph]
    sentences: dict[ChunkId, list[SentenceVector]]


async def _snapshot(tl: Threadline) -> Snapshot:
    admin = Access.admin()
    documents = await tl.graph.documents(admin, limit=10_000)
    exported = await tl.graph.export([d.id for d in documents])
    graphs = {
        g.document.id: g.model_copy(
            update={"document": g.document.model_copy(update={"ingested_at": None})}
        )
        for g in exported
    }
    chunk_ids = [c.id for g in graphs.values() for c in g.chunks]
    stats = await tl.stats(admin)
    return Snapshot(
        stats=StoreStats(**stats.model_dump(exclude={"vectors"})),
        vectors=stats.vectors,
        graphs=graphs,
        sentences=await tl.vectors.sentences(chunk_ids, admin),
    )


def _assert_same(got: Snapshot, want: Snapshot) -> None:
    assert got.stats == want.stats
    assert got.vectors == want.vectors == want.stats.chunks
    assert sorted(got.graphs) == sorted(want.graphs)
    for doc_id, graph in want.graphs.items():
        other = got.graphs[doc_id]
        assert [(c.id, c.text, c.tags) for c in other.chunks] == [
            (c.id, c.text, c.tags) for c in graph.chunks
        ], doc_id
        assert other.mentions == graph.mentions, doc_id
        assert other.relations == graph.relations, doc_id
        assert other.entities == graph.entities, doc_id
        assert other == graph, doc_id
    assert sorted(got.sentences) == sorted(want.sentences)
    for chunk_id, sentences in want.sentences.items():
        stored = got.sentences[chunk_id]
        assert [(s.start, s.end) for s in stored] == [(s.start, s.end) for s in sentences]
        for a, b in zip(stored, sentences, strict=True):
            _same_vector(a.vector, b.vector)


@dataclass(frozen=True)
class Reference:
    snapshot: Snapshot
    points: dict[ChunkId, VectorPoint]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The single-process ingest of the sample (the engine's own local runner)."""
    settings = _settings(tmp_path_factory.mktemp("single") / "data")

    async def run() -> Reference:
        async with await Threadline.open(settings) as tl:
            recorder = _Recorder(LocalRunner(stage_for(settings)))
            report = await tl.ingest(tl.read([SAMPLE]), runner=recorder)
            assert report.added == 196
            return Reference(await _snapshot(tl), recorder.points)

    return asyncio.run(run())


@pytest.fixture(scope="module")
def ray_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayRunner]:
    """One local Ray runtime with 2 workers for the module, shut down at its end."""
    settings = _settings(tmp_path_factory.mktemp("ray") / "data")
    runner = RayRunner.connect(parse_cluster("local[2]"), settings)
    try:
        yield runner
    finally:
        runner.shutdown()


async def test_distributed_ingest_equals_single_process(
    reference: Reference, ray_runner: RayRunner, tmp_path: Path
) -> None:
    assert ray_runner.workers == 2
    assert len(set(ray_runner.pids())) == 2
    assert all(pid != os.getpid() for pid in ray_runner.pids())
    recorder = _Recorder(ray_runner)
    seen: list[tuple[int, int]] = []
    async with await Threadline.open(_settings(tmp_path / "data")) as tl:
        report = await tl.ingest(
            tl.read([SAMPLE]), runner=recorder, progress=lambda d, t: seen.append((d, t))
        )
        got = await _snapshot(tl)
        assert report.added == 196
        assert report.vectors == report.chunks == reference.snapshot.stats.chunks
        # Progress is reported per batch, as for a single-process ingest.
        assert seen == [(0, 196), *[(min(n, 196), 196) for n in range(BATCH, 196 + BATCH, BATCH)]]
        _assert_same(got, reference.snapshot)
        # The points the workers made equal those made in this process ...
        assert sorted(recorder.points) == sorted(reference.points)
        for chunk_id, want in reference.points.items():
            point = recorder.points[chunk_id]
            assert point.model_dump(exclude={"vector", "sentences"}) == want.model_dump(
                exclude={"vector", "sentences"}
            )
            _same_vector(point.vector, want.vector)
            assert [(s.start, s.end) for s in point.sentences] == [
                (s.start, s.end) for s in want.sentences
            ]
        # ... and are what the index holds: each chunk is its own vector's nearest point.
        for point in list(reference.points.values())[::10]:
            hits = await tl.vectors.search(
                point.vector, Access.admin(), limit=1, document_ids=[point.document_id]
            )
            assert hits[0].chunk_id == point.chunk_id
            assert hits[0].score > 1 - 1e-5


async def test_a_worker_killed_mid_ingest_loses_nothing(
    reference: Reference, ray_runner: RayRunner, tmp_path: Path
) -> None:
    before = ray_runner.pids()
    killed: list[int] = []

    def kill_after_three_batches(done: int, _total: int) -> None:
        # Batches 4..7 are in flight on the two workers; kill the first while it holds two.
        if done >= 3 * BATCH and not killed:
            os.kill(before[0], signal.SIGKILL)
            killed.append(done)

    async with await Threadline.open(_settings(tmp_path / "data")) as tl:
        report = await tl.ingest(
            tl.read([SAMPLE]), runner=ray_runner, progress=kill_after_three_batches
        )
        got = await _snapshot(tl)
    assert killed == [3 * BATCH]
    assert report.added == 196
    _assert_same(got, reference.snapshot)
    after = ray_runner.pids()
    assert after[0] != before[0]  # the killed worker was restarted ...
    assert after[1] == before[1]  # ... and the other one kept going


class _InterruptedError(Exception):
    """Stands for the driver going away between two batches."""


async def test_an_interrupted_distributed_ingest_is_finished_by_a_rerun(
    reference: Reference, ray_runner: RayRunner, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "data")

    def stop_after_five_batches(done: int, _total: int) -> None:
        if done >= 5 * BATCH:
            raise _InterruptedError

    async with await Threadline.open(settings) as tl:
        with pytest.raises(_InterruptedError):
            await tl.ingest(tl.read([SAMPLE]), runner=ray_runner, progress=stop_after_five_batches)
        partial = await tl.stats(Access.admin())
    assert partial.documents == 5 * BATCH
    assert partial.vectors == partial.chunks
    # A new driver runs the same command again: stored documents are skipped by their
    # content hash, the rest is ingested.
    async with await Threadline.open(settings) as tl:
        report = await tl.ingest(tl.read([SAMPLE]), runner=ray_runner)
        assert (report.unchanged, report.added) == (5 * BATCH, 196 - 5 * BATCH)
        got = await _snapshot(tl)
    _assert_same(got, reference.snapshot)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("bogus", "use local[N]"),
        ("", "use local[N]"),
        ("local", "local[N] takes a number of workers"),
        ("local[0]", "local[N] takes a number of workers"),
        ("local[two]", "local[N] takes a number of workers"),
        ("ray://head", "ray:// needs a host and the Ray Client port"),
        ("ray://head:99999", "ray:// needs a host and the Ray Client port"),
        ("http://head:10001", "use local[N]"),
    ],
)
def test_bad_cluster_values_are_refused_clearly(value: str, says: str) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"--cluster {value!r}") + ".*" + re.escape(says)
    ):
        parse_cluster(value)


def test_good_cluster_values() -> None:
    assert parse_cluster("local[4]") == ClusterSpec(kind="local", workers=4)
    assert parse_cluster("ray://ray-head:10001") == ClusterSpec(
        kind="ray", host="ray-head", port=10001
    )
    assert str(parse_cluster("ray://10.0.0.7:10001/")) == "ray://10.0.0.7:10001"
    assert parse_cluster("auto") == ClusterSpec(kind="auto")


def test_the_cli_refuses_a_bad_cluster_before_touching_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["ingest", str(SAMPLE), "--cluster", "bogus", "--data-dir", str(data)]
    )
    assert result.exit_code == 2
    assert "local[N]" in result.output
    assert "ray://HOST:PORT" in result.output
    assert not data.exists()


def test_an_unreachable_cluster_fails_fast_and_clearly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"nothing answers at ray://127.0.0.1:{port}"):
        RayRunner.connect(parse_cluster(f"ray://127.0.0.1:{port}"), Settings())
    assert time.monotonic() - started < 10


def test_a_second_runtime_in_the_same_process_is_refused(ray_runner: RayRunner) -> None:
    with pytest.raises(ConfigError, match=r"already initialised.*--cluster auto"):
        RayRunner.connect(parse_cluster("local[1]"), Settings())


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    with pytest.raises(ConfigError, match=r"pip install 'threadline\[cluster\]'"):
        RayRunner.connect(parse_cluster("local[1]"), Settings())


def test_a_worker_without_the_models_says_which_is_missing() -> None:
    # The actor class, run here: its error is what the driver gets from a failed start.
    worker = _StageWorker(
        Settings(extraction=ExtractionSettings(spacy_pipeline="no_such_pipeline"))
    )
    with pytest.raises(ExtractionError, match="spaCy pipeline 'no_such_pipeline' is not installed"):
        worker.pid()
