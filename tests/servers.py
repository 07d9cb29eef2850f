"""The HTTP API served for a test module: uvicorn on 127.0.0.1 in a thread (or ``threadline
serve`` child processes), keys made before the server opens the key store, and waiting
for ingest jobs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from engine.api import create_app
from engine.keys import KeyStore
from engine.settings import Settings
from tests.bolt_server import free_port


def create_keys(path: Path, specs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Keys made in the key store at ``path``: name -> secret (``specs`` are the
    keyword arguments of :meth:`KeyStore.create`)."""

    async def create() -> dict[str, str]:
        store = await KeyStore.open(path)
        try:
            return {name: (await store.create(**spec)).secret for name, spec in specs.items()}
        finally:
            await store.close()

    return asyncio.run(create())


def key_client(base: str, secret: str) -> httpx.Client:
    """An HTTP client of the API at ``base`` that sends the key ``secret``."""
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=120)


def wait_job(client: httpx.Client, job_id: str, interval: float = 0.1) -> dict[str, Any]:
    """The job's state once it has succeeded or failed (polled as ``client``'s key, every
    ``interval`` seconds: poll slowly when the key's requests are rate limited)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{job_id}")
        assert state.status_code == 200, state.text
        if state.json()["status"] in {"succeeded", "failed"}:
            return dict(state.json())
        time.sleep(interval)
    raise AssertionError(f"job {job_id} did not finish")


@contextmanager
def running_api(config: Settings) -> Iterator[str]:
    """The API for ``config`` on a free local port, until the block ends: its base URL."""
    with running_app(config) as (url, _):
        yield url


@contextmanager
def running_app(config: Settings) -> Iterator[tuple[str, FastAPI]]:
    """:func:`running_api`, with the app (its ``state.service`` once started)."""
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=free_port(),
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        assert thread.is_alive(), "the API server stopped while starting"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{server.config.port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextmanager
def serve_processes(data_dirs: list[Path], env: dict[str, str], logs: Path) -> Iterator[list[str]]:
    """``threadline serve`` child processes, one per data dir (started together, each on a
    free port, stderr to ``logs/serve<N>.log``), until the block ends: their base URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for number, data_dir in enumerate(data_dirs):
            port = free_port()
            command = ["serve", "--port", str(port), "--data-dir", str(data_dir)]
            with (logs / f"serve{number}.log").open("w") as stderr:  # the child keeps a copy
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "engine", *command],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                )
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 240
        for number, (proc, base) in enumerate(zip(procs, bases, strict=True)):
            while True:
                log = (logs / f"serve{number}.log").read_text()
                assert proc.poll() is None, f"threadline serve stopped: {log}"
                assert time.monotonic() < deadline, "threadline serve did not start"
                try:
                    if httpx.get(f"{base}/v1/health/live", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
