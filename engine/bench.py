"""The benchmark harness: index a shared-format dataset, ask every question in each
mode, and score retrieval (Recall@k), answers (EM/F1), latency (with the median of each
stage, and of each plan step kind as ``plan.KIND``) and indexing."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import string
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import NOT_FOUND, Mode
from agents.spans import answer_kind
from engine.query import QueryPipeline
from engine.threadline import Threadline
from extractors import SpacyEntityExtractor
from graph import Access, InputError
from graph.provenance import Answer

__all__ = [
    "MODES",
    "AnswerScore",
    "BenchQuestion",
    "answer_kind_of",
    "answer_summary",
    "exact_match",
    "f1_score",
    "load_questions",
    "run_bench",
]

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
    modes: Sequence[Mode] = MODES,
) -> dict[str, Any]:
    """Index the dataset's corpus (a no-op when unchanged) and score each mode."""
    corpus = dataset_dir / "corpus.jsonl"
    questions = load_questions(dataset_dir / "questions.jsonl")[:limit]
    if not questions:
        raise InputError("no questions to run", source=str(dataset_dir / "questions.jsonl"))
    by_title = "graphrag_bench_medical" in dataset_dir.name
    sources = tl.read([corpus])
    report = await tl.ingest(sources)
    access = Access(tenant=tl.settings.tenant)
    depth = max(ks)
    recall: dict[str, dict[int, list[float]]] = {m: {k: [] for k in ks} for m in modes}
    em: dict[str, list[float]] = {m: [] for m in modes}
    f1: dict[str, list[float]] = {m: [] for m in modes}
    answers: dict[str, list[AnswerScore]] = {m: [] for m in modes}
    latency: dict[str, list[float]] = {m: [] for m in modes}
    stages: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in modes}
    rows = []
    # Load the NLP pipeline and the embedder before the clock starts.
    await tl.retrieve(questions[0].question, access, k=depth)
    pipeline = tl.pipeline()  # the pipeline itself: a repeated question is answered again
    parser = tl.extractor  # the pipeline already loaded, not a second copy
    for done, q in enumerate(questions, 1):
        row: dict[str, Any] = {"id": q.id, "question": q.question, "answers": list(q.answers)}
        kind = await asyncio.to_thread(answer_kind_of, parser, q.question)
        for mode in modes:
            # Every mode parses and embeds the question itself: none rides on a parse or a
            # vector another mode left in the caches.
            tl.forget_queries()
            started = time.perf_counter()
            answer, drafted = await _ask(pipeline, q.question, access, mode, depth)
            latency[mode].append(answer.timings_ms.get("retrieval", 0.0))
            for stage, ms in answer.timings_ms.items():
                stages[mode][stage].append(ms)
            for step in answer.plan:
                stages[mode][f"plan.{step.kind}"].append(step.ms)
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
                answers[mode].append(AnswerScore.of(kind, drafted, answer.answer, q.answers))
            row[mode] = {
                "answer": answer.answer,
                "draft": drafted,
                "reason": answer.answer_reason,
                "kind": kind,
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
        "recall": {m: {str(k): _mean(recall[m][k]) for k in ks} for m in modes},
        "em": {m: _mean(em[m]) for m in modes} if answered else None,
        "f1": {m: _mean(f1[m]) for m in modes} if answered else None,
        "answers": {m: answer_summary(answers[m]) for m in modes} if answered else None,
        "questions_with_answers": answered,
        "latency_ms": {
            m: {"p50": _percentile(latency[m], 0.5), "p95": _percentile(latency[m], 0.95)}
            for m in modes
        },
        "stages_ms": {
            m: {stage: _percentile(values, 0.5) for stage, values in stages[m].items()}
            for m in modes
        },
        "ingest": {
            "passages": report.documents_read,
            "added": report.added,
            "seconds": report.seconds,
            "passages_per_s": round(report.added / report.seconds, 1) if report.added else None,
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


async def _ask(
    pipeline: QueryPipeline, question: str, access: Access, mode: Mode, k: int
) -> tuple[Answer, str]:
    """The answer and the draft it was made from (before the answer check)."""
    drafted = ""
    async for event in pipeline.stream(question, access, mode=mode, k=k):
        if event.kind == "answer":
            drafted = event.text or ""
        if event.answer is not None:
            return event.answer, drafted
    raise InputError("the question produced no answer")  # pragma: no cover - always done


def answer_kind_of(parser: SpacyEntityExtractor, question: str) -> str:
    """The answer kind of a question (see :func:`agents.spans.answer_kind`)."""
    return answer_kind(parser.parse(question)).kind


@dataclass(frozen=True, slots=True)
class AnswerScore:
    """One answer scored: its kind, the draft's F1, the final answer's F1, whether it
    was withheld ("not found") and its length in words."""

    kind: str
    drafted: bool
    draft_f1: float
    f1: float
    abstained: bool
    words: int

    @classmethod
    def of(cls, kind: str, draft: str, final: str, gold: Sequence[str]) -> AnswerScore:
        """Score a draft and the answer that left the pipeline against the gold answers."""
        abstained = final == NOT_FOUND
        drafted = bool(draft) and draft != NOT_FOUND
        return cls(
            kind=kind,
            drafted=drafted,
            draft_f1=f1_score(draft, gold) if drafted else 0.0,
            f1=f1_score(final, gold),
            abstained=abstained,
            words=0 if abstained else len(final.split()),
        )


#: kinds whose answers are a name or a value (the short-answer bar applies to them)
SHORT_KINDS = frozenset({"person", "organization", "place", "date", "number", "title"})


def answer_summary(scores: Sequence[AnswerScore]) -> dict[str, Any]:
    """Abstention and answer length over one mode's answers.

    ``abstained``: share answered "not found" (by the answerer or the answer check);
    ``draft_f1``: F1 of the drafts before the answer check; of the drafts the check
    withheld, ``right_lost`` had F1 ≥ 0.5 and ``wrong_avoided`` did not; ``f1_answered``:
    F1 over the answers given; ``short``: share of given name/date/number answers of at
    most 6 words.
    """
    given = [s for s in scores if not s.abstained]
    withheld = [s for s in scores if s.abstained and s.drafted]
    right_lost = sum(1 for s in withheld if s.draft_f1 >= 0.5)
    named = [s for s in given if s.kind in SHORT_KINDS]
    return {
        "abstained": round(1 - len(given) / len(scores), 3) if scores else 0.0,
        "draft_f1": _mean([s.draft_f1 for s in scores]),
        "f1_answered": _mean([s.f1 for s in given]),
        "right_lost": right_lost,
        "wrong_avoided": len(withheld) - right_lost,
        "short": round(sum(s.words <= 6 for s in named) / len(named), 3) if named else None,
    }


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0
