"""``threadline verify`` as a user runs it: a child process, a JSONL file or stdin in, one
line out per item line, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess

MEMO = (
    "Acme Corporation acquired Globex Industries in March 2024. "
    "Globex Industries builds welding robots in Dayton, Ohio."
)
FIRST = "Acme Corporation acquired Globex Industries in March 2024."


def run(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "THREADLINE_DATA_DIR": "/nonexistent-should-be-overridden"},
        check=False,
    )


def _item(item_id: str, source: str = "memo-1", end: int = len(FIRST)) -> str:
    claim = {"text": FIRST, "citations": [{"source": source, "start": 0, "end": end}]}
    return json.dumps(
        {
            "id": item_id,
            "question": "Who acquired Globex?",
            "answer": "Acme Corporation",
            "claims": [claim],
        }
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verify-cli")
    corpus = folder / "memo.jsonl"
    corpus.write_text(json.dumps({"id": "memo-1", "title": "memo", "text": MEMO}) + "\n")
    data = folder / "data"
    ingested = run("ingest", str(corpus), "--tenant", "acme", "--json", data_dir=data)
    assert ingested.returncode == 0, ingested.stderr
    return data


def test_one_line_out_per_item_line_and_malformed_lines_by_number(
    data_dir: Path, tmp_path: Path
) -> None:
    lines = [
        _item("good"),
        _item("unknown", source="no-such-memo"),
        '{"id": "broken", "claims": [',
        "",
        json.dumps({"id": "shape", "claims": [{"citations": []}]}),
        _item("outside", end=len(MEMO) + 5),
    ]
    path = tmp_path / "claims.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = run("verify", str(path), "--tenant", "acme", "--json", data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) == 5  # the blank line is skipped
    good, unknown, broken, shape, outside = out
    assert good["id"] == "good"
    assert good["answer_verdict"] == "supported"
    assert good["claims"][0]["verdict"] == "supported"
    assert good["claims"][0]["citations_valid"] is True
    assert unknown["claims"][0]["verdict"] == "unsupported"
    assert unknown["claims"][0]["citations_valid"] is False
    assert broken["line"] == 3
    assert "not JSON" in broken["error"]
    assert shape["line"] == 5
    assert "claims.0.text" in shape["error"]
    assert outside["claims"][0]["citations_valid"] is False
    assert "outside the document" in outside["claims"][0]["reason"]


def test_stdin_human_output_and_other_tenants(data_dir: Path) -> None:
    human = run("verify", "-", "--tenant", "acme", data_dir=data_dir, stdin=_item("c1") + "\n")
    assert human.returncode == 0, human.stderr
    assert "c1" in human.stdout
    assert "answer SUPPORTED" in human.stdout
    assert "1. SUPPORTED" in human.stdout
    assert FIRST in human.stdout
    # Another tenant cites the same source: nothing to read, so not supported.
    other = run("verify", "-", "--tenant", "globex", "--json", data_dir=data_dir, stdin=_item("c1"))
    assert other.returncode == 0, other.stderr
    [result] = [json.loads(line) for line in other.stdout.splitlines()]
    assert result["claims"][0]["verdict"] == "unsupported"
    assert MEMO not in other.stdout


def test_an_unreadable_file_exits_non_zero(data_dir: Path, tmp_path: Path) -> None:
    missing = run("verify", str(tmp_path / "absent.jsonl"), "--json", data_dir=data_dir)
    assert missing.returncode == 1
    assert "cannot read" in missing.stderr
    assert missing.stdout == ""
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert run("verify", str(binary), data_dir=data_dir).returncode == 1
