"""Variants of a shared benchmark set shaped unlike Wikipedia: every passage's title is
replaced by an opaque id, so no document is titled with its subject.

The passages, their ids, the questions and the gold answers stay the same; a title
shared by several passages (a medical document split into chunks) maps to one id, and
the questions' supporting titles are mapped the same way, so recall by title still
works. Used as ``datasets/benchmark.py variants DATASET_DIR --out DIR``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["untitled"]


def _opaque(title: str) -> str:
    return "doc-" + hashlib.blake2b(title.encode("utf-8"), digest_size=5).hexdigest()


def untitled(dataset: Path, out: Path) -> dict[str, Any]:
    """Write ``out/<dataset name>`` with opaque titles; returns what was written."""
    corpus, questions = dataset / "corpus.jsonl", dataset / "questions.jsonl"
    for path in (corpus, questions):
        if not path.is_file():
            raise SystemExit(f"{path} is missing: point at a shared dataset folder")
    target = out / dataset.name
    if target.exists() and any(target.iterdir()):
        raise SystemExit(f"{target} is not empty: choose another --out")
    target.mkdir(parents=True, exist_ok=True)
    passages = titles = 0
    with (
        corpus.open(encoding="utf-8") as src,
        (target / "corpus.jsonl").open("w", encoding="utf-8") as dst,
    ):
        seen: set[str] = set()
        for line in src:
            if not line.strip():
                continue
            row = json.loads(line)
            seen.add(row.get("title", ""))
            row["title"] = _opaque(row.get("title", ""))
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            passages += 1
        titles = len(seen)
    with (
        questions.open(encoding="utf-8") as src,
        (target / "questions.jsonl").open("w", encoding="utf-8") as dst,
    ):
        asked = 0
        for line in src:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("supporting_titles"):
                row["supporting_titles"] = [_opaque(t) for t in row["supporting_titles"]]
            dst.write(json.dumps(row, ensure_ascii=False) + "\n")
            asked += 1
    return {
        "dataset": dataset.name,
        "out": str(target),
        "passages": passages,
        "titles_replaced": titles,
        "questions": asked,
    }
