"""The verification benchmark's case builders, on hand-written sentences and the real parser.

Each edit must make the change its kind names and leave a grammatical sentence; faithful
edits must keep who did what to whom; an edit that cannot be made cleanly gives ``None``.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from extractors import SpacyEntityExtractor
from tests.scripts import load

vc = load("verify_cases")


@pytest.fixture(scope="module")
def parse(extractor: SpacyEntityExtractor) -> Any:
    return extractor.parse


# ---------------------------------------------------------------------- verb forms


@pytest.mark.parametrize(
    ("lemma", "past", "present"),
    [
        ("acquire", "acquired", "acquires"),
        ("stop", "stopped", "stops"),
        ("visit", "visited", "visits"),
        ("occur", "occurred", "occurs"),
        ("carry", "carried", "carries"),
        ("play", "played", "plays"),
        ("write", "wrote", "writes"),
        ("win", "won", "wins"),
        ("teach", "taught", "teaches"),
        ("go", "went", "goes"),
        ("have", "had", "has"),
    ],
)
def test_verb_forms(lemma: str, past: str, present: str) -> None:
    assert vc.past_tense(lemma) == past
    assert vc.third_person(lemma) == present


# ---------------------------------------------------------------------- faithful kinds


def test_verbatim_is_the_sentence(parse: Any) -> None:
    text = "Acme acquired Globex in 2024."
    assert vc.verbatim(parse(text)) == text


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        (
            "Lothair II (835-869) was the king of Lotharingia.",
            "Lothair II was the king of Lotharingia.",
        ),
        (
            "Brightline Energy (NYSE: BLE) opened a solar plant (its third) in Nevada.",
            "Brightline Energy opened a solar plant in Nevada.",
        ),
        ("Raleigh receives 6.0 inches (15.2 cm) of snow.", "Raleigh receives 6.0 inches of snow."),
    ],
)
def test_parenthesis_dropped(parse: Any, sentence: str, claim: str) -> None:
    assert vc.parenthesis_dropped(parse(sentence)) == claim


def test_no_parenthesis_no_case(parse: Any) -> None:
    assert vc.parenthesis_dropped(parse("Acme acquired Globex in 2024.")) is None


@pytest.mark.parametrize(
    ("sentence", "claim", "subject", "obj"),
    [
        ("Globex was acquired by Acme in 2024.", "Acme acquired Globex in 2024.", "Acme", "Globex"),
        (
            "The novel was written by Helena Marsh during a winter in Lisbon.",
            "Helena Marsh wrote the novel during a winter in Lisbon.",
            "Marsh",
            "novel",
        ),
        (
            "In 1990, the bridge was designed by the engineer Thomas Telford.",
            "In 1990, the engineer Thomas Telford designed the bridge.",
            "Telford",
            "bridge",
        ),
        (
            "The company is owned by the Smith family.",
            "The Smith family owns the company.",
            "family",
            "company",
        ),
        (
            "The stores are run by franchisees.",
            "Franchisees run the stores.",
            "Franchisees",
            "stores",
        ),
        ("It was founded by him in 1921.", "He founded it in 1921.", "He", "it"),
        (
            "The peseta was replaced by the euro in 2002.",
            "The euro replaced the peseta in 2002.",
            "euro",
            "peseta",
        ),
    ],
)
def test_passive_to_active_keeps_who_did_what(
    parse: Any, sentence: str, claim: str, subject: str, obj: str
) -> None:
    out = vc.passive_to_active(parse(sentence))
    assert out == claim
    # The parse of the active sentence has the agent in its subject, the patient in its object.
    root = parse(out)[:].root
    (nsubj,) = [k for k in root.children if k.dep_ == "nsubj"]
    (dobj,) = [k for k in root.children if k.dep_ == "dobj"]
    assert subject in {t.text for t in nsubj.subtree}
    assert obj in {t.text for t in dobj.subtree}


@pytest.mark.parametrize(
    "sentence",
    [
        "Acme acquired Globex in 2024.",  # already active
        "Globex was acquired in 2024.",  # no agent
        "Globex has been acquired by Acme.",  # an auxiliary besides "be"
        "Globex was not acquired by Acme.",  # negated
        "The journal covers research that is published by the society.",  # relative pronoun
        "It was designed by Benson and Forsyth, and built in 1980.",  # a second verb
        "The album was produced by Ali Malik, DJ Daryl and Rick Rock.",  # an agent list
        "Globex, which is based in Ohio, was acquired by Acme.",  # subject with a clause
        "The single was followed up by the album in 1990.",  # a particle
        "Gothenburg is served by Landvetter Airport 25 km southeast of the city.",  # runs on
        "The stores, whose owner was Smith, were sold by the bank.",  # a wh-word
        'He said that "the deal was approved by the board in May."',  # inside a quote
    ],
)
def test_passive_to_active_leaves_what_it_cannot_rewrite(parse: Any, sentence: str) -> None:
    assert vc.passive_to_active(parse(sentence)) is None


# ---------------------------------------------------------------------- polarity


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        ("Acme acquired Globex in 2024.", "Acme did not acquire Globex in 2024."),
        ("The company owns the building.", "The company does not own the building."),
        ("The stores sell coal.", "The stores do not sell coal."),
        (
            "The river is navigable as far as Vienna.",
            "The river is not navigable as far as Vienna.",
        ),
        ("Smith has written three novels.", "Smith has not written three novels."),
        ("Acme will acquire Globex.", "Acme will not acquire Globex."),
        ("The bridge can carry trucks.", "The bridge cannot carry trucks."),
        ("Globex was acquired by Acme.", "Globex was not acquired by Acme."),
    ],
)
def test_negation_added(parse: Any, sentence: str, claim: str) -> None:
    assert vc.negation_added(parse(sentence)) == claim


@pytest.mark.parametrize(
    "sentence",
    [
        "Acme did not acquire Globex.",  # already negative
        "Nobody saw the comet.",
        "Founded in 1990 and based in Ohio.",  # no finite verb
    ],
)
def test_negation_added_skips(parse: Any, sentence: str) -> None:
    assert vc.negation_added(parse(sentence)) is None


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        ("Acme did not acquire Globex in 2024.", "Acme acquired Globex in 2024."),
        ("The company doesn't own the building.", "The company owns the building."),
        ("The stores do not sell coal.", "The stores sell coal."),
        ("Acme will not acquire Globex.", "Acme will acquire Globex."),
        ("He wasn't present at the hearing.", "He was present at the hearing."),
        ("It can't be sold.", "It can be sold."),
        ("It won't be sold.", "It will be sold."),
        ("She never married.", "She married."),
        (
            "The ferry no longer runs to Oban.",
            "The ferry runs to Oban.",
        ),
        ("The expedition did not find the wreck.", "The expedition found the wreck."),
    ],
)
def test_negation_removed(parse: Any, sentence: str, claim: str) -> None:
    assert vc.negation_removed(parse(sentence)) == claim


@pytest.mark.parametrize(
    "sentence",
    [
        "Acme acquired Globex.",  # nothing to remove
        "Acme did not buy Globex and never sold Initech.",  # two negations
        "It is not only cheap but fast.",  # "not only" denies nothing
    ],
)
def test_negation_removed_skips(parse: Any, sentence: str) -> None:
    assert vc.negation_removed(parse(sentence)) is None


# ---------------------------------------------------------------------- names and years


def test_names_swapped_swaps_roles(parse: Any) -> None:
    out = vc.names_swapped(parse("John Smith defeated Tom Jones in the 1990 election."))
    assert out == "Tom Jones defeated John Smith in the 1990 election."


@pytest.mark.parametrize(
    "sentence",
    [
        "The band toured France, Germany and Italy in 1990.",  # one coordination
        "The lake is home to the Walleye, Smallmouth bass and Largemouth bass.",  # a list
        "Area code 575 is an area code in the U.S. state of New Mexico.",  # one phrase
        "Smith married Jones in Paris in 1990.",  # a symmetric verb
        "The treaty between France and Spain was signed in 1659.",  # "between"
        "Acme acquired Globex in 2024.",  # different types or one name
    ],
)
def test_names_swapped_skips_what_would_keep_the_meaning(parse: Any, sentence: str) -> None:
    assert vc.names_swapped(parse(sentence)) is None


def test_a_name_used_as_a_modifier_is_not_swapped(parse: Any) -> None:
    out = vc.names_swapped(parse("Reed City is a city in the U.S. state of Michigan."))
    assert out == "Michigan is a city in the U.S. state of Reed City."


def test_year_changed_shifts_a_year(parse: Any) -> None:
    sentence = "The cathedral was consecrated in 1248 after decades of building."
    out = vc.year_changed(parse(sentence), random.Random(3))
    assert out is not None
    assert out != sentence
    (year,) = [w for w in out.split() if w.isdigit()]
    assert year != "1248"
    assert out.replace(year, "1248") == sentence


def test_year_changed_needs_a_year(parse: Any) -> None:
    assert vc.year_changed(parse("The council met on Tuesday."), random.Random(0)) is None


def test_name_replaced_takes_a_name_of_the_same_type_absent_from_the_document(
    parse: Any,
) -> None:
    document = "John Smith was elected mayor of Dunmore. Maria Lopez ran second."
    pool = {"PERSON": ["Maria Lopez", "Ken Adams"], "GPE": ["Oslo"]}
    out = vc.name_replaced(parse("John Smith was elected mayor of Dunmore."), pool, document,
                           random.Random(0))  # fmt: skip
    assert out in {
        "Ken Adams was elected mayor of Dunmore.",
        "John Smith was elected mayor of Oslo.",
    }


def test_name_replaced_fixes_the_article(parse: Any) -> None:
    sentence = "She was an American director."
    pool = {"NORP": ["German"]}
    # Demonyms are not replaced (their labels are too noisy to trust).
    assert vc.name_replaced(parse(sentence), pool, sentence, random.Random(0)) is None
    out = vc.names_swapped(parse("An American director met a German actor in Rome."))
    assert out is None  # "met" is symmetric


# ---------------------------------------------------------------------- directions


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        ("Revenue rose 5 percent in 2019.", "Revenue fell 5 percent in 2019."),
        ("Exports increased by 12 percent.", "Exports decreased by 12 percent."),
        ("The bridge was completed before the war.", "The bridge was completed after the war."),
        (
            "More passengers flew with Kestrel in 2022 than in 2021.",
            "Fewer passengers flew with Kestrel in 2022 than in 2021.",
        ),
        ("Rents are higher in the capital.", "Rents are lower in the capital."),
        (
            "An earlier version of the song was recorded in London.",
            "A later version of the song was recorded in London.",
        ),
        ("She is the oldest of four sisters.", "She is the youngest of four sisters."),
        ("Faraday was the first to note it.", "Faraday was the last to note it."),
        ("The Liberals won the seat.", "The Liberals lost the seat."),
    ],
)
def test_direction_flipped(parse: Any, sentence: str, claim: str) -> None:
    assert vc.direction_flipped(parse(sentence)) == claim


@pytest.mark.parametrize(
    "sentence",
    [
        "The school was named after George Washington.",  # "after" that is not time
        "He fought in the First World War.",  # part of a name
        "The company grew up around the port.",  # "grew up"
    ],
)
def test_direction_flipped_skips(parse: Any, sentence: str) -> None:
    assert vc.direction_flipped(parse(sentence)) is None


# ---------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        (
            "If the board approves the budget, the expansion will begin in May.",
            "The expansion will begin in May.",
        ),
        ("Unless the strike ends by Friday, the port will close.", "The port will close."),
        ("The treaty takes effect only if all six states ratify it.", "The treaty takes effect."),
        ("The bonus will be paid provided that the targets are met.", "The bonus will be paid."),
        ("The charger may shut down if the load is too high.", "The charger may shut down."),
        (
            "Antarctica, which, if melted, would raise the seas, is large.",
            "Antarctica, which would raise the seas, is large.",
        ),
    ],
)
def test_condition_dropped(parse: Any, sentence: str, claim: str) -> None:
    assert vc.condition_dropped(parse(sentence)) == claim


@pytest.mark.parametrize(
    "sentence",
    [
        "He asked if the shop was open.",  # an indirect question
        "It is not known if the film survives.",
        "Even if it rains, the match will go ahead.",  # concessive
        "Tornadoes are very uncommon in the summer unless a tropical.",  # no clause
        "He starred in the film series If You Are the One in 2008.",  # a title
        "It is known as Martin (as if named after the saint) in the village.",
        "Acme acquired Globex in 2024.",
    ],
)
def test_condition_dropped_skips(parse: Any, sentence: str) -> None:
    assert vc.condition_dropped(parse(sentence)) is None


# ---------------------------------------------------------------------- building cases

DOCS = [
    ("d1", "Globex was acquired by Acme in 2024. Acme did not buy Initech in 2019."),
    (
        "d2",
        "John Smith defeated Tom Jones in the 1990 election. "
        "Turnout in the district rose sharply that year.",
    ),
    ("d3", "If the board approves the budget, the expansion will begin in May 2025."),
    ("d4", "Lothair II (835-869) was the king of Lotharingia. He died in Piacenza."),
    ("d5", "Maria Lopez founded the Dunmore Gazette in 1921. Maria Lopez sold it in 1950."),
]


def test_build_cases_cite_their_sentence_and_cover_every_kind(parse: Any) -> None:
    docs = [vc.SentenceSource(source=s, text=t) for s, t in DOCS]
    cases = vc.build_cases(docs, parse, per_kind=3, seed=1)
    by_source = dict(DOCS)
    for case in cases:
        assert by_source[case.source][case.start : case.end] == case.sentence
        assert case.faithful == (case.kind in vc.FAITHFUL)
        assert (case.claim == " ".join(case.sentence.split())) == (case.kind == "verbatim")
        line = case.request()
        (claim,) = line["claims"]
        assert claim["citations"] == [{"source": case.source, "start": case.start, "end": case.end}]
    kinds = {c.kind for c in cases}
    assert kinds == set(vc.KINDS) - {"name_replaced"} | ({"name_replaced"} & kinds)
    assert len({c.id for c in cases}) == len(cases)
    # One case of a kind per document, at most per_kind of each.
    for kind in kinds:
        of = [c for c in cases if c.kind == kind]
        assert len(of) <= 3
        assert len({c.source for c in of}) == len(of)


def test_one_long_document_gives_many_cases_of_a_kind(parse: Any) -> None:
    text = " ".join(
        f"The mill at {place} was built by {who} in {year}."
        for place, who, year in [
            ("Kirkby", "the Pell family", 1801),
            ("Oxley", "Thomas Arden", 1822),
            ("Hale", "the parish council", 1840),
            ("Brook", "Agnes Wray", 1856),
        ]
    )
    cases = vc.build_cases([vc.SentenceSource(source="book", text=text)], parse, per_kind=3)
    active = [c for c in cases if c.kind == "passive_to_active"]
    assert len(active) == 3
    assert len({c.start for c in active}) == 3
    for case in active:
        assert text[case.start : case.end] == case.sentence
        assert " built the mill at " in case.claim


def test_a_sentence_wrapped_over_lines_is_cited_as_it_stands(parse: Any) -> None:
    text = "Scrooge locked the door of the\ncounting-house and went home.\n\nIt was late."
    cases = vc.build_cases([vc.SentenceSource(source="book", text=text)], parse, per_kind=1)
    (case,) = [c for c in cases if c.kind == "verbatim"]
    assert text[case.start : case.end] == case.sentence
    assert "\n" in case.sentence
    assert case.claim == "Scrooge locked the door of the counting-house and went home."


@pytest.mark.parametrize(
    "text",
    [
        "He thought, if this man could be raised up now, what would he say?",
        "Nothing is past hope, if such a miracle has happened.'",
        "And Valentine,' said Scrooge, 'and his wild brother, Orson; there they go.",
        "Founded in 1990 the company grew quickly",
    ],
)
def test_questions_dialogue_and_fragments_are_not_claims(parse: Any, text: str) -> None:
    cases = vc.build_cases([vc.SentenceSource(source="book", text=text)], parse, per_kind=1)
    assert cases == []


def test_build_cases_is_reproducible(parse: Any) -> None:
    docs = [vc.SentenceSource(source=s, text=t) for s, t in DOCS]
    first = vc.build_cases(docs, parse, per_kind=2, seed=7)
    again = vc.build_cases(docs, parse, per_kind=2, seed=7)
    assert first == again
