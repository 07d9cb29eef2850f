from __future__ import annotations

from itertools import pairwise

import pytest

from extractors import SentenceChunker, split_sentences
from graph import document_id

DOC = document_id("t", "s", "h")
TEXT = (
    "Dr. Smith went to Washington on Jan. 5. He met J. R. R. Tolkien there! "
    'Then "Who?" he asked.\n\nA new paragraph starts. The U.S. Army left in 1945.  '
    "Short one. " + "A very long sentence without any end " * 20 + "finally ends."
)


def test_sentences_keep_exact_offsets_and_skip_abbreviations() -> None:
    spans = list(split_sentences(TEXT))
    sentences = [TEXT[s:e] for s, e in spans]
    assert sentences[0] == "Dr. Smith went to Washington on Jan. 5."
    assert sentences[1] == "He met J. R. R. Tolkien there!"
    assert sentences[2] == 'Then "Who?" he asked.'
    assert sentences[3] == "A new paragraph starts."
    assert sentences[4] == "The U.S. Army left in 1945."
    assert all(not s[0].isspace() and not s[-1].isspace() for s in sentences)


@pytest.mark.parametrize("max_chars", [60, 120, 400, 5000])
def test_chunks_index_the_text_exactly(max_chars: int) -> None:
    chunks = SentenceChunker(max_chars=max_chars).chunk(DOC, TEXT)
    assert chunks, "no chunks"
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert TEXT[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= max_chars
    # Without overlap, chunks are in order and never overlap.
    assert all(a.end <= b.start for a, b in pairwise(chunks))
    # Every non-space character is covered by some chunk.
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(TEXT) if not ch.isspace())


def test_whole_sentences_stay_together() -> None:
    chunks = SentenceChunker(max_chars=80).chunk(DOC, TEXT)
    assert (
        chunks[0].text == "Dr. Smith went to Washington on Jan. 5. He met J. R. R. Tolkien there!"
    )
    assert chunks[1].text.startswith('Then "Who?" he asked.')


def test_overlap_repeats_the_previous_sentence() -> None:
    text = "One is here. Two is here. Three is here. Four is here. Five is here."
    chunks = SentenceChunker(max_chars=50, overlap=1).chunk(DOC, text)
    assert len(chunks) >= 2
    for prev, nxt in pairwise(chunks):
        last_sentence = prev.text.split(". ")[-1]
        assert nxt.text.startswith(last_sentence.rstrip("."))
        assert text[nxt.start : nxt.end] == nxt.text


def test_chunk_ids_are_stable() -> None:
    a = SentenceChunker(max_chars=100).chunk(DOC, TEXT)
    b = SentenceChunker(max_chars=100).chunk(DOC, TEXT)
    assert [c.id for c in a] == [c.id for c in b]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        SentenceChunker(max_chars=10)
    with pytest.raises(ValueError, match="overlap"):
        SentenceChunker(overlap=-1)


def test_a_long_sentence_is_never_cut_inside_an_identifier() -> None:
    card = "4539 1488 0343 6467"
    for pad in range(0, 60, 3):
        text = "Refund " + "the fee " * pad + f"to card {card} and " + "tell the desk " * 12
        chunks = SentenceChunker(max_chars=120).chunk(DOC, text)
        assert len(chunks) > 1
        assert any(card in c.text for c in chunks), pad
        for c in chunks:
            assert text[c.start : c.end] == c.text
