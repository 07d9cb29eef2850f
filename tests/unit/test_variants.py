"""``datasets/benchmark.py variants``: a shared set with every title replaced by an
opaque id, passages, ids and questions unchanged, supporting titles mapped alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scripts import load

variants = load("variants")


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _read(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_titles_become_opaque_ids_and_nothing_else_changes(tmp_path: Path) -> None:
    shared = tmp_path / "medical_set"
    shared.mkdir()
    corpus = [
        {"id": "p_1", "title": "Norland Foods", "text": "Norland Foods runs 14 plants."},
        {"id": "p_2", "title": "Norland Foods", "text": "It was founded in 1952."},
        {"id": "p_3", "title": "Castell Logistics", "text": "Castell runs 22 plants."},
    ]
    questions = [
        {
            "id": "q1",
            "question": "Which firm runs more plants?",
            "answers": ["Castell Logistics"],
            "supporting_passage_ids": ["p_1", "p_3"],
            "supporting_titles": ["Norland Foods", "Castell Logistics"],
        }
    ]
    _write(shared / "corpus.jsonl", corpus)
    _write(shared / "questions.jsonl", questions)
    report = variants.untitled(shared, tmp_path / "out")
    assert report["passages"] == 3
    assert report["titles_replaced"] == 2
    written = _read(tmp_path / "out" / "medical_set" / "corpus.jsonl")
    assert [r["id"] for r in written] == ["p_1", "p_2", "p_3"]
    assert [r["text"] for r in written] == [r["text"] for r in corpus]
    titles = [str(r["title"]) for r in written]
    assert titles[0] == titles[1] != titles[2]
    assert not any("Norland" in t or "Castell" in t for t in titles)
    asked = _read(tmp_path / "out" / "medical_set" / "questions.jsonl")
    assert asked[0]["supporting_titles"] == [titles[0], titles[2]]
    assert asked[0]["supporting_passage_ids"] == ["p_1", "p_3"]
    assert asked[0]["question"] == questions[0]["question"]


def test_an_existing_variant_is_not_overwritten(tmp_path: Path) -> None:
    shared = tmp_path / "set"
    shared.mkdir()
    _write(shared / "corpus.jsonl", [{"id": "p_1", "title": "A", "text": "x"}])
    _write(shared / "questions.jsonl", [{"id": "q", "question": "Why?", "answers": ["x"]}])
    variants.untitled(shared, tmp_path / "out")
    with pytest.raises(SystemExit, match="not empty"):
        variants.untitled(shared, tmp_path / "out")
    with pytest.raises(SystemExit, match="missing"):
        variants.untitled(tmp_path / "nowhere", tmp_path / "out2")
