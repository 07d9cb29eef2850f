"""Attacks on subject requests, run as an operator would (the CLI on a data dir).

- Erasing a key id ("cli") or a tenant must not wipe who did what from the audit log:
  it is refused, and the log is left byte for byte.
- A subject that only audit records mention is refused the same way.
- Erasing a name reaches its spelling variants ("Marisol  Quintero", a line break,
  "Quintero, Marisol"), but neither a company ("Quintero Shipping") nor anyone's e-mail
  address; one-word aliases are only offered as ``possible_terms``; and the subject's own
  address can be erased afterwards.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.audit import AuditLog, read_records, verify
from engine.cli import app
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access

pytestmark = pytest.mark.privacy

EMAIL = "marisol.quintero@example.org"
DOCS = {
    "memo-1": (
        "Marisol Quintero leads the Lisbon depot for Acme Freight. Write to "
        f"{EMAIL} for schedules. Ms. Quintero approved the crane contract in May. "
        "Quintero said the budget was fine. Marisol  Quintero called twice. Marisol\n"
        "Quintero left early. Quintero, Marisol is listed as the contact."
    ),
    "memo-2": "The depot report covers crane usage. The depot is run by Acme Freight.",
    "memo-3": (
        "Quintero Shipping moved 40 containers to Lisbon in June. "
        "M.Quintero@example.org is the shipping desk."
    ),
}

#: A document that names her only in its title.
TITLES = {"memo-2": "Report by Marisol Quintero"}


def _run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)])
    return result.exit_code, str(result.output)


def _ok(data_dir: Path, *args: str) -> str:
    code, output = _run(data_dir, *args)
    assert code == 0, output
    return output


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("subject-attacks")
    corpus = root / "memos.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"id": s, "title": TITLES.get(s, s.title()), "text": t}) + "\n"
            for s, t in DOCS.items()
        ),
        encoding="utf-8",
    )
    data = root / "data"
    _ok(data, "ingest", str(corpus), "--tenant", "acme")
    _ok(data, "subject", "export", "Marisol Quintero")  # an audited request by key "cli"
    return data


def _unchanged_but_the_refusal(log: Path, before: bytes) -> None:
    """The log as it was, plus the refused erase's own intent and failed outcome."""
    after = log.read_bytes()
    assert after.startswith(before)
    added = [json.loads(line) for line in after[len(before) :].splitlines()]
    assert [(r["action"], r["phase"], r.get("status")) for r in added] == [
        ("subject.erase", "intent", None),
        ("subject.erase", "outcome", "failed"),
    ]
    assert verify(log) == len(read_records(log))


def _texts(data_dir: Path) -> dict[str, tuple[str, int]]:
    """source -> (text, version) of every stored document (its title first)."""

    async def read() -> dict[str, tuple[str, int]]:
        async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
            docs = await tl.browse(Access.admin()).documents(limit=100)
        return {d.source: (f"{d.title}\n{d.text}", d.version) for d in docs}

    return asyncio.run(read())


@pytest.mark.parametrize("subject", ["cli", "acme", "subject.export"])
def test_erasing_an_attribution_value_is_refused_and_changes_nothing(
    data_dir: Path, subject: str
) -> None:
    log = data_dir / "audit.log"
    before = log.read_bytes()
    code, output = _run(data_dir, "subject", "erase", subject)
    assert code == 1, output
    assert "never erased" in output
    _unchanged_but_the_refusal(log, before)
    attributed = [r.fields.get("key_id") for r in read_records(log)]
    assert attributed
    assert set(attributed) == {"cli"}


def test_an_export_never_reports_attribution_fields(data_dir: Path) -> None:
    report = json.loads(_ok(data_dir, "subject", "export", "cli"))
    assert report["occurrences"] == []


def test_a_subject_only_audit_records_mention_is_refused(data_dir: Path) -> None:
    async def note() -> None:
        audit = await AuditLog.open(data_dir / "audit.log")
        try:
            await audit.append("note", key_id="cli", tenant=None, comment="Theodosia Wrenfield")
        finally:
            await audit.close()

    asyncio.run(note())
    log = data_dir / "audit.log"
    before = log.read_bytes()
    code, output = _run(data_dir, "subject", "erase", "Theodosia Wrenfield")
    assert code == 1, output
    assert "only audit records mention" in output
    _unchanged_but_the_refusal(log, before)


def test_a_name_erase_reaches_variants_but_no_address_or_longer_name(data_dir: Path) -> None:
    report = json.loads(_ok(data_dir, "subject", "export", "Marisol Quintero"))
    assert "Quintero" not in report["terms"]
    assert "Quintero" in report["possible_terms"]
    before = _texts(data_dir)
    _ok(data_dir, "subject", "erase", "Marisol Quintero")
    after = _texts(data_dir)
    assert after["memo-3"] == before["memo-3"]  # the company and its desk's address
    memo, version = after["memo-1"]
    assert version == before["memo-1"][1] + 1
    assert len(memo) == len("Memo-1\n" + DOCS["memo-1"])
    assert after["memo-2"][0] == "Report by [PERSON]********\n" + DOCS["memo-2"]
    # Only the address is left of "Marisol"; every spelling of her name is masked.
    assert memo.lower().count("marisol") == 1
    assert EMAIL in memo
    assert "Ms. Quintero approved" in memo  # a one-word alias: only erased when asked

    _ok(data_dir, "subject", "erase", EMAIL)
    memo = _texts(data_dir)["memo-1"][0]
    assert "marisol" not in memo.lower()
    assert "@example.org" not in memo

    _ok(data_dir, "subject", "erase", "Quintero")
    after = _texts(data_dir)
    assert "quintero" not in after["memo-1"][0].lower()
    assert after["memo-3"] == before["memo-3"]
