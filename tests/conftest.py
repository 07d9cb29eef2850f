"""Shared fixtures: the real spaCy pipeline, the real embedder, the bundled sample corpus.

An autouse guard fails any test that tries to open a network connection beyond loopback:
Threadline must never reach for a model hub or any other remote service at run time.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Settings
from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer, default_server_binary
from engine.settings import ModelSettings
from extractors import SentenceTransformerEmbedder, SpacyEntityExtractor, packaged_minilm_path
from tests.bolt_server import BoltServer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "datasets" / "sample" / "musique_sample.jsonl"

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else None
    if host is not None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host != "localhost" and (ip is None or not ip.is_loopback):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder(model_path=packaged_minilm_path())
    model.load()
    return model


@pytest.fixture(scope="session")
def extractor() -> SpacyEntityExtractor:
    ext = SpacyEntityExtractor()
    ext.load()
    return ext


@pytest.fixture(scope="session")
def sample_records() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def small_corpus(tmp_path: Path, sample_records: list[dict[str, str]]) -> Path:
    """The first 30 sample passages as a JSONL file."""
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in sample_records[:30]), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltServer]:
    """A real Bolt server (ArcadeDB) for the whole session, stopped at the end."""
    server = BoltServer(tmp_path_factory.mktemp("arcadedb"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """llama.cpp's llama-server with SmolLM2-135M on 127.0.0.1 for the whole session.

    ``make test`` builds it first (``make model-server``); a missing binary fails the
    llm tests rather than skipping them.
    """
    binary = default_server_binary()
    if not binary.is_file():
        pytest.fail(f"llama-server is not built at {binary}: run `make model-server`")
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LocalModelServer(binary=binary, log=log, parallel=4, context=4096) as server:
        yield server


@pytest.fixture
def model_settings(tmp_path: Path, llm_server: LocalModelServer) -> Settings:
    """Settings for a data dir with the local model server configured."""
    return Settings(
        data_dir=tmp_path / "data",
        model=ModelSettings(base_url=llm_server.base_url, model=LOCAL_MODEL_ALIAS, timeout_s=120),
    )
