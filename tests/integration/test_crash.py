"""Kill a real ingest process mid-way; the next open must show whole documents only."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import Settings, Threadline
from graph import Access
from tests.conftest import SAMPLE

pytestmark = pytest.mark.subprocess


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _kill_mid_ingest(data: Path) -> None:
    env = {**os.environ, "THREADLINE_INGEST__BATCH_DOCUMENTS": "4"}
    cmd = [sys.executable, "-m", "engine", "ingest", str(SAMPLE), "--data-dir", str(data), "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while _committed(data / "graph.sqlite") < 12:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "ingest made no progress"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def test_killed_ingest_leaves_whole_documents_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await asyncio.to_thread(_kill_mid_ingest, data)

    settings = Settings(data_dir=data)
    async with await Threadline.open(settings) as tl:
        stats = await tl.stats(Access.admin())
        assert 12 <= stats.documents < 196
        # No half documents: vectors match chunks, and each document has its chunks.
        assert stats.vectors == stats.chunks
        for doc in await tl.browse(Access.admin()).documents(limit=1000):
            hits = await tl.vectors.search(
                (await tl._embedder.embed([doc.text[:200]]))[0],
                Access.admin(),
                limit=50,
                document_ids=[doc.id],
            )
            assert hits, f"{doc.id} has no vectors"
        # Running the same ingest again finishes the job.
        report = await tl.ingest(tl.read([SAMPLE]))
        assert report.unchanged == stats.documents
        assert report.added == 196 - stats.documents
        final = await tl.stats(Access.admin())
        assert final.documents == 196
        assert final.vectors == final.chunks
    journal = sqlite3.connect(data / "journal.sqlite")
    assert journal.execute("SELECT count(*) FROM pending").fetchone()[0] == 0
    journal.close()
