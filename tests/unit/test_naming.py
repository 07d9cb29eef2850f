"""How a claim names the question's names, on hand-written sentences with the real spaCy
pipeline: initials and fuller names, names the parser cut short or typed otherwise, a
life written as a range, and a pronoun that can stand for one person only.
"""

from __future__ import annotations

import pytest

from agents.naming import coreferent, life_events, names
from extractors import SpacyEntityExtractor


@pytest.mark.parametrize(
    ("sentence", "name", "named"),
    [
        ("Marta Karin Lindqvist is a Swedish architect.", "Marta K. Lindqvist", True),
        ("Marta Elin Lindqvist is a Swedish architect.", "Marta K. Lindqvist", False),
        ("Marta Karin Lindqvist is a Swedish architect.", "Marta Lindqvist", True),
        ("Herl Iván Ovando Martínez was a Honduran journalist.", "Herl Ovando", True),
        ("Herl Iván Martínez was a journalist, like Ovando.", "Herl Ovando", False),
        ("M. Lindqvist designed the hall.", "Marta Lindqvist", False),
    ],
)
def test_a_name_with_initials_or_left_out_words(
    extractor: SpacyEntityExtractor, sentence: str, name: str, named: bool
) -> None:
    assert names(extractor.parse(sentence), name) is named


def test_a_life_range_gives_the_places_of_birth_and_death(
    extractor: SpacyEntityExtractor,
) -> None:
    doc = extractor.parse(
        "Oskar Brenner (4 March 1888 in Graz \u2013 9 May 1950 in Vienna) was an engineer."
    )
    assert life_events("Graz", [doc]) >= {"bear", "born"}
    assert "die" not in life_events("Graz", [doc])
    assert life_events("Vienna", [doc]) >= {"die", "death"}
    moved = extractor.parse("Oskar Brenner (born 1888) moved to Graz in 1920.")
    assert life_events("Graz", [moved]) == set()


def test_a_pronoun_stands_for_the_only_person_of_its_document(
    extractor: SpacyEntityExtractor,
) -> None:
    named = extractor.parse("Karl Rosen (1884 \u2013 1965) was a German chemist.")
    born = extractor.parse("He was born in Berlin and died in Kiel.")
    other = extractor.parse("Karl Rosen worked with Anna Berg for ten years.")
    assert coreferent("Karl Rosen", [named, born], [born], [{"d1"}, {"d1"}])
    # another document names him: the pronoun is not his
    assert not coreferent("Karl Rosen", [named, born], [born], [{"d1"}, {"d2"}])
    # the document names someone else too: the pronoun may be theirs
    assert not coreferent("Karl Rosen", [other, born], [born], [{"d1"}, {"d1"}])
    # the pronoun does not open the claim
    later = extractor.parse("In 1920 the prize went to him in Berlin.")
    assert not coreferent("Karl Rosen", [named, later], [later], [{"d1"}, {"d1"}])
