"""The benchmark harness: index a shared-format dataset, ask every question in both
modes, and score retrieval (Recall@k), answers (EM/F1), latency and indexing."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import Mode
from engine.threadline import Threadline
from graph import Access, InputError

__all__ = ["BenchQuestion", "exact_match", "f1_score", "load_questions", "run_bench"]

_PUNCTUATION = frozenset(string.punctuation)
MODES: tuple[Mode, ...] = ("threadline", "single", "dense")


@dataclass(frozen=True, slots=True)
class BenchQuestion:
    """One question of a shared-format ``questions.jsonl``."""

    id: str
    question: str
    answers: tuple[str, ...]
    supporting_ids: tuple[str, ...]
    supporting_titles: tuple[str, ...]


def load_questions(path: Path) -> list[BenchQuestion]:
    """Read ``questions.jsonl`` (errors name the file and line)."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                answers = r.get("answers") or ([r["answer"]] if r.get("answer") else [])
                out.append(
                    BenchQuestion(
                        id=str(r["id"]),
                        question=str(r["question"]).strip(),
                        answers=tuple(str(a) for a in answers),
                        supporting_ids=tuple(r.get("supporting_passage_ids") or ()),
                        supporting_titles=tuple(r.get("supporting_titles") or ()),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    f"not a benchmark question: {exc}", source=str(path), line=number
                ) from exc
    return out


def _normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD exact match, max over the gold answers."""
    return max((float(_normalize(prediction) == _normalize(a)) for a in answers), default=0.0)


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1, max over the gold answers."""
    best = 0.0
    pred = _normalize(prediction).split()
    for answer in answers:
        gold = _normalize(answer).split()
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = min(len(ordered) - 1, round(q * (len(ordered) - 1)))
    return round(ordered[pos], 2)


async def run_bench(
    tl: Threadline,
    dataset_dir: Path,
    *,
    limit: int | None = None,
    ks: Sequence[int] = (2, 5),
    per_question: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Index the dataset's corpus (a no-op when unchanged) and score both modes."""
    corpus = dataset_dir / "corpus.jsonl"
    questions = load_questions(dataset_dir / "questions.jsonl")[:limit]
    if not questions:
        raise InputError("no questions to run", source=str(dataset_dir / "questions.jsonl"))
    by_title = "graphrag_bench_medical" in dataset_dir.name
    sources = tl.read([corpus])
    report = await tl.ingest(sources)
    access = Access(tenant=tl.settings.tenant)
    depth = max(ks)
    recall: dict[str, dict[int, list[float]]] = {m: {k: [] for k in ks} for m in MODES}
    em: dict[str, list[float]] = {m: [] for m in MODES}
    f1: dict[str, list[float]] = {m: [] for m in MODES}
    latency: dict[str, list[float]] = {m: [] for m in MODES}
    rows = []
    # Load the NLP pipeline and the embedder before the clock starts.
    await tl.retrieve(questions[0].question, access, k=depth)
    pipeline = tl.pipeline()  # the pipeline itself: a repeated question is answered again
    for done, q in enumerate(questions, 1):
        row: dict[str, Any] = {"id": q.id, "question": q.question, "answers": list(q.answers)}
        for mode in MODES:
            started = time.perf_counter()
            answer = await pipeline.ask(q.question, access, mode=mode, k=depth)
            latency[mode].append(answer.timings_ms.get("retrieval", 0.0))
            docs = {
                d.id: d
                for d in await tl.graph.documents(
                    access, ids=[e.document_id for e in answer.evidence]
                )
            }
            keys = [
                (docs[e.document_id].title if by_title else docs[e.document_id].source)
                for e in answer.evidence
                if e.document_id in docs
            ]
            gold = set(q.supporting_titles if by_title else q.supporting_ids)
            for k in ks:
                hit = set(keys[:k]) & gold
                recall[mode][k].append(len(hit) / len(gold) if gold else 0.0)
            if q.answers:
                em[mode].append(exact_match(answer.answer, q.answers))
                f1[mode].append(f1_score(answer.answer, q.answers))
            row[mode] = {
                "answer": answer.answer,
                "retrieved": keys,
                "recall": {str(k): recall[mode][k][-1] for k in ks},
                "linked": [e.name for e in answer.entities],
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        rows.append(row)
        if progress:
            progress(done, len(questions))
    if per_question is not None:
        await asyncio.to_thread(_write_rows, per_question, rows)
    answered = sum(1 for q in questions if q.answers)
    return {
        "dataset": dataset_dir.name,
        "questions": len(questions),
        "recall": {m: {str(k): _mean(recall[m][k]) for k in ks} for m in MODES},
        "em": {m: _mean(em[m]) for m in MODES} if answered else None,
        "f1": {m: _mean(f1[m]) for m in MODES} if answered else None,
        "questions_with_answers": answered,
        "latency_ms": {
            m: {"p50": _percentile(latency[m], 0.5), "p95": _percentile(latency[m], 0.95)}
            for m in MODES
        },
        "ingest": {
            "passages": report.documents_read,
            "added": report.added,
            "seconds": report.seconds,
            "passages_per_s": round(report.added / report.seconds, 1) if report.added else None,
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0
