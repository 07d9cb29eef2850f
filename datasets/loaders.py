"""Loaders for the benchmark JSONL layout: ``corpus.jsonl`` and ``questions.jsonl``.

Run as a script (``python datasets/loaders.py PATH``) to print a summary of a dataset folder.
This folder is deliberately not an importable package named ``datasets`` (that name
belongs to Hugging Face's library); load it by path, as the benchmark harness does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Passage:
    """One corpus passage."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Question:
    """One benchmark question with its gold answers and supporting passages."""

    id: str
    question: str
    answers: tuple[str, ...]
    supporting_passage_ids: tuple[str, ...]
    supporting_titles: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: malformed JSON: {exc.msg}") from exc
                if not isinstance(record, dict):
                    raise ValueError(f"{path}:{number}: each line must be a JSON object")
                yield number, record


def load_corpus(path: Path) -> list[Passage]:
    """Passages of a ``corpus.jsonl`` file."""
    return [
        Passage(id=str(r["id"]), title=str(r.get("title", "")), text=str(r["text"]))
        for _, r in _lines(path)
    ]


def load_questions(path: Path) -> list[Question]:
    """Questions of a ``questions.jsonl`` file."""
    known = {"id", "question", "answers", "supporting_passage_ids", "supporting_titles"}
    out = []
    for _, r in _lines(path):
        answers = r.get("answers") or ([r["answer"]] if r.get("answer") else [])
        out.append(
            Question(
                id=str(r["id"]),
                question=str(r["question"]).strip(),
                answers=tuple(str(a) for a in answers),  # type: ignore[union-attr]
                supporting_passage_ids=tuple(r.get("supporting_passage_ids") or ()),  # type: ignore[arg-type]
                supporting_titles=tuple(r.get("supporting_titles") or ()),  # type: ignore[arg-type]
                extra={k: v for k, v in r.items() if k not in known},
            )
        )
    return out


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    corpus = load_corpus(folder / "corpus.jsonl")
    questions = load_questions(folder / "questions.jsonl")
    words = sum(len(p.text.split()) for p in corpus)
    print(f"{folder}: {len(corpus)} passages ({words:,} words), {len(questions)} questions")
