"""Loaders for the benchmark JSONL layout: ``corpus.jsonl`` and ``questions.jsonl``.

Run as a script (``python datasets/loaders.py DATASET_DIR``) to summarise a dataset
folder. The readers themselves live in the engine (``engine.readers`` for corpora,
``engine.bench`` for questions), so ingestion, the benchmark and this script read the
files the same way. This folder is deliberately not an importable package named
``datasets`` (that name belongs to Hugging Face's library); load it by path.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.bench import BenchQuestion, load_questions
from engine.readers import SourceDocument, read_paths

__all__ = ["BenchQuestion", "load_corpus", "load_questions"]

_MAX_RECORD_BYTES = 50_000_000


def load_corpus(path: Path) -> list[SourceDocument]:
    """Passages of a ``corpus.jsonl`` file (``source`` is the passage id)."""
    return list(read_paths([path], max_bytes=_MAX_RECORD_BYTES))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    corpus = load_corpus(folder / "corpus.jsonl")
    questions = load_questions(folder / "questions.jsonl")
    words = sum(len(p.text.split()) for p in corpus)
    print(f"{folder}: {len(corpus)} passages ({words:,} words), {len(questions)} questions")
