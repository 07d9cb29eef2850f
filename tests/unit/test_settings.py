from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine import Settings


def test_environment_is_read_with_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DATA_DIR", "/srv/kb")
    monkeypatch.setenv("THREADLINE_VECTOR__BACKEND", "qdrant")
    monkeypatch.setenv("THREADLINE_VECTOR__URL", "http://qdrant:6333")
    monkeypatch.setenv("THREADLINE_VECTOR__API_KEY", "s3cret")
    monkeypatch.setenv("THREADLINE_EXTRACTION__N_PROCESS", "2")
    settings = Settings()
    assert settings.data_dir == Path("/srv/kb")
    assert settings.vector.url == "http://qdrant:6333"
    assert settings.vector.api_key is not None
    assert settings.vector.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in settings.model_dump_json()
    assert settings.extraction.n_process == 2


def test_neo4j_settings_keep_the_password_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_GRAPH__BACKEND", "neo4j")
    monkeypatch.setenv("THREADLINE_GRAPH__URI", "neo4j+s://graph.example:7687")
    monkeypatch.setenv("THREADLINE_GRAPH__PASSWORD", "hunter22")
    monkeypatch.setenv("THREADLINE_GRAPH__DATABASE", "kb")
    settings = Settings()
    assert settings.graph.backend == "neo4j"
    assert settings.graph.uri == "neo4j+s://graph.example:7687"
    assert settings.graph.database == "kb"
    assert settings.graph.password is not None
    assert settings.graph.password.get_secret_value() == "hunter22"
    assert "hunter22" not in repr(settings)
    assert "hunter22" not in settings.model_dump_json()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("THREADLINE_VECTOR__BACKEND", "faiss", "edge"),
        ("THREADLINE_EXTRACTION__CHUNK_CHARS", "10", "greater than or equal"),
        ("THREADLINE_TENANT", "two words", "pattern"),
        ("THREADLINE_VECTOR__BACKEND", "qdrant", "THREADLINE_VECTOR__URL"),
        ("THREADLINE_GRAPH__BACKEND", "neo4j", "THREADLINE_GRAPH__PASSWORD"),
        ("THREADLINE_GRAPH__BACKEND", "arangodb", "neo4j"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
