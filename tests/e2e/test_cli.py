"""The threadline CLI as a user runs it: a child process, JSON on stdout, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer
from extractors.prompts import SYNTHESIZE

pytestmark = pytest.mark.subprocess


def run(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "THREADLINE_DATA_DIR": "/nonexistent-should-be-overridden"},
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_ingest_stats_entities_neighbors_delete(tmp_path: Path, small_corpus: Path) -> None:
    data = tmp_path / "data"
    first = run("ingest", str(small_corpus), "--json", data_dir=data)
    report = json.loads(first.stdout)
    assert report["added"] == 30
    assert "ingesting" in first.stderr  # progress goes to stderr

    stats = json.loads(run("stats", "--json", data_dir=data).stdout)
    assert stats["documents"] == 30
    assert stats["vectors"] == stats["chunks"] > 0
    assert stats["entities"] > 0
    assert stats["relations"] > 0

    again = json.loads(run("ingest", str(small_corpus), "--json", data_dir=data).stdout)
    assert (again["added"], again["unchanged"]) == (0, 30)
    assert json.loads(run("stats", "--json", data_dir=data).stdout) == stats

    found = json.loads(run("entities", "--search", "physics", "--json", data_dir=data).stdout)
    assert found
    assert all("physics" in (e["name"] + " ".join(e["aliases"])).lower() for e in found)

    hood = json.loads(run("neighbors", found[0]["id"], "--json", data_dir=data).stdout)
    assert hood["entity"]["id"] == found[0]["id"]
    assert hood["relations"]
    for rel in hood["relations"]:
        assert found[0]["id"] in {rel["subject_id"], rel["object_id"]}
        assert found[0]["name"] in {rel["subject"], rel["object"]}  # facts come named
        assert rel["evidence"][0]["text"]

    human = run("neighbors", found[0]["name"], data_dir=data).stdout
    assert found[0]["name"] in human
    assert "→" in human

    docs = json.loads(run("documents", "--json", "--limit", "5", data_dir=data).stdout)
    assert len(docs) == 5
    deleted = json.loads(run("delete", docs[0]["id"], "--json", data_dir=data).stdout)
    assert deleted["documents"] == 1
    assert json.loads(run("stats", "--json", data_dir=data).stdout)["documents"] == 29

    isolated = json.loads(run("stats", "--tenant", "nobody", "--json", data_dir=data).stdout)
    assert isolated["documents"] == isolated["vectors"] == isolated["entities"] == 0


def test_errors_exit_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Fine."}\n{"id": "b", "text": \n')
    proc = run("ingest", str(bad), "--json", data_dir=data, check=False)
    assert proc.returncode == 1
    assert f"{bad}:2:" in proc.stderr
    assert "malformed JSON" in proc.stderr
    assert proc.stdout == ""
    assert json.loads(run("stats", "--json", data_dir=data).stdout)["documents"] == 0

    missing = run("delete", "doc_0000000000000000", data_dir=data, check=False)
    assert missing.returncode == 1
    assert "no document with id doc_0000000000000000" in missing.stderr

    unknown = run("neighbors", "Nobody Atall", data_dir=data, check=False)
    assert unknown.returncode == 1
    assert "no entity" in unknown.stderr
    assert "'Nobody Atall'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_demo_tours_the_graph(tmp_path: Path, small_corpus: Path) -> None:
    proc = run("demo", str(small_corpus), data_dir=tmp_path / "data")
    out = proc.stdout
    assert "Ingested 30 passages" in out
    assert "Knowledge graph: 30 documents" in out
    assert out.count("—") >= 2  # facts printed as subject —predicate→ object
    assert "“" in out  # with the quoted source sentence
    assert "doc_" in out  # and the document it came from


def test_ask_and_bench(tmp_path: Path) -> None:
    from tests.conftest import ROOT, SAMPLE

    data = tmp_path / "data"
    run("ingest", str(SAMPLE), data_dir=data)
    question = json.loads(
        (ROOT / "datasets/sample/musique_sample_questions.jsonl").read_text().splitlines()[0]
    )
    answer = json.loads(run("ask", question["question"], "--json", data_dir=data).stdout)
    assert set(answer) >= {"question", "answer", "claims", "evidence", "timings_ms"}
    # the answer line carries its own verdict: it stands only when it follows
    assert answer["answer_verdict"] in {"supported", None}
    assert answer["answer_reason"]
    if answer["answer_verdict"] is None:
        assert answer["answer"] == "not found in the sources"
    assert answer["claims"]
    assert answer["evidence"]
    for claim in answer["claims"]:
        assert set(claim) >= {"text", "verdict", "reason", "facts", "spans"}
        assert claim["verdict"] in {"supported", "unsupported", "contradicted"}
    for ev in answer["evidence"]:
        assert set(ev) >= {"chunk_id", "document_id", "score", "signals"}
    # "the first president of the association which published X": a two-hop plan.
    plan = answer["plan"]
    for step in plan:
        assert set(step) >= {"id", "kind", "depends_on", "input", "output", "evidence", "ms"}
    kinds = [s["kind"] for s in plan]
    assert kinds[0] == "link"
    assert kinds[-1] == "answer"
    assert kinds.count("traverse") == 2
    assert plan[0]["input"]["mention"] == "Journal of Psychotherapy Integration"
    dense = json.loads(
        run(
            "ask", question["question"], "--mode", "dense", "--k", "3", "--json", data_dir=data
        ).stdout
    )
    assert len(dense["evidence"]) == 3
    assert all(set(e["signals"]) == {"dense"} for e in dense["evidence"])
    human = run("ask", question["question"], data_dir=data).stdout
    assert human.split()[0] in {"SUPPORTED", "NOT"}  # it leads with the answer's verdict
    assert "SUPPORTED" in human or "UNSUPPORTED" in human
    assert "s2 traverse published" in human  # the plan, printed as a tree
    bad = run("ask", "   ", data_dir=data, check=False)
    assert bad.returncode == 1
    assert "empty" in bad.stderr

    dataset = tmp_path / "sample_set"
    dataset.mkdir()
    (dataset / "corpus.jsonl").write_text(SAMPLE.read_text())
    (dataset / "questions.jsonl").write_text(
        (ROOT / "datasets/sample/musique_sample_questions.jsonl").read_text()
    )
    per_question = tmp_path / "pq.jsonl"
    result = json.loads(
        run(
            "bench",
            str(dataset),
            "--limit",
            "3",
            "--k",
            "2,5",
            "--per-question",
            str(per_question),
            "--json",
            data_dir=data,
        ).stdout
    )
    assert result["questions"] == 3
    assert set(result["recall"]) == {"threadline", "single", "dense"}
    for mode in ("threadline", "single", "dense"):
        assert set(result["recall"][mode]) == {"2", "5"}
        assert 0 <= result["recall"][mode]["5"] <= 1
        assert result["latency_ms"][mode]["p50"] > 0
    # the median of each stage stays in the output (where a mode's time goes)
    assert {"parse_embed", "dense", "sparse", "link", "graph", "fuse", "retrieval"} <= set(
        result["stages_ms"]["threadline"]
    )
    assert {"parse_embed", "dense", "retrieval"} <= set(result["stages_ms"]["dense"])
    assert any(stage.startswith("plan.") for stage in result["stages_ms"]["threadline"])
    assert result["ingest"]["added"] == 0  # the corpus was already indexed
    assert len(per_question.read_text().splitlines()) == 3


def test_keys_and_audit_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engine.cli import app

    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    made = runner.invoke(
        app, ["keys", "create", "--tenant", "acme", "--group", "x", *data, "--json"]
    )
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout.strip().splitlines()[-1])
    assert created["secret"].startswith(f"tl_{created['key']['id']}_")
    listed = runner.invoke(app, ["keys", "list", *data, "--json"])
    (record,) = json.loads(listed.stdout.strip().splitlines()[-1])
    assert record["tenant"] == "acme"
    assert "secret" not in record
    assert created["secret"] not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", record["id"], *data]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", record["id"], *data]).exit_code == 1
    both = runner.invoke(app, ["keys", "create", "--tenant", "a", "--admin", *data])
    assert both.exit_code == 1
    checked = runner.invoke(app, ["audit", *data])
    assert checked.exit_code == 0
    # key.create, then intent and outcome of each revocation (the second one failed).
    assert "5 records, chain intact" in checked.stdout
    log = tmp_path / "data" / "audit.log"
    outcomes = [json.loads(line) for line in log.read_text().splitlines()][2::2]
    assert [(r["status"], r.get("error")) for r in outcomes] == [
        ("ok", None),
        ("failed", "InputError"),  # already revoked
    ]
    original = log.read_text()
    log.write_text(original.replace("key.create", "key.delete", 1))  # the first record
    assert runner.invoke(app, ["audit", *data]).exit_code == 1
    log.write_text(original.replace("key.revoke", "key.create"))  # the last record
    last = runner.invoke(app, ["audit", *data])
    assert last.exit_code == 1
    log.write_text(original)
    assert runner.invoke(app, ["audit", *data]).exit_code == 0


def test_ask_llm_without_a_model_server_says_what_to_set(
    tmp_path: Path, small_corpus: Path
) -> None:
    run("ingest", str(small_corpus), data_dir=tmp_path / "data")
    proc = run(
        "ask",
        "Who is the spouse of the Green performer?",
        "--llm",
        data_dir=tmp_path / "data",
        check=False,
    )
    assert proc.returncode == 1
    assert "THREADLINE_MODEL__BASE_URL" in proc.stderr


@pytest.mark.llm
def test_ask_llm_json_with_the_local_server(
    tmp_path: Path, small_corpus: Path, llm_server: LocalModelServer
) -> None:
    data = tmp_path / "data"
    run("ingest", str(small_corpus), data_dir=data)
    env = {
        **os.environ,
        "THREADLINE_MODEL__BASE_URL": llm_server.base_url,
        "THREADLINE_MODEL__MODEL": LOCAL_MODEL_ALIAS,
        "THREADLINE_MODEL__TIMEOUT_S": "120",
    }
    question = "Who is the spouse of the Green performer?"

    def ask(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "engine", "ask", question, "--llm", *flags]
        return subprocess.run(
            [*command, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    proc = ask("--json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["synthesis"] in {"model", "extractive"}
    if answer["synthesis"] == "model":
        assert answer["model"]
        assert SYNTHESIZE.id in answer["prompts"]
        assert answer["usage"]["completion_tokens"] > 0
    else:
        assert "rejected" in answer["synthesis_note"]
    assert all(c["verdict"] in {"supported", "contradicted"} for c in answer["claims"])
    human = ask()
    assert human.returncode == 0, human.stderr
    assert "tokens" in human.stdout or "rejected" in human.stdout
