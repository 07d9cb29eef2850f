from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.bench import exact_match, f1_score, load_questions
from graph import InputError


def test_squad_normalisation() -> None:
    assert exact_match("The Finnish markka.", ["Finnish markka"]) == 1.0
    assert exact_match("markka", ["Finnish markka"]) == 0.0
    assert f1_score("the Finnish markka", ["Finnish markka"]) == 1.0
    assert f1_score("markka", ["Finnish markka"]) == pytest.approx(2 / 3)
    assert f1_score("nothing", ["Finnish markka", "FIM"]) == 0.0
    assert exact_match("FIM", ["Finnish markka", "FIM"]) == 1.0
    assert exact_match("anything", []) == 0.0


def test_questions_load_with_gold_and_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text(
        json.dumps({"id": "q1", "question": " Who? ", "answer": "A", "answers": ["A", "B"],
                    "supporting_passage_ids": ["p1"], "supporting_titles": ["T"]}) + "\n"
        + json.dumps({"id": "q2", "question": "When?", "answer": None, "answers": []}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    q1, q2 = load_questions(path)
    assert (q1.question, q1.answers, q1.supporting_ids) == ("Who?", ("A", "B"), ("p1",))
    assert q2.answers == ()
    path.write_text('{"id": "q1"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"questions\.jsonl:1:"):
        load_questions(path)
