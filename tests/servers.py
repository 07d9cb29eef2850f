"""The HTTP API served for a test module: uvicorn on 127.0.0.1 in a thread, and keys made
before the server opens the key store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

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


@contextmanager
def running_api(config: Settings) -> Iterator[str]:
    """The API for ``config`` on a free local port, until the block ends: its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
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
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
