"""Ingest jobs: documents are read and ingested in the background, one job at a time.

``POST /v1/documents`` and ``/v1/documents/upload`` answer 202 with a job; the client
polls ``GET /v1/jobs/{id}``. Jobs live in this process's memory (a restart forgets
them; the documents they stored stay). Every job, successful or not, is audited.

A job is started only when the key may write its tenant and groups, and it records that
scope: only keys that may read what the job writes see it; to others it does not exist.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from engine.api.errors import error_status
from engine.api.schemas import ErrorBody, JobOut
from engine.audit import AuditLog
from engine.ingest import IngestReport
from engine.keys import ApiKey
from engine.readers import SourceDocument
from engine.telemetry import Metrics
from engine.threadline import Threadline
from graph import PUBLIC_GROUP, NotFoundError, ThreadlineError

__all__ = ["Job", "JobBoard"]

logger = logging.getLogger("threadline.api")

JobStatus = Literal["queued", "running", "succeeded", "failed"]


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


class JobBoard:
    """Starts ingest jobs and keeps them for polling.

    ``writes`` serialises every write to the knowledge base (jobs and deletes).
    """

    def __init__(
        self, tl: Threadline, audit: AuditLog, metrics: Metrics, writes: asyncio.Lock
    ) -> None:
        self._tl, self._audit, self._metrics, self.writes = tl, audit, metrics, writes
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
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
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run(job, key, groups, read, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str, key: ApiKey) -> Job:
        """A job whose documents the key may read (any job for admin keys); to every
        other key it does not exist."""
        job = self._jobs.get(job_id)
        if job is None or not key.access.can_read(job.tenant, job.groups):
            raise NotFoundError(f"no job {job_id}")
        return job

    async def close(self) -> None:
        """Cancel the jobs still running and wait for them to stop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(
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
            await self._audit.append(
                "ingest",
                phase="outcome",
                intent=AuditLog.digest(intent) if intent else None,
                **audited,
                status="ok" if job.status == "succeeded" else "failed",
                documents=list(job.report.document_ids) if job.report else [],
                error=job.error.error if job.error else None,
            )
