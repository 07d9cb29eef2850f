"""The layering rule and the public surface of each package."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_layers_point_down_only() -> None:
    """graph <- extractors <- agents <- engine, checked by import-linter's contract."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint_imports)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        (
            "graph",
            {"ThreadlineError", "GraphStore", "VectorIndex", "Document", "Access", "Relation"},
        ),
        ("extractors", {"SentenceChunker", "SpacyEntityExtractor", "EntityResolver", "Embedder"}),
        ("engine", {"Threadline", "Settings", "Ingestor", "read_paths"}),
    ],
)
def test_public_names_are_exported(package: str, expected: set[str]) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert expected <= exported
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ names missing {name}"


def test_error_tree_has_one_root() -> None:
    import graph.errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    assert all(issubclass(c, errors.ThreadlineError) for c in classes)
    assert issubclass(errors.RetryableLLMError, errors.LLMError)
    assert issubclass(errors.StoreUnavailableError, errors.StoreError)


def test_lower_layers_never_read_settings() -> None:
    for package in ("graph", "extractors", "agents"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "pydantic_settings" not in text, path
            assert "getenv(" not in text, path
            assert "environ.get(" not in text, path
            assert "environ[" not in text, path
