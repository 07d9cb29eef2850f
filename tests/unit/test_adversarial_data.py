"""The adversarial claim and answer files: every line parses, every kind is covered.

``tests/data/adversarial_claims.jsonl`` holds one cited text and one claim per line;
``tests/data/adversarial_answers.jsonl`` holds one question, its answer and the claims
behind it per line. The validator is run over them elsewhere; these tests keep the files
well formed and large enough to mean something.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
CLAIMS = DATA / "adversarial_claims.jsonl"
ANSWERS = DATA / "adversarial_answers.jsonl"

FAITHFUL = {
    "verbatim": 8,
    "parenthesis_dropped": 8,
    "passive_to_active": 1,
    "active_to_passive": 1,
    "clause_extracted": 8,
    "light_paraphrase": 8,
}
CHANGING = dict.fromkeys(
    [
        "negation_added",
        "negation_removed",
        "roles_swapped",
        "number_changed",
        "year_changed",
        "money_or_percent_changed",
        "unit_changed",
        "name_replaced",
        "direction_flipped",
        "condition_dropped",
        "modality_changed",
        "quote_fragment",
        "wrong_attribution",
        "added_content",
    ],
    7,
)
ANSWER_KINDS = {
    "entity_role": 6,
    # the asked role of a verb written as a noun ("its acquisition of X")
    "nominal_role": 8,
    "yes_no": 4,
    "comparison_missing_branch": 2,
    "which_first": 2,
    "comparison": 2,
    "number": 2,
    "substring_answer": 2,
    # the answer check's name and chain rules (attacks found by red-teaming them)
    "one_hop": 3,
    "attached": 3,
    "category": 6,
    "locative": 5,
    "kind_noun": 2,
    "shortened_name": 2,
    # choices decided by what each option's own claims state, and lives written as ranges
    "choice_statement": 4,
    "life_range": 3,
    "shared_value": 3,
}
#: Claims quoted in the issue that asked for meaning checks, each with its kind.
ISSUE_CLAIMS = {
    ("negation_added", "Acme did not acquire Globex in 2024"),
    ("roles_swapped", "Globex acquired Acme"),
    ("direction_flipped", "Revenue fell 5 %"),
    ("wrong_attribution", "Smith was born in Paris"),
    ("quote_fragment", "acquire Globex"),
}


def _lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{path.name}:{number} is blank"
        row = json.loads(line)
        assert isinstance(row, dict), f"{path.name}:{number} is not an object"
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def claims() -> list[dict[str, Any]]:
    return _lines(CLAIMS)


@pytest.fixture(scope="module")
def answers() -> list[dict[str, Any]]:
    return _lines(ANSWERS)


def _sentences(text: str) -> int:
    # Abbreviations such as "Dr." and "Mr." are not sentence ends.
    ends = re.findall(r"(?<!\bDr)(?<!\bMr)(?<!\bMrs)[.!?](?=\s+[A-Z]|\s*$)", text)
    return max(len(ends), 1)


def test_claim_lines_have_the_fields_and_no_more(claims: list[dict[str, Any]]) -> None:
    for row in claims:
        assert set(row) == {"id", "kind", "source", "claim", "expect"}, row
        assert all(isinstance(row[k], str) and row[k].strip() for k in row), row
        assert row["expect"] in {"supported", "rejected"}, row
        assert 1 <= _sentences(row["source"]) <= 3, row["source"]
        assert row["claim"] != row["source"] or row["kind"] == "verbatim", row["id"]


def test_claim_ids_are_unique(claims: list[dict[str, Any]]) -> None:
    ids = Counter(row["id"] for row in claims)
    assert [i for i, n in ids.items() if n > 1] == []


def test_every_kind_has_its_minimum_and_its_expected_verdict(
    claims: list[dict[str, Any]],
) -> None:
    counts = Counter(row["kind"] for row in claims)
    assert set(counts) == set(FAITHFUL) | set(CHANGING)
    for kind, least in (FAITHFUL | CHANGING).items():
        assert counts[kind] >= least, (kind, counts[kind])
    assert counts["passive_to_active"] + counts["active_to_passive"] >= 8
    for row in claims:
        want = "supported" if row["kind"] in FAITHFUL else "rejected"
        assert row["expect"] == want, row["id"]
    assert len(claims) >= 130


def test_the_kinds_hold_what_they_name(claims: list[dict[str, Any]]) -> None:
    for row in claims:
        source, claim = row["source"], row["claim"]
        if row["kind"] == "verbatim":
            assert claim in source, row["id"]
        elif row["kind"] == "quote_fragment":
            assert claim in source, row["id"]
            assert len(claim) < len(source.rstrip(".")), row["id"]
        elif row["kind"] == "parenthesis_dropped":
            assert "(" in source, row["id"]
            assert "(" not in claim, row["id"]
        elif row["kind"] in CHANGING.keys() - {"condition_dropped"}:
            # A meaning-changing edit that is still a substring would be a quote fragment.
            assert claim not in source, row["id"]


def test_no_two_cases_of_a_kind_share_a_source(claims: list[dict[str, Any]]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for row in claims:
        key = (row["kind"], row["source"])
        assert key not in seen, (row["id"], seen.get(key))
        seen[key] = row["id"]


def test_the_issue_examples_are_cases(claims: list[dict[str, Any]]) -> None:
    have = {(row["kind"], row["claim"]) for row in claims}
    assert have >= ISSUE_CLAIMS
    sources = {row["source"] for row in claims}
    assert "Smith moved to Paris, where Jones was born." in sources


def test_answer_lines_have_the_fields(answers: list[dict[str, Any]]) -> None:
    for row in answers:
        assert set(row) == {"id", "kind", "question", "answer", "claims", "expect"}, row
        assert row["expect"] in {"supported", "rejected"}, row
        assert row["question"].endswith("?"), row["id"]
        assert row["answer"].strip(), row["id"]
        assert row["claims"], row["id"]
        for claim in row["claims"]:
            assert set(claim) == {"text", "source"}, row["id"]
            assert claim["text"].strip(), row["id"]
            assert claim["source"].strip(), row["id"]
    assert len({row["id"] for row in answers}) == len(answers)
    assert len(answers) >= 25


def test_every_answer_kind_is_covered_both_ways(answers: list[dict[str, Any]]) -> None:
    counts = Counter(row["kind"] for row in answers)
    assert set(counts) == set(ANSWER_KINDS)
    for kind, least in ANSWER_KINDS.items():
        assert counts[kind] >= least, (kind, counts[kind])
    verdicts = {(row["kind"], row["expect"]) for row in answers}
    for kind in ANSWER_KINDS.keys() - {"comparison_missing_branch"}:
        assert (kind, "rejected") in verdicts, kind
        assert (kind, "supported") in verdicts or kind == "substring_answer", kind
    assert {row["expect"] for row in answers if row["kind"] == "comparison_missing_branch"} == {
        "rejected"
    }


def test_the_issue_answers_are_cases(answers: list[dict[str, Any]]) -> None:
    rejected = {
        (row["question"], row["answer"], row["claims"][0]["text"])
        for row in answers
        if row["expect"] == "rejected"
    }
    assert (
        "Who was Scrooge's business partner?",
        "Bob Cratchit",
        "Bob Cratchit, clerk to Ebenezer Scrooge.",
    ) in rejected
    assert any(q == "Who is Fred?" and a == "Scrooge" for q, a, _ in rejected)
    assert any(q == "Who acquired Globex?" and a == "Globex" for q, a, _ in rejected)
    # "no" inside "Nolan": an answer word that is only part of a claim word.
    assert any(
        a == "no" and "Nolan" in text and not re.search(r"\bno\b", text, re.IGNORECASE)
        for _, a, text in rejected
    )
