"""Distributed ingestion: the worker stage of :mod:`engine.ingest` on Ray.

``threadline ingest PATH... --cluster SPEC``, where SPEC is one of

- ``local[N]``: a Ray runtime started on this machine with N workers, stopped afterwards;
- ``ray://HOST:PORT``: a running Ray cluster, through its head's Ray Client server
  (port 10001 by default); one worker per free CPU of the cluster;
- ``auto``: the Ray cluster this machine belongs to (``ray start`` ran here, or
  ``RAY_ADDRESS`` names it); one worker per free CPU.

Reading and planning stay on the driver (this process), and so do model extraction,
entity resolution (each batch resolves against every earlier batch's names, in order) and
the journalled writes through the store protocols. Each worker is a Ray actor that builds
the stage once from the settings (:func:`engine.ingest.stage_for`, the way the engine
builds its own: the same chunker, spaCy pipeline, personal-data detector, embedder and BM25
encoder) and runs it on every batch it is sent. A worker whose process dies is restarted
and its batches are retried. The driver keeps a bounded window of batches in flight and
consumes them in order, so the graph and vectors equal those of a single-process ingest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from engine.ingest import BatchStage, BatchWork, stage_for
from engine.settings import Settings
from graph import ConfigError, Document, ExtractionError, ThreadlineError

__all__ = ["ClusterSpec", "RayRunner", "parse_cluster"]

logger = logging.getLogger(__name__)

#: How often a worker process may die and be restarted, and a batch it held be retried.
RESTARTS = 3
#: Seconds the workers get to start and load their models.
START_TIMEOUT_S = 600.0
_MAX_LOCAL_WORKERS = 256
_USAGE = (
    "use local[N] (a Ray runtime on this machine with N workers), ray://HOST:PORT (a Ray "
    "cluster's client server, port 10001 on the head by default) or auto (the Ray cluster "
    "this machine belongs to)"
)


class ClusterSpec(BaseModel):
    """Where distributed ingestion runs (see :func:`parse_cluster`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["local", "ray", "auto"]
    workers: int | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "local":
            return f"local[{self.workers}]"
        if self.kind == "ray":
            return f"ray://{self.host}:{self.port}"
        return "auto"


def parse_cluster(spec: str) -> ClusterSpec:
    """Parse ``local[N]``, ``ray://HOST:PORT`` or ``auto``; :class:`ConfigError` otherwise."""
    text = spec.strip()
    if text == "auto":
        return ClusterSpec(kind="auto")
    if text.startswith("local"):
        match = re.fullmatch(r"local\[(\d+)\]", text)
        workers = int(match.group(1)) if match else 0
        if not 1 <= workers <= _MAX_LOCAL_WORKERS:
            raise ConfigError(
                f"--cluster {spec!r}: local[N] takes a number of workers from 1 to "
                f"{_MAX_LOCAL_WORKERS}, e.g. local[2]"
            )
        return ClusterSpec(kind="local", workers=workers)
    if text.startswith("ray://"):
        match = re.fullmatch(r"ray://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d+)/?", text)
        port = int(match.group(2)) if match else 0
        if match is None or not 1 <= port <= 65535:
            raise ConfigError(
                f"--cluster {spec!r}: ray:// needs a host and the Ray Client port, "
                "e.g. ray://ray-head:10001"
            )
        return ClusterSpec(kind="ray", host=match.group(1).strip("[]"), port=port)
    raise ConfigError(f"--cluster {spec!r} is not a cluster Threadline knows: {_USAGE}")


class _StageWorker:
    """One Ray worker: builds the stage from the settings once, then runs it per batch."""

    def __init__(self, settings: Settings) -> None:
        self._stage: BatchStage | None = None
        self._failed: ThreadlineError | None = None
        try:
            stage = stage_for(settings)
            stage.load()
            self._stage = stage
        except ThreadlineError as exc:
            # Raised again by every call: a failed constructor would reach the driver as
            # Ray's "actor died" without Threadline's message (a missing model, say).
            self._failed = exc

    def _ready(self) -> BatchStage:
        if self._stage is None:
            raise self._failed or ExtractionError("the worker's stage is not built")
        return self._stage

    def pid(self) -> int:
        """The worker's process id (raises what kept the worker from starting)."""
        self._ready()
        return os.getpid()

    def run(self, documents: list[Document]) -> BatchWork:
        """The stage on one batch."""
        return self._ready()(documents)


def _worker_settings(settings: Settings) -> Settings:
    """Only what the stage reads: no store or model credentials travel to the workers."""
    return Settings.model_construct(
        extraction=settings.extraction,
        embedding=settings.embedding,
        ingest=settings.ingest,
        privacy=settings.privacy.model_copy(update={"id_key": None}),
    )


class RayRunner:
    """Runs :class:`~engine.ingest.BatchStage` on Ray actors, one per worker.

    Open it with :meth:`open` (or :meth:`connect` from synchronous code) and close it, or
    use ``async with await RayRunner.open(spec, settings)``; pass it to
    :meth:`engine.threadline.Threadline.ingest` as ``runner``. The constructor does no I/O.
    """

    def __init__(self, ray: Any, actors: Sequence[Any], *, spec: ClusterSpec, owns: bool) -> None:
        self._ray = ray
        self._actors = list(actors)
        self._spec = spec
        self._owns = owns
        self._next = 0

    @classmethod
    async def open(cls, spec: ClusterSpec, settings: Settings) -> Self:
        """Connect to (or start) the cluster and start the workers."""
        return await asyncio.to_thread(cls.connect, spec, settings)

    @classmethod
    def connect(cls, spec: ClusterSpec, settings: Settings) -> Self:
        """:meth:`open`, blocking (for synchronous callers and test fixtures)."""
        try:
            import ray  # noqa: PLC0415 - optional dependency, only for distributed ingest
        except ImportError as exc:
            raise ConfigError(
                "distributed ingestion needs Ray: pip install 'threadline[cluster]' "
                "(the same Ray version as the cluster's)"
            ) from exc
        owns = _init(ray, spec)
        try:
            workers = spec.workers or _free_cpus(ray)
            remote = ray.remote(_StageWorker).options(
                num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS
            )
            shipped = _worker_settings(settings)
            runner = cls(
                ray, [remote.remote(shipped) for _ in range(workers)], spec=spec, owns=owns
            )
            runner.pids()  # every worker has its models loaded, or the error says why not
        except BaseException:
            if owns:
                ray.shutdown()
            raise
        logger.info("ingesting on %s with %s Ray workers", spec, workers)
        return runner

    @property
    def window(self) -> int:
        """Batches in flight: two per worker, so none waits between batches."""
        return 2 * len(self._actors)

    @property
    def workers(self) -> int:
        """Number of workers."""
        return len(self._actors)

    def pids(self) -> list[int]:
        """The workers' process ids (blocks until every worker has loaded its models)."""
        refs = [actor.pid.remote() for actor in self._actors]
        try:
            return [int(p) for p in self._ray.get(refs, timeout=START_TIMEOUT_S)]
        except self._ray.exceptions.GetTimeoutError as exc:
            raise ConfigError(
                f"the Ray workers on {self._spec} did not start within {START_TIMEOUT_S:.0f}s: "
                f"each needs one free CPU and about 1.5 GB of memory"
            ) from exc
        except self._ray.exceptions.RayError as exc:
            raise _mapped(exc, "start") from exc

    def submit(self, documents: Sequence[Document]) -> asyncio.Future[BatchWork]:
        """Send one batch to the next worker (round robin); await the future for its work."""
        actor = self._actors[self._next % len(self._actors)]
        self._next += 1
        ref = actor.run.remote(list(documents))
        return asyncio.ensure_future(self._result(ref))

    async def _result(self, ref: Any) -> BatchWork:
        try:
            work = await asyncio.wrap_future(ref.future())
        except asyncio.CancelledError:
            # The ingest stopped: drop the batch from its worker's queue, so a re-run on
            # this runner does not wait behind it.
            self._ray.cancel(ref)
            raise
        except self._ray.exceptions.RayError as exc:
            raise _mapped(exc, "run") from exc
        if not isinstance(work, BatchWork):  # pragma: no cover - the actor returns BatchWork
            raise ExtractionError(f"a Ray worker returned {type(work).__name__}, not BatchWork")
        return work

    def shutdown(self) -> None:
        """Stop the workers, and the Ray runtime (or client connection) if this runner
        started it; a cluster it joined keeps running."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._owns:
            self._ray.shutdown()
            self._owns = False

    async def close(self) -> None:
        """:meth:`shutdown` from async code."""
        await asyncio.to_thread(self.shutdown)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _init(ray: Any, spec: ClusterSpec) -> bool:
    """Start or join the runtime ``spec`` names; True when this call started it."""
    if spec.kind == "ray":
        _reachable(spec)
    if ray.is_initialized():
        if spec.kind == "auto":
            return False  # e.g. a notebook's own runtime or connection: use it, keep it
        raise ConfigError(
            f"Ray is already initialised in this process, so {spec} cannot be started or "
            "joined: ingest with --cluster auto to use that runtime, or ray.shutdown() first"
        )
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if spec.kind == "local":
            # Threadline reaches no outside service at run time; Ray's usage report would.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                num_cpus=spec.workers,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **options,
            )
        elif spec.kind == "ray":
            ray.init(f"ray://{spec.host}:{spec.port}", **options)
        else:
            ray.init(address="auto", **options)
    except ThreadlineError:
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = (
            "start one with `ray start --head` or set RAY_ADDRESS"
            if spec.kind == "auto"
            else "check that the head is up and its Ray version matches this one"
        )
        raise ConfigError(f"cannot use the Ray cluster {spec}: {exc}; {hint}") from exc
    return True


def _reachable(spec: ClusterSpec) -> None:
    """Fail in seconds, not after Ray Client's 30 s of retries, when nothing listens."""
    try:
        with socket.create_connection((spec.host or "", spec.port or 0), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(
            f"nothing answers at {spec} ({exc}): check the head's address and that its Ray "
            "Client server listens there (`ray start --head` serves it on port 10001)"
        ) from exc


def _free_cpus(ray: Any) -> int:
    cpus = int(ray.available_resources().get("CPU", 0))
    if cpus < 1:
        raise ConfigError("the Ray cluster has no free CPU for ingestion workers")
    return cpus


def _mapped(exc: Exception, doing: str) -> ThreadlineError:
    """A Ray failure as Threadline's error: the worker's own error when it raised one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, ThreadlineError):
        return cause
    if doing == "start":
        return ExtractionError(
            f"a Ray worker could not start ({cause or exc}); every worker needs Threadline "
            "installed with the driver's pinned models and Ray version (docs/production.md)"
        )
    if isinstance(cause, BaseException):
        return ExtractionError(f"a Ray worker failed on a batch: {cause!r}")
    return ExtractionError(
        f"a Ray worker failed on a batch ({exc}); a worker that dies is restarted and its "
        f"batches retried {RESTARTS} times, and this one failed every time"
    )
