"""Choice questions on hand-written questions and claims (memos, filings, news items;
none from a benchmark set): the options read from the question, and the option the
claims single out — by the date of the asked event, by the counted amount, or by what
each option's own claims state — with the real spaCy pipeline.
"""

from __future__ import annotations

import pytest

from agents.choices import choose, mentions, options_of, shared_by, shared_value
from agents.naming import words
from extractors import SpacyEntityExtractor


@pytest.mark.parametrize(
    ("question", "options"),
    [
        (
            "Which supplier was paid first, Halvorsen Metals or the Brightwater Group?",
            ["Halvorsen Metals", "Brightwater Group"],
        ),
        (
            "Which subsidiary, Norland Foods or Castell Logistics, had the higher revenue?",
            ["Norland Foods", "Castell Logistics"],
        ),
        (
            "Who joined the board earlier Priya Natarajan or Tom O'Neill?",
            ["Priya Natarajan", "Tom O'Neill"],
        ),
        (
            "Is Kestrel Airways or Northwind Holdings based in Oslo?",
            ["Kestrel Airways", "Northwind Holdings"],
        ),
        (
            "Which report came out later: the Q3 Outlook or the 2024 Annual Review?",
            ["Q3 Outlook", "2024 Annual Review"],
        ),
        (
            "Which case was settled first, Marsh v. Dalton or Reyes v. Hallam Steel?",
            ["Marsh v. Dalton", "Reyes v. Hallam Steel"],
        ),
        (
            "Who chaired the meeting, Anna de la Cruz or Omar al-Rashid?",
            ["Anna de la Cruz", "Omar al-Rashid"],
        ),
        ("Did the plant close in or around 2019?", []),
        ("Was the loan paid in euros or dollars?", []),
        ("Who chairs the audit or risk committee at Castell Logistics?", []),
        ("Which memo mentions Globex?", []),
    ],
)
def test_options_are_read_from_the_question(
    extractor: SpacyEntityExtractor, question: str, options: list[str]
) -> None:
    assert options_of(extractor.parse(question)) == options


def test_a_shortened_option_names_the_fuller_name() -> None:
    said = words("Priya Anand Natarajan joined the board in 2019.")
    assert mentions(said, "Priya Natarajan")
    assert mentions(said, "Priya A. Natarajan")
    assert not mentions(said, "Priya B. Natarajan")
    assert not mentions(said, "Tom Natarajan")


def _check(extractor: SpacyEntityExtractor, question: str, answer: str, claims: list[str]) -> str:
    asked = extractor.parse(question)
    result = choose(asked, answer, options_of(asked), [extractor.parse(c) for c in claims])
    return f"{result.verdict}: {result.reason}"


DATED = [
    "Helena Marsh (12 June 1910 - 2 February 1975) was a Welsh novelist.",
    "Tomas Vidal (3 May 1901 - 9 June 1980) was a Spanish painter.",
]


@pytest.mark.parametrize(
    ("question", "answer", "verdict"),
    [
        # deaths and births of the same two lives give opposite answers
        ("Who died first, Helena Marsh or Tomas Vidal?", "Helena Marsh", "supported"),
        ("Who died first, Helena Marsh or Tomas Vidal?", "Tomas Vidal", "contradicted"),
        ("Who was born first, Helena Marsh or Tomas Vidal?", "Tomas Vidal", "supported"),
        ("Who is older, Helena Marsh or Tomas Vidal?", "Helena Marsh", "contradicted"),
        ("Who was born later, Helena Marsh or Tomas Vidal?", "Helena Marsh", "supported"),
    ],
)
def test_a_date_choice_reads_the_asked_event(
    extractor: SpacyEntityExtractor, question: str, answer: str, verdict: str
) -> None:
    assert _check(extractor, question, answer, DATED).startswith(verdict)


def test_a_date_choice_reads_the_date_next_to_the_asked_event(
    extractor: SpacyEntityExtractor,
) -> None:
    claims = [
        "Castell Logistics, incorporated in 1998, was acquired by Norland in 2015.",
        "Brightwater Group was acquired by Norland in 2009 after it was incorporated in 2001.",
    ]
    question = "Which company was acquired first, Castell Logistics or Brightwater Group?"
    assert _check(extractor, question, "Brightwater Group", claims).startswith("supported")
    question = "Which company was incorporated first, Castell Logistics or Brightwater Group?"
    assert _check(extractor, question, "Castell Logistics", claims).startswith("supported")


def test_a_death_is_not_read_from_a_birth(extractor: SpacyEntityExtractor) -> None:
    claims = ["Arno Kessler was born in 1920 in Kiel.", "Lise Brandt was born in 1931."]
    result = _check(
        extractor, "Who died first, Arno Kessler or Lise Brandt?", "Arno Kessler", claims
    )
    assert result.startswith("unsupported")
    assert "date of death" in result


def test_an_amount_choice_counts_the_asked_noun(extractor: SpacyEntityExtractor) -> None:
    claims = [
        "Norland Foods, founded in 1952, runs 14 plants and employs 3,100 people.",
        "Castell Logistics runs 22 plants and employs 2,400 people.",
    ]
    plants = "Which subsidiary has more plants, Norland Foods or Castell Logistics?"
    assert _check(extractor, plants, "Castell Logistics", claims).startswith("supported")
    assert _check(extractor, plants, "Norland Foods", claims).startswith("contradicted")
    staff = "Which subsidiary has fewer staff, Norland Foods or Castell Logistics?"
    # no claim counts "staff": the first amounts (plants) compare, in one unit
    assert _check(extractor, staff, "Norland Foods", claims).startswith("supported")


def test_amounts_in_other_units_do_not_decide(extractor: SpacyEntityExtractor) -> None:
    claims = ["Norland Foods employs 3,100 people.", "Castell Logistics has 4,000 shareholders."]
    question = "Which subsidiary has more employees, Norland Foods or Castell Logistics?"
    assert _check(extractor, question, "Castell Logistics", claims).startswith("unsupported")


@pytest.mark.parametrize(
    ("claims", "answer", "verdict"),
    [
        (
            ["Harrow Lane is an American rock band.", "Cold Meridian were an English band."],
            "Cold Meridian",
            "supported",
        ),
        (
            ["Harrow Lane is an American rock band.", "Cold Meridian were an English band."],
            "Harrow Lane",
            "contradicted",
        ),
        # a negated statement says nothing for its option
        (
            ["Harrow Lane is not from England.", "Cold Meridian toured Spain."],
            "Harrow Lane",
            "unsupported",
        ),
        # both say it: nothing singles one out
        (
            ["Harrow Lane is a band from England.", "Cold Meridian is a band from England."],
            "Harrow Lane",
            "unsupported",
        ),
        # no claim about one option at all
        (["Cold Meridian were an English band."], "Cold Meridian", "unsupported"),
    ],
)
def test_a_statement_choice_needs_one_option_singled_out(
    extractor: SpacyEntityExtractor, claims: list[str], answer: str, verdict: str
) -> None:
    question = "Which band is from England, Harrow Lane or Cold Meridian?"
    assert _check(extractor, question, answer, claims).startswith(verdict)


def test_an_answer_outside_the_options_is_not_a_choice(extractor: SpacyEntityExtractor) -> None:
    claims = ["Harrow Lane is an American rock band.", "Cold Meridian were an English band."]
    question = "Which band is from England, Harrow Lane or Cold Meridian?"
    assert _check(extractor, question, "The Libertines", claims).startswith("unsupported")


def test_age_is_a_birth_for_people_and_a_date_for_things(extractor: SpacyEntityExtractor) -> None:
    people = [
        "Ada Brook (1894\u20131945) was a British film director.",
        "The Lantern is a 1936 film directed by Ada Brook.",
        "Owen Hale (October 7, 1889 \u2013 August 27, 1968) was an American director.",
    ]
    question = "Which director is younger, Owen Hale or Ada Brook?"
    assert _check(extractor, question, "Ada Brook", people).endswith("Ada Brook 1894")
    things = [
        "The Harlow Review is a 1971 report on coastal shipping.",
        "The Castell Memo is a 1992 internal memo written by Owen Hale (born 1950).",
    ]
    question = "Which document is older, the Harlow Review or the Castell Memo?"
    assert _check(extractor, question, "Harlow Review", things).startswith("supported")
    assert _check(extractor, question, "Castell Memo", things).startswith("contradicted")


@pytest.mark.parametrize(
    ("question", "sharing"),
    [
        ("What occupation do Dana Reyes and Owen Hale share?", ["Dana Reyes", "Owen Hale"]),
        (
            "What type of firm do Castell Logistics and Norland Foods have in common?",
            ["Castell Logistics", "Norland Foods"],
        ),
        ("Dana Reyes and Owen Hale are both what?", ["Dana Reyes", "Owen Hale"]),
        ("Are Dana Reyes and Owen Hale both chemists?", []),
        ("Which firm, Castell Logistics or Norland Foods, has more plants?", []),
        ("What did Dana Reyes and Owen Hale discuss at the meeting?", []),
    ],
)
def test_shared_value_questions_are_recognised(
    extractor: SpacyEntityExtractor, question: str, sharing: list[str]
) -> None:
    assert shared_by(extractor.parse(question)) == sharing


@pytest.mark.parametrize(
    ("answer", "claims", "verdict"),
    [
        (
            "chemist",
            ["Dana Reyes is a Chilean chemist and author.", "Owen Hale was a chemist."],
            "supported",
        ),
        # named near B, but not said of B
        ("chemist", ["Dana Reyes is a chemist.", "Owen Hale hired a chemist."], "unsupported"),
        # what only one of them is
        (
            "author",
            ["Dana Reyes is a chemist and author.", "Owen Hale was a chemist."],
            "unsupported",
        ),
        ("chemist", ["Dana Reyes is not a chemist.", "Owen Hale was a chemist."], "unsupported"),
    ],
)
def test_a_shared_value_is_said_of_each_name(
    extractor: SpacyEntityExtractor, answer: str, claims: list[str], verdict: str
) -> None:
    result = shared_value(answer, ["Dana Reyes", "Owen Hale"], [extractor.parse(c) for c in claims])
    assert result.verdict == verdict, result.reason


def test_the_age_of_a_things_person_is_that_persons(extractor: SpacyEntityExtractor) -> None:
    claims = [
        "The Lantern is a 1936 film directed by Ada Brook.",
        "Grey Harbour is a 1958 film directed by Owen Hale.",
        "Ada Brook (1901\u20131970) was a British film director.",
        "Owen Hale (1889\u20131968) was an American film director.",
    ]
    question = "Which film has the director who is older, The Lantern or Grey Harbour?"
    assert _check(extractor, question, "Grey Harbour", claims).startswith("supported")
    assert _check(extractor, question, "The Lantern", claims).startswith("contradicted")
    # the films' own dates for the films' age
    question = "Which film is older, The Lantern or Grey Harbour?"
    assert _check(extractor, question, "The Lantern", claims).startswith("supported")
