"""The local embedder: its arithmetic, and span vectors pooled from one forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from extractors import (
    SentenceTransformerEmbedder,
    SpanEmbedder,
    packaged_minilm_path,
    spans_embedded_alone,
)

SENTENCES = [
    "Northwind Traders reported quarterly revenue of 4.2 million dollars.",
    "The board appointed Maria Alvarez as chief financial officer in March.",
    "A fire closed the Leeds warehouse for two weeks.",
]
MEMO = " ".join(SENTENCES)


def _spans(text: str, parts: list[str]) -> list[tuple[int, int]]:
    out = []
    for part in parts:
        start = text.index(part)
        out.append((start, start + len(part)))
    return out


def test_span_vectors_come_from_the_text_pass(embedder: SentenceTransformerEmbedder) -> None:
    """The text's vector is the one :meth:`embed_sync` gives; each sentence's pooled vector
    is nearer its own sentence embedded alone than any other sentence of the text."""
    assert isinstance(embedder, SpanEmbedder)
    other = "Shipping volumes at the Rotterdam port fell by a tenth."
    spans = [_spans(MEMO, SENTENCES), [(0, len(other))]]
    texts, pooled = embedder.embed_with_spans([MEMO, other], spans)
    alone = embedder.embed_sync([MEMO, other])
    assert texts.shape == (2, embedder.dimension)
    assert np.allclose((texts * alone).sum(axis=1), 1.0, atol=1e-3)
    assert [p.shape for p in pooled] == [(3, embedder.dimension), (1, embedder.dimension)]
    for rows in pooled:
        assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    each = embedder.embed_sync(SENTENCES)
    similarity = pooled[0] @ each.T
    assert list(similarity.argmax(axis=1)) == [0, 1, 2]
    # A span covering the whole text is nearly the text's own vector.
    assert float(pooled[1][0] @ texts[1]) > 0.95


def test_span_embedding_is_one_list_of_spans_per_text(
    embedder: SentenceTransformerEmbedder,
) -> None:
    with pytest.raises(ValueError, match="one list of spans per text"):
        embedder.embed_with_spans(["one", "two"], [[(0, 3)]])
    vectors, pooled = embedder.embed_with_spans(["A text without spans."], [[]])
    assert vectors.shape == (1, embedder.dimension)
    assert pooled[0].shape == (0, embedder.dimension)


def test_a_span_cut_off_by_the_input_length_gets_the_text_vector(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """Past the model's 256 tokens nothing was seen: the span falls back to the text."""
    long = "word " * 400 + "Tail sentence here."
    start = long.index("Tail")
    vectors, pooled = embedder.embed_with_spans([long], [[(start, len(long))]])
    assert np.allclose(pooled[0][0], vectors[0])


def test_precision_follows_the_setting() -> None:
    """float32 is plain float32; bfloat16 agrees with it to a cosine of 0.999 or more."""
    path = packaged_minilm_path()
    exact = SentenceTransformerEmbedder(model_path=path, precision="float32")
    half = SentenceTransformerEmbedder(model_path=path, precision="bfloat16")
    assert not exact.bfloat16
    assert half.bfloat16
    a = exact.embed_sync(SENTENCES)
    b = half.embed_sync(SENTENCES)
    assert not np.array_equal(a, b)
    assert float((a * b).sum(axis=1).min()) > 0.999


def test_spans_embedded_alone_are_the_sentences_own_vectors(
    embedder: SentenceTransformerEmbedder,
) -> None:
    """The fallback for embedders without token vectors (a remote server): each span is
    embedded on its own, rows in the order asked."""
    texts, rows = spans_embedded_alone(embedder, [MEMO, "No spans."], [_spans(MEMO, SENTENCES), []])
    each = embedder.embed_sync(SENTENCES)
    assert texts.shape == (2, embedder.dimension)
    assert rows[1].shape == (0, embedder.dimension)
    assert np.allclose((rows[0] * each).sum(axis=1), 1.0, atol=1e-3)


def test_a_span_that_is_its_whole_text_is_embedded_once(
    embedder: SentenceTransformerEmbedder,
) -> None:
    one = "Globex acquired Initech in 2019."
    texts, rows = spans_embedded_alone(embedder, [one, MEMO], [[(0, len(one))], [(0, 10)]])
    assert np.array_equal(rows[0][0], texts[0])
    assert not np.array_equal(rows[1][0], texts[1])
    alone = embedder.embed_sync([MEMO[:10]])[0]
    assert float(rows[1][0] @ alone) > 0.999
