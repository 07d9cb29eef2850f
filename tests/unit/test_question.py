from __future__ import annotations

import pytest

from agents import analyze_question
from extractors import SpacyEntityExtractor


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When did Lothair II's mother die?", {"DATE"}),
        ("Who directed Blood Street?", {"PERSON"}),
        ("Where was Hank Snow born?", {"GPE"}),
        ("In which country is Zabłocie located?", {"GPE"}),
        ("Which company owns Novair International Airways?", {"ORG"}),
        ("How many Publix stores are in Tennessee?", {"CARDINAL"}),
    ],
)
def test_expected_answer_types(
    extractor: SpacyEntityExtractor, question: str, expected: set[str]
) -> None:
    assert expected <= analyze_question(question, extractor).answer_types


def test_phrases_and_keywords(extractor: SpacyEntityExtractor) -> None:
    analysis = analyze_question("When did Lothair II's mother die?", extractor)
    assert "Lothair II" in {p for p, _ in analysis.phrases}
    assert "mother" in analysis.keywords
    assert not analysis.yes_no
    assert analyze_question("Is Paris in France?", extractor).yes_no
