from __future__ import annotations

from extractors.sparse import Bm25Encoder, tokenize


def test_tokenize_folds_case_accents_plurals_and_stopwords() -> None:
    assert tokenize("The Cafés of Zürich's cities") == ["cafe", "zurich", "city"]
    assert tokenize("Lothair II's mother") == ["lothair", "ii", "mother"]


def test_document_weights_saturate_and_queries_are_binary() -> None:
    bm25 = Bm25Encoder()
    once = bm25.encode_document("engine")
    many = bm25.encode_document("engine " * 10)
    assert once.indices == many.indices
    assert many.values[0] > once.values[0]
    assert many.values[0] < bm25.k1 + 1  # saturation bound
    query = bm25.encode_query("engine engine Babbage")
    assert len(query.indices) == 2
    assert set(query.values) == {1.0}
    assert list(query.indices) == sorted(query.indices)
