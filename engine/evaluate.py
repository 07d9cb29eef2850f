"""The regression gate: a golden question set run against a stored baseline.

A golden set is a folder in the shared benchmark format (``corpus.jsonl`` and
``questions.jsonl``; see :mod:`engine.bench`). :func:`run_golden` indexes the corpus and
asks every question once through the query pipeline (no answer cache), and scores
Recall@2 and @5 on the passages the evidence came from, EM/F1 on the answers, the share
of claims the validator supported or found contradicted, and p50/p95 answer latency.
:func:`compare` lists every metric that is worse than the baseline's by more than the
tolerance (latency: by more than the allowed ratio).

Low-rated feedback (:func:`feedback_cases`) is written in the same question format, with
the answer that was rated and its cited spans, for a person to turn into golden cases.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents import NOT_FOUND, Mode
from engine.bench import exact_match, f1_score, load_questions
from engine.metering import acting_as
from engine.threadline import Threadline
from engine.usage import Caller
from graph import Access, InputError

__all__ = [
    "GoldenMetrics",
    "Regression",
    "compare",
    "load_baseline",
    "run_golden",
]

_KS = (2, 5)
Direction = Literal["higher", "lower"]


class GoldenMetrics(BaseModel):
    """The scores of one run of a golden set (also the baseline file's content)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    questions: int
    mode: str
    k: int
    recall: dict[str, float] = Field(description="Recall@k by k (passage ids)")
    em: float
    f1: float
    supported: float = Field(description="share of claims the validator supported")
    contradicted: float = Field(description="share of claims found contradicted")
    unsupported: float = Field(description="share of claims left unsupported")
    answered: float = Field(description="share of questions with an answer (not 'not found')")
    latency_ms: dict[str, float] = Field(description="p50 and p95 of the whole answer")


class Regression(BaseModel):
    """One metric worse than the baseline by more than allowed."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    baseline: float
    current: float
    allowed: float = Field(description="the worst value that still passes")


async def run_golden(
    tl: Threadline,
    golden_dir: Path,
    *,
    k: int = 5,
    mode: Mode = "threadline",
    llm: bool | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> GoldenMetrics:
    """Index ``golden_dir``'s corpus (a no-op when unchanged) and score every question."""
    questions = load_questions(golden_dir / "questions.jsonl")[:limit]
    if not questions:
        raise InputError("no questions to run", source=str(golden_dir / "questions.jsonl"))
    await tl.ingest(tl.read([golden_dir / "corpus.jsonl"]))
    access = Access(tenant=tl.settings.tenant)
    pipeline = tl.pipeline(llm=llm)
    recall: dict[int, list[float]] = {n: [] for n in _KS}
    em: list[float] = []
    f1: list[float] = []
    verdicts: Counter[str] = Counter()
    latency: list[float] = []
    answered = 0
    # Load the NLP pipeline and the embedder before the clock starts.
    await tl.retrieve(questions[0].question, access, k=k, mode=mode)
    with acting_as(Caller(tenant=access.tenant, key_id="eval")):
        for done, q in enumerate(questions, 1):
            started = time.perf_counter()
            answer = await pipeline.ask(q.question, access, k=k, mode=mode, unsupported=True)
            latency.append((time.perf_counter() - started) * 1000)
            ids = [e.document_id for e in answer.evidence]
            docs = {d.id: d.source for d in await tl.graph.documents(access, ids=ids)}
            passages = [docs[i] for i in ids if i in docs]
            gold = set(q.supporting_ids)
            for n in _KS:
                recall[n].append(len(set(passages[:n]) & gold) / len(gold) if gold else 0.0)
            if q.answers:
                em.append(exact_match(answer.answer, q.answers))
                f1.append(f1_score(answer.answer, q.answers))
            answered += answer.answer != NOT_FOUND
            verdicts.update(c.verdict for c in answer.claims)
            if progress is not None:
                progress(done, len(questions))
    claims = sum(verdicts.values())
    return GoldenMetrics(
        dataset=golden_dir.name,
        questions=len(questions),
        mode=mode,
        k=k,
        recall={str(n): _mean(recall[n]) for n in _KS},
        em=_mean(em),
        f1=_mean(f1),
        supported=_share(verdicts["supported"], claims),
        contradicted=_share(verdicts["contradicted"], claims),
        unsupported=_share(verdicts["unsupported"], claims),
        answered=_share(answered, len(questions)),
        latency_ms={"p50": _percentile(latency, 0.5), "p95": _percentile(latency, 0.95)},
    )


def compare(
    current: GoldenMetrics,
    baseline: GoldenMetrics,
    *,
    tolerance: float = 0.02,
    max_latency_ratio: float = 1.5,
) -> list[Regression]:
    """Every metric of ``current`` worse than ``baseline``'s beyond the allowance:
    quality by more than ``tolerance`` (absolute), latency by more than
    ``max_latency_ratio`` times."""
    checks: list[tuple[str, float, float, Direction]] = [
        *((f"recall@{n}", baseline.recall.get(n, 0.0), current.recall.get(n, 0.0), "higher")
          for n in sorted(baseline.recall)),
        ("em", baseline.em, current.em, "higher"),
        ("f1", baseline.f1, current.f1, "higher"),
        ("supported", baseline.supported, current.supported, "higher"),
        ("contradicted", baseline.contradicted, current.contradicted, "lower"),
    ]  # fmt: skip
    out = []
    for metric, before, now, better in checks:
        allowed = before - tolerance if better == "higher" else before + tolerance
        if (now < allowed) if better == "higher" else (now > allowed):
            out.append(
                Regression(metric=metric, baseline=before, current=now, allowed=round(allowed, 4))
            )
    for name in ("p50", "p95"):
        before = baseline.latency_ms.get(name, 0.0)
        now = current.latency_ms.get(name, 0.0)
        if before > 0 and now > before * max_latency_ratio:
            out.append(
                Regression(
                    metric=f"latency_{name}_ms",
                    baseline=before,
                    current=now,
                    allowed=round(before * max_latency_ratio, 2),
                )
            )
    return out


def load_baseline(path: Path) -> GoldenMetrics:
    """A baseline written by ``threadline eval --write-baseline``."""
    try:
        return GoldenMetrics.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the baseline: {exc}", source=str(path)) from exc
    except ValueError as exc:
        raise InputError(
            f"not a baseline written by threadline eval --write-baseline: {exc}", source=str(path)
        ) from exc


def write_baseline(path: Path, metrics: GoldenMetrics) -> None:
    """Store ``metrics`` as the baseline later runs compare against."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(metrics.model_dump_json(indent=2) + "\n", encoding="utf-8")


def feedback_cases(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Low-rated feedback as golden-format questions for review: ``answers`` is left empty
    (the rated answer was judged wrong; a reviewer writes the right one), the rated answer,
    rating, comment and cited spans ride along."""
    out = []
    for row in rows:
        spans = row.get("spans") or []
        passages = list(dict.fromkeys(s["source"] for s in spans if s.get("source")))
        out.append(
            {
                "id": f"feedback_{row['id']}",
                "question": row["question"],
                "answer": None,
                "answers": [],
                "supporting_passage_ids": passages,
                "supporting_titles": [],
                "source": f"threadline feedback {row['id']}",
                "source_split": "feedback",
                "rated_answer": row["answer"],
                "rating": row["rating"],
                "comment": row["comment"],
                "cited_spans": spans,
                "tenant": row["tenant"],
                "rated_at": row["ts"],
            }
        )
    return out


def dump_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Write records as JSON Lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)
