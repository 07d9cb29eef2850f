"""Ingest jobs: documents are read and ingested in the background, one job at a time.

``POST /v1/documents`` and ``/v1/documents/upload`` answer 202 with a job; the client
polls ``GET /v1/jobs/{id}``. A job runs in the process that started it and is recorded
in the control plane's ``jobs`` table (``jobs.sqlite`` in the data dir, or the shared
PostgreSQL database), written when it starts, every second while it runs and when it
ends, so any replica answers a poll. A job whose process stopped while it ran (no
heartbeat for :data:`STALE_AFTER`) reads as failed with ``interrupted``: re-running the
ingest finishes it (unchanged documents are skipped). Every job, successful or not, is
audited.

A job is started only when the key may write its tenant and groups, and it records that
scope: only keys that may read what the job writes see it; to others it does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self, cast

from engine.api.errors import error_status
from engine.api.schemas import ErrorBody, JobOut
from engine.audit import AuditLog
from engine.control_db import ControlDb, Schema
from engine.ingest import IngestReport
from engine.keys import ApiKey
from engine.readers import SourceDocument
from engine.telemetry import Metrics
from engine.threadline import Threadline
from graph import PUBLIC_GROUP, NotFoundError, StoreUnavailableError, ThreadlineError

__all__ = ["STALE_AFTER", "Job", "JobBoard", "JobStore"]

logger = logging.getLogger("threadline.api")

JobStatus = Literal["queued", "running", "succeeded", "failed"]

#: A queued or running job not written for this long was cut off with its process.
STALE_AFTER = timedelta(seconds=60)
#: How often a running job's progress is written.
_BEAT_S = 1.0
#: How long a job's last writes (state, audit outcome) are retried while the control
#: plane is unavailable.
_SETTLE_S = 60.0
_JOB_ID = re.compile(r"[0-9a-f]{32}")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, "
    "groups TEXT NOT NULL, owner TEXT NOT NULL, created_at TEXT NOT NULL, "
    "status TEXT NOT NULL, done INTEGER NOT NULL, total INTEGER NOT NULL, report TEXT, "
    "error TEXT, finished_at TEXT, beat_at TEXT NOT NULL)",
)
#: The database's clock as ISO text: heartbeats are written and judged by one clock, so
#: replicas whose clocks disagree never take a running job for a dead one (or the other
#: way round).
_NOW = {
    "sqlite": "strftime('%Y-%m-%dT%H:%M:%f+00:00','now')",
    "postgres": "to_char(clock_timestamp() AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')',
}
_COLUMNS = (
    "id, tenant, groups, owner, created_at, status, done, total, report, error, "
    "finished_at, beat_at"
)


@dataclass
class Job:
    """One ingest job and its progress."""

    id: str
    tenant: str
    groups: tuple[str, ...]  # the access list the job writes, ("*",) for tenant-wide
    owner: str
    created_at: datetime
    status: JobStatus = "queued"
    done: int = 0
    total: int = 0
    report: IngestReport | None = None
    error: ErrorBody | None = None
    finished_at: datetime | None = None

    def out(self) -> JobOut:
        """The job as the API shows it (without the owning key)."""
        return JobOut(
            id=self.id,
            status=self.status,
            tenant=self.tenant,
            groups=[g for g in self.groups if g != PUBLIC_GROUP],
            done=self.done,
            total=self.total,
            report=self.report,
            error=self.error,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


class JobStore:
    """The ``jobs`` table of the control plane. Open it with :meth:`open`."""

    def __init__(self, db: ControlDb) -> None:
        self._db = db
        self._now = _NOW[db.dialect]

    @classmethod
    async def open(cls, db: ControlDb) -> Self:
        """Open (creating if needed) the table."""
        await db.open(Schema(_SCHEMA))
        return cls(db)

    async def save(self, job: Job) -> None:
        """Write the job as it stands now (and its heartbeat)."""
        row = (
            job.id,
            job.tenant,
            json.dumps(list(job.groups)),
            job.owner,
            job.created_at.isoformat(),
            job.status,
            job.done,
            job.total,
            job.report.model_dump_json() if job.report else None,
            job.error.model_dump_json() if job.error else None,
            job.finished_at.isoformat() if job.finished_at else None,
        )
        await self._db.run(
            f"INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,{self._now}) "  # noqa: S608
            "ON CONFLICT (id) DO UPDATE SET status=excluded.status, done=excluded.done, "
            "total=excluded.total, report=excluded.report, error=excluded.error, "
            "finished_at=excluded.finished_at, beat_at=excluded.beat_at",
            row,
        )

    async def load(self, job_id: str) -> Job | None:
        """The job as last written (``interrupted`` when its process stopped), or None."""
        rows = await self._db.run(
            f"SELECT {_COLUMNS}, {self._now} FROM jobs WHERE id=?",  # noqa: S608
            (job_id,),
        )
        return _job(rows[0]) if rows else None

    async def close(self) -> None:
        """Close the table's database."""
        await self._db.close()


def _job(row: tuple[Any, ...]) -> Job:
    """A job from its row, followed by the database's clock at the read."""
    job = Job(
        id=str(row[0]),
        tenant=str(row[1]),
        groups=tuple(json.loads(str(row[2]))),
        owner=str(row[3]),
        created_at=datetime.fromisoformat(str(row[4])),
        status=cast(JobStatus, str(row[5])),
        done=int(row[6]),
        total=int(row[7]),
        report=IngestReport.model_validate_json(str(row[8])) if row[8] else None,
        error=ErrorBody.model_validate_json(str(row[9])) if row[9] else None,
        finished_at=datetime.fromisoformat(str(row[10])) if row[10] else None,
    )
    beat, now = datetime.fromisoformat(str(row[11])), datetime.fromisoformat(str(row[12]))
    if job.status in ("queued", "running") and now - beat > STALE_AFTER:
        job.status, job.error = "failed", _interrupted()
    return job


def _interrupted() -> ErrorBody:
    return ErrorBody(
        error="interrupted",
        message="the server running this job stopped before it finished; ingest the same "
        "documents again to finish (documents already stored are skipped)",
    )


class JobBoard:
    """Starts ingest jobs and keeps them for polling.

    ``writes`` serialises every write to the knowledge base (jobs and deletes).
    """

    def __init__(
        self,
        tl: Threadline,
        audit: AuditLog,
        metrics: Metrics,
        writes: asyncio.Lock,
        store: JobStore,
    ) -> None:
        self._tl, self._audit, self._metrics, self.writes = tl, audit, metrics, writes
        self._store = store
        self._jobs: dict[str, Job] = {}  # the jobs this process runs
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(
        self,
        key: ApiKey,
        tenant: str,
        groups: list[str],
        read: Callable[[], list[SourceDocument]],
        request_id: str,
    ) -> Job:
        """Queue a job that reads documents (in a worker thread) and ingests them.

        Raises :class:`PermissionDeniedError` when ``key`` may not write ``tenant`` and
        ``groups``.
        """
        key.check_write(tenant, groups)
        job = Job(
            id=uuid.uuid4().hex,
            tenant=tenant,
            groups=tuple(sorted({g.strip() for g in groups})) or (PUBLIC_GROUP,),
            owner=key.id,
            created_at=datetime.now(UTC),
        )
        await self._store.save(job)
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job, key, groups, read, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def get(self, job_id: str, key: ApiKey) -> Job:
        """A job (started by any replica) whose documents the key may read (any job for
        admin keys); to every other key it does not exist."""
        # Ids are uuid4 hex; anything else (a NUL, megabytes) is not looked up at all.
        known = _JOB_ID.fullmatch(job_id) is not None
        job = (self._jobs.get(job_id) or await self._store.load(job_id)) if known else None
        if job is None or not key.access.can_read(job.tenant, job.groups):
            raise NotFoundError(f"no job {job_id}")
        return job

    async def close(self) -> None:
        """Cancel the jobs still running and wait for them to stop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._store.close()

    async def _run(
        self,
        job: Job,
        key: ApiKey,
        groups: list[str],
        read: Callable[[], list[SourceDocument]],
        request_id: str,
    ) -> None:
        beat = asyncio.create_task(self._beat(job))
        try:
            await self._ingest(job, key, groups, read, request_id)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if job.status in ("queued", "running"):  # cancelled: the server is stopping
                job.status, job.error = "failed", _interrupted()
                job.finished_at = datetime.now(UTC)
            # The final state, even when the job is being cancelled at shutdown, and
            # retried while the control plane is away (the job stays answerable here).
            await asyncio.shield(self._settle(lambda: self._store.save(job), job, "its state"))
            self._jobs.pop(job.id, None)

    async def _beat(self, job: Job) -> None:
        """Write the job's progress every second while it runs."""
        while True:
            await asyncio.sleep(_BEAT_S)
            await self._save(job)

    async def _save(self, job: Job) -> None:
        try:
            await self._store.save(job)
        except ThreadlineError as exc:
            logger.warning("cannot record the state of job %s: %s", job.id, exc)

    async def _settle(self, write: Callable[[], Awaitable[object]], job: Job, what: str) -> None:
        """Run a job's last ``write``, retried for up to :data:`_SETTLE_S` while the
        control plane is unavailable, so a blip as a job ends loses nothing."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + _SETTLE_S, 0.5
        while True:
            try:
                await write()
            except StoreUnavailableError as exc:
                if loop.time() + delay > deadline:
                    logger.exception("job %s: cannot record %s", job.id, what)
                    return
                logger.warning("job %s: cannot record %s yet: %s", job.id, what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
            except ThreadlineError:
                logger.exception("job %s: cannot record %s", job.id, what)
                return
            else:
                return

    async def _ingest(
        self,
        job: Job,
        key: ApiKey,
        groups: list[str],
        read: Callable[[], list[SourceDocument]],
        request_id: str,
    ) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async with self.writes:
            job.status = "running"
            audited: dict[str, object] = {
                "request_id": request_id,
                "key_id": key.id,
                "tenant": job.tenant,
                "groups": groups,
                "job_id": job.id,
            }
            intent: dict[str, object] | None = None
            try:
                # Intent before anything is written (an ingest may replace stored
                # documents); a log that cannot be written fails the job instead.
                intent = await self._audit.append("ingest", phase="intent", **audited)
                sources = await asyncio.to_thread(read)
                job.total = len(sources)
                report = await self._tl.ingest(
                    sources, tenant=job.tenant, groups=groups, progress=progress
                )
            except ThreadlineError as exc:
                _, code, _ = error_status(exc)
                job.status, job.error = "failed", ErrorBody(error=code, message=str(exc))
            except Exception as exc:
                logger.exception("ingest job %s failed", job.id)
                job.status = "failed"
                job.error = ErrorBody(error="internal", message=f"ingest failed: {exc}")
            else:
                job.status, job.report = "succeeded", report
                self._metrics.ingested.labels("added").inc(report.added)
                self._metrics.ingested.labels("replaced").inc(report.replaced)
                self._metrics.ingested.labels("unchanged").inc(report.unchanged)
            job.finished_at = datetime.now(UTC)
            self._metrics.jobs.labels(job.status).inc()
            outcome = {
                "phase": "outcome",
                "intent": AuditLog.digest(intent) if intent else None,
                **audited,
                "status": "ok" if job.status == "succeeded" else "failed",
                "documents": list(job.report.document_ids) if job.report else [],
                "error": job.error.error if job.error else None,
            }
            await self._settle(
                lambda: self._audit.append("ingest", **outcome), job, "its audit outcome"
            )
