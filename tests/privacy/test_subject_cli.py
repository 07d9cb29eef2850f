"""`threadline subject export|erase` and `threadline maintain` as an operator runs them.

A memo names a person by name and e-mail; another memo does not. The export lists every
planted occurrence; the erase redacts the memo in place (a new version, the other memo
untouched); afterwards neither the CLI's reads nor any file of the data dir hold the
e-mail, the audit log verifies and records both requests without the value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

pytestmark = pytest.mark.privacy

EMAIL = "tomasz.wierzbicki@example.net"
MEMO = (
    "Procurement memo. Tomasz Wierzbicki approved the Kestrel contract in June. "
    f"Questions about the contract go to Tomasz Wierzbicki at {EMAIL}."
)
OTHER = "Facilities memo. The Kestrel warehouse reopens in July after the roof repair."


def _invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_export_then_erase_from_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = tmp_path / "data"
    data = ["--data-dir", str(data_dir)]
    corpus = tmp_path / "memos.jsonl"
    corpus.write_text(
        json.dumps({"id": "procurement", "title": "Procurement memo", "text": MEMO})
        + "\n"
        + json.dumps({"id": "facilities", "title": "Facilities memo", "text": OTHER})
        + "\n",
        encoding="utf-8",
    )
    _invoke(runner, "ingest", str(corpus), *data)

    report_path = tmp_path / "report.json"
    printed = _invoke(runner, "subject", "export", EMAIL.upper(), "--out", str(report_path), *data)
    assert str(report_path) in printed
    assert report_path.stat().st_mode & 0o077 == 0  # the report is the owner's only
    report = json.loads(report_path.read_text(encoding="utf-8"))
    spans = {
        (o["start"], o["end"])
        for o in report["occurrences"]
        if o["kind"] == "document" and o["field"] == "text"
    }
    assert spans == {(m.start(), m.end()) for m in re.finditer(re.escape(EMAIL), MEMO)}
    assert len(report["documents"]) == 1

    erased = json.loads(_invoke(runner, "subject", "erase", EMAIL, "--json", *data))
    assert erased["documents"] == 1

    listed = _invoke(runner, "documents", "--json", "--permission", "pii", *data)
    assert EMAIL not in listed.lower()
    assert "Facilities memo" in listed
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert EMAIL.encode() not in path.read_bytes().lower(), path

    again = json.loads(_invoke(runner, "subject", "export", EMAIL, *data))
    assert not [o for o in again["occurrences"] if o["kind"] == "document"]

    checked = _invoke(runner, "audit", *data)
    assert "chain intact" in checked
    log = (data_dir / "audit.log").read_text(encoding="utf-8")
    assert "subject.export" in log
    assert "subject.erase" in log
    assert "wierzbicki" not in log.lower()

    missing = runner.invoke(app, ["subject", "erase", "nobody@example.net", *data])
    assert missing.exit_code != 0
    assert "nobody" in missing.output or "match" in missing.output.lower()
    _invoke(runner, "maintain", *data)
