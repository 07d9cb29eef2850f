"""Relation extraction against the real spaCy pipeline."""

from __future__ import annotations

import pytest

from extractors import ChunkExtraction, SentenceChunker, SpacyEntityExtractor
from graph import ExtractionError, document_id

DOC = document_id("t", "s", "h")


def _extract(extractor: SpacyEntityExtractor, text: str) -> list[ChunkExtraction]:
    return extractor.extract(SentenceChunker(max_chars=2000).chunk(DOC, text))


def _facts(
    extractions: list[ChunkExtraction], *, cooccurrence: bool = False
) -> set[tuple[str, str, str]]:
    out = set()
    for ext in extractions:
        for rel in ext.relations:
            if (rel.kind == "cooccurrence") == cooccurrence:
                out.add(
                    (ext.mentions[rel.subject].text, rel.predicate, ext.mentions[rel.object].text)
                )
    return out


@pytest.mark.parametrize(
    ("sentence", "fact"),
    [
        ("Paris is the capital of France.", ("Paris", "capital_of", "France")),
        (
            "Barack Obama, the 44th president of the United States, was born in Honolulu.",
            ("Barack Obama", "44th_president_of", "United States"),
        ),
        (
            "Barack Obama, the 44th president of the United States, was born in Honolulu.",
            ("Barack Obama", "born_in", "Honolulu"),
        ),
        ("Marie Curie won the Nobel Prize in 1903.", ("Marie Curie", "win_in", "1903")),
        (
            "The Journal of Mathematical Physics is a journal published by the American "
            "Institute of Physics.",
            ("American Institute of Physics", "publish", "Journal of Mathematical Physics"),
        ),
        (
            "Hamlet was written by William Shakespeare.",
            ("William Shakespeare", "write", "Hamlet"),
        ),
    ],
)
def test_dependency_patterns(
    extractor: SpacyEntityExtractor, sentence: str, fact: tuple[str, str, str]
) -> None:
    assert fact in _facts(_extract(extractor, sentence))


def test_mentions_have_exact_document_offsets(extractor: SpacyEntityExtractor) -> None:
    text = (
        "Intro sentence here. The Louvre in Paris houses the Mona Lisa. "
        "Apple was founded by Steve Jobs."
    )
    extractions = _extract(extractor, text)
    mentions = [m for e in extractions for m in e.mentions]
    assert mentions
    for m in mentions:
        assert text[m.start : m.end] == m.text
        assert not m.text.lower().startswith("the ")
    for ext in extractions:
        for rel in ext.relations:
            sentence = text[rel.sentence_start : rel.sentence_end]
            assert ext.mentions[rel.subject].text in sentence
            assert ext.mentions[rel.object].text in sentence


def test_cooccurrence_is_weighted_by_distance(extractor: SpacyEntityExtractor) -> None:
    text = (
        "Angela Merkel met Emmanuel Macron and, after a very long and tiring day of talks about "
        "many unrelated matters, also Justin Trudeau."
    )
    exts = _extract(extractor, text)
    weights = {
        (exts[0].mentions[r.subject].text, exts[0].mentions[r.object].text): r.confidence
        for r in exts[0].relations
        if r.kind == "cooccurrence"
    }
    near = weights.get(("Emmanuel Macron", "Justin Trudeau")) or weights.get(
        ("Angela Merkel", "Justin Trudeau")
    )
    assert near is not None
    assert all(0.05 <= w <= 0.3 for w in weights.values())
    assert max(weights.values()) > min(weights.values())


def test_no_relations_without_two_entities(extractor: SpacyEntityExtractor) -> None:
    exts = _extract(extractor, "It was raining all day long and nobody went anywhere.")
    assert all(not e.relations for e in exts)


def test_missing_pipeline_is_a_clear_error() -> None:
    with pytest.raises(ExtractionError, match="not installed"):
        SpacyEntityExtractor(pipeline="no_such_pipeline_xx").load()


def test_multi_process_extraction_matches_single_process(
    extractor: SpacyEntityExtractor, sample_records: list[dict[str, str]]
) -> None:
    chunker = SentenceChunker()
    chunks = [
        c
        for i, r in enumerate(sample_records[:12])
        for c in chunker.chunk(document_id("t", str(i), "h"), r["text"])
    ]
    parallel = SpacyEntityExtractor(n_process=2, batch_size=4)
    assert parallel.extract(chunks) == extractor.extract(chunks)


@pytest.mark.parametrize(
    ("text", "about"),
    [
        ("Globex Corporation (NASDAQ: GLBX) today announced a new plant.", ["Globex Corporation"]),
        ("The film Dark River was released in 2017 and stars Ruth Wilson.", ["Dark River"]),
        ("Scott Derrickson (born July 16, 1966) is an American director.", ["Scott Derrickson"]),
        # A heading the parser runs into the first sentence: the sentence after it.
        (
            "Quarterly note, Q3 2024\n\nGlobex and Initech signed a deal in July.",
            ["Globex", "Initech"],
        ),
        # The grammatical subject, not the first name the sentence holds.
        ("In 1994, Tim Burton directed Ed Wood.", ["Tim Burton"]),
        # The opening name written whole, as one mention (as a title would make it).
        ("Ermengarde of Tours (died 20 March 851) was a queen.", ["Ermengarde of Tours"]),
        ("Maurice, Prince of Orange (1567 - 1625) was a prince.", ["Maurice, Prince of Orange"]),
        # A fragment the parser split off: the name it is built on, not the aside.
        ('The Straw Hat (translit. "Solomennaya shlyapka") is a 1974 film.', ["Straw Hat"]),
        # No name as the subject: nothing, rather than a name further on.
        ("We reviewed the supplier contracts of Initech last week.", []),
        ("The board met on Monday to discuss Initech.", []),
        ("2019 was a difficult year for Globex.", []),
        ("La Belle Américaine English: The American Beauty, is a French comedy film.", []),
    ],
)
def test_opening_subjects(extractor: SpacyEntityExtractor, text: str, about: list[str]) -> None:
    (first,) = _extract(extractor, text)
    assert [first.mentions[i].text for i in first.subjects] == about


def test_only_a_document_opening_has_subjects(extractor: SpacyEntityExtractor) -> None:
    text = "Globex opened a plant. " + "Initech hired staff in Ohio. " * 60
    chunks = extractor.extract(SentenceChunker(max_chars=400).chunk(DOC, text))
    assert len(chunks) > 2
    assert [chunks[0].mentions[i].text for i in chunks[0].subjects] == ["Globex"]
    assert all(not c.subjects for c in chunks[1:])
