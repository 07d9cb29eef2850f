"""The regression gate on a tiny golden slice (three questions of the bundled golden set):
``threadline eval`` passes against the baseline it wrote and fails, naming the metrics
that dropped, on a deliberately degraded setting; low-rated feedback is exported in the
same golden format, with the cited spans read back from the store; and over its quota
the CLI exits 1 with the API's message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.bench import load_questions
from engine.cli import app
from engine.evaluate import GoldenMetrics, compare
from engine.feedback import FeedbackStore
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access

pytestmark = pytest.mark.ops

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "datasets" / "golden"


@pytest.fixture(scope="module")
def golden_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first three golden questions with their gold passages and two distractors each."""
    folder = tmp_path_factory.mktemp("golden") / "slice"
    folder.mkdir()
    questions = (GOLDEN / "questions.jsonl").read_text("utf-8").splitlines()[:3]
    corpus = [
        json.loads(line) for line in (GOLDEN / "corpus.jsonl").read_text("utf-8").splitlines()
    ]
    gold = {p for line in questions for p in json.loads(line)["supporting_passage_ids"]}
    distractors = [p["id"] for p in corpus if p["id"] not in gold][:6]
    kept = [p for p in corpus if p["id"] in gold or p["id"] in distractors]
    (folder / "questions.jsonl").write_text("\n".join(questions) + "\n", "utf-8")
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in kept), "utf-8")
    return folder


def _eval(runner: CliRunner, *args: str) -> tuple[int, dict[str, object], str]:
    result = runner.invoke(app, ["eval", *args, "--json"])
    payload = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return result.exit_code, payload, result.stderr


def test_eval_passes_on_its_baseline_and_fails_on_a_degraded_setting(
    golden_slice: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    data = str(tmp_path / "data")
    baseline = tmp_path / "baseline.json"
    common = ("--data-dir", data, "--max-latency-ratio", "1000")
    code, wrote, _ = _eval(runner, str(golden_slice), *common, "--write-baseline", str(baseline))
    assert code == 0
    stored = GoldenMetrics.model_validate_json(baseline.read_text("utf-8"))
    assert stored.questions == 3
    assert stored.recall["5"] > 0.6  # else cutting the evidence to one chunk proves nothing

    code, same, _ = _eval(runner, str(golden_slice), *common, "--baseline", str(baseline))
    assert code == 0, same
    assert same["passed"] is True
    assert same["regressions"] == []

    # Degraded: one evidence chunk instead of five (Recall@5 can reach 1/|gold| at most).
    code, worse, err = _eval(
        runner, str(golden_slice), *common, "--baseline", str(baseline), "--k", "1"
    )
    assert code == 1
    assert worse["passed"] is False
    dropped = {r["metric"] for r in worse["regressions"]}  # type: ignore[union-attr]
    assert "recall@5" in dropped
    assert "recall@5" in err
    assert wrote["metrics"] == json.loads(baseline.read_text("utf-8"))


def test_compare_names_each_metric_past_its_allowance() -> None:
    base = GoldenMetrics(
        dataset="d", questions=3, mode="threadline", k=5, recall={"2": 0.5, "5": 0.8},
        em=0.4, f1=0.5, supported=0.7, contradicted=0.0, unsupported=0.3, answered=1.0,
        latency_ms={"p50": 100.0, "p95": 200.0},
    )  # fmt: skip
    within = base.model_copy(update={"em": 0.385, "latency_ms": {"p50": 140.0, "p95": 290.0}})
    assert compare(within, base, tolerance=0.02, max_latency_ratio=1.5) == []
    worse = base.model_copy(
        update={"f1": 0.45, "contradicted": 0.05, "latency_ms": {"p50": 100.0, "p95": 400.0}}
    )
    found = {r.metric: r for r in compare(worse, base, tolerance=0.02, max_latency_ratio=1.5)}
    assert set(found) == {"f1", "contradicted", "latency_p95_ms"}
    assert found["latency_p95_ms"].allowed == 300.0


def test_low_rated_feedback_is_exported_as_golden_questions(
    golden_slice: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"

    async def prepare() -> None:
        async with await Threadline.open(Settings(data_dir=data)) as tl:
            await tl.ingest(tl.read([golden_slice / "corpus.jsonl"]), tenant="acme")
            answer = await tl.ask(
                "Who published the Journal of Psychotherapy Integration?", Access(tenant="acme")
            )
        spans = [s.model_dump(include={"document_id", "chunk_id", "start", "end"})
                 for c in answer.claims for s in c.spans]  # fmt: skip
        assert spans
        store = await FeedbackStore.open(data / "feedback.sqlite")
        try:
            await store.add(
                key_id="k1",
                tenant="acme",
                question=answer.question,
                answer=answer.answer,
                rating=1,
                comment="wrong journal",
                spans=spans,
            )
            await store.add(key_id="k1", tenant="acme", question="fine?", answer="yes", rating=5)
            # A span of another tenant's document is never read back into the export.
            await store.add(key_id="k2", tenant="beta", question="peek?", answer="", rating=2,
                            spans=spans)  # fmt: skip
        finally:
            await store.close()

    asyncio.run(prepare())
    out = tmp_path / "review" / "questions.jsonl"
    result = CliRunner().invoke(
        app, ["feedback", "export", "--max-rating", "2", "--data-dir", str(data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cases = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [c["rating"] for c in cases] == [1, 2]
    assert [q.question for q in load_questions(out)][1] == "peek?"
    wrong = cases[0]
    assert wrong["answers"] == []
    assert wrong["comment"] == "wrong journal"
    assert wrong["cited_spans"]
    assert all(s["text"] for s in wrong["cited_spans"])
    assert wrong["supporting_passage_ids"] == list(
        dict.fromkeys(s["source"] for s in wrong["cited_spans"])
    )
    assert cases[1]["cited_spans"] == []


def test_over_its_quota_the_cli_exits_1_with_the_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["ask", "Who founded it?", "--tenant", "acme", "--data-dir", str(tmp_path / "data")],
        env={"THREADLINE_QUOTA__TENANT__ASKS_PER_DAY": "0"},
    )
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "tenant acme has used its quota of 0 asks per day" in message
    assert "resets at" in message
