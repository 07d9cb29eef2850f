"""Answer typing and span choice on hand-written questions and sentences.

The sentences are written like news items, company reports, memos and encyclopedia
entries; none comes from a benchmark set. Span choice runs the real spaCy pipeline.
"""

from __future__ import annotations

import pytest

from agents.spans import answer_kind, clues_of, score_candidates, sentence_views
from extractors import SpacyEntityExtractor


@pytest.mark.parametrize(
    ("question", "kind", "category"),
    [
        ("Who founded Brightwater Labs?", "person", None),
        ("Whom did the board appoint as chair?", "person", None),
        ("Which company acquired Tallis Freight?", "organization", "company"),
        ("Which firm audited the 2023 accounts?", "organization", "firm"),
        ("In what city is the Norland plant?", "place", "city"),
        ("Where is Halden Mining headquartered?", "place", None),
        ("When did Ostrava Bank open its Leeds branch?", "date", None),
        ("What year was the memo circulated?", "date", "year"),
        ("How many employees does Tallis Freight have?", "number", None),
        ("How much did revenue grow in the third quarter?", "number", None),
        ("How long did the strike last?", "number", None),
        ("Did Halden Mining close the Ridge pit?", "yes_no", None),
        ("Is Brightwater Labs older than Tallis Freight?", "yes_no", None),
        ("What is Dana Reyes's occupation?", "thing", "occupation"),
        ("What genre is the album Quiet Harbour?", "thing", "genre"),
        ("What is the name of the waterfall on the Kessel River?", "thing", "waterfall"),
        ("What novel did Ada Marsh publish in 1998?", "title", "novel"),
        ("Why did the regulator fine Ostrava Bank?", "description", None),
        ("What did Mara Quist win the Hale Prize for?", "description", None),
    ],
)
def test_answer_kind(
    extractor: SpacyEntityExtractor, question: str, kind: str, category: str | None
) -> None:
    asked = answer_kind(extractor.parse(question))
    assert asked.kind == kind, asked
    assert asked.category == category, asked


def _best(extractor: SpacyEntityExtractor, question: str, sentences: list[str]) -> str | None:
    doc = extractor.parse(question)
    kind = answer_kind(doc)
    clues = clues_of(doc, [], kind.category)
    views = [(i, view) for i, s in enumerate(sentences) for view in sentence_views(s)]
    ranked = score_candidates(
        doc,
        kind,
        clues,
        [extractor.parse(view) for _, view in views],
        [1.0] * len(views),
        owners=[i for i, _ in views],
    )
    return ranked[0].text if ranked else None


NEWS = [
    "Acme Corp said on Tuesday that it had agreed to buy Globex for $2.1 billion.",
    "The deal, which regulators must still approve, would close in March 2025.",
    "Globex was founded in 1987 by Hana Sato in Osaka.",
]
REPORT = [
    "Revenue rose 12% to $480 million in the third quarter.",
    "Operating costs fell to $310 million, and the company now employs 2,350 people.",
    "The Leeds branch, opened in 2019, was closed in June after the review.",
]
MEMO = [
    "The board appointed Dana Reyes as chief financial officer, replacing Tom Hill.",
    "Tom Hill retired in June after nine years with the group.",
]
ENCYCLOPEDIA = [
    "Marie Dupont (born 4 March 1961 in Lyon) is a French chemist and author.",
    "She taught at the University of Grenoble from 1990 to 2012.",
    "The Kessel River rises in the highlands of Norland and flows into Lake Orve.",
    "Aldon Falls, a waterfall on the Kessel River, drops 80 metres.",
]


@pytest.mark.parametrize(
    ("question", "sentences", "expected"),
    [
        ("Which company agreed to buy Globex?", NEWS, "Acme Corp"),
        ("How much did Acme Corp agree to pay for Globex?", NEWS, "$2.1 billion"),
        ("Who founded Globex?", NEWS, "Hana Sato"),
        ("In what city was Globex founded?", NEWS, "Osaka"),
        ("When would the Globex deal close?", NEWS, "March 2025"),
        ("How many people does the company employ?", REPORT, "2,350"),
        ("When was the Leeds branch closed?", REPORT, "June"),
        ("Who replaced Tom Hill?", MEMO, "Dana Reyes"),
        ("When did Tom Hill retire?", MEMO, "June"),
        ("In what city was Marie Dupont born?", ENCYCLOPEDIA, "Lyon"),
        ("When was Marie Dupont born?", ENCYCLOPEDIA, "4 March 1961"),
        ("What is Marie Dupont's occupation?", ENCYCLOPEDIA, "chemist"),
        ("What is the name of the waterfall on the Kessel River?", ENCYCLOPEDIA, "Aldon Falls"),
        ("Where does the Kessel River flow into?", ENCYCLOPEDIA, "Lake Orve"),
    ],
)
def test_span_choice(
    extractor: SpacyEntityExtractor, question: str, sentences: list[str], expected: str
) -> None:
    assert _best(extractor, question, sentences) == expected


def test_a_name_the_question_gives_is_never_the_answer(extractor: SpacyEntityExtractor) -> None:
    # Tom Hill is the only person in the sentence the question is about: not its answer
    assert _best(extractor, "Who did Dana Reyes replace?", MEMO[:1]) == "Tom Hill"
    assert _best(extractor, "Who replaced Tom Hill?", ["Tom Hill retired in June."]) is None


def test_no_span_of_the_asked_kind_means_no_candidate(extractor: SpacyEntityExtractor) -> None:
    # nothing in the evidence is a date: no date is made up from a name or a number
    assert _best(extractor, "When did Acme Corp hire Dana Reyes?", MEMO) in (None, "June")
    assert (
        _best(extractor, "When did Hana Sato found Globex?", ["Hana Sato founded Globex."]) is None
    )


def test_answers_are_short(extractor: SpacyEntityExtractor) -> None:
    for question in ("Who founded Globex?", "When would the Globex deal close?"):
        best = _best(extractor, question, NEWS)
        assert best is not None
        assert len(best.split()) <= 6
