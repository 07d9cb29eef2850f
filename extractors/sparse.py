"""BM25 sparse vectors: term weights computed here, IDF applied by the vector index.

Documents get BM25-saturated term frequencies; queries get one weight per distinct term.
The index multiplies by IDF (Qdrant's ``Modifier.IDF``), so the dot product is the BM25
score. The index keeps one partition per tenant, so that IDF is computed over the tenant's
own documents; nothing here depends on any corpus (``avg_len`` is a constant), so no other
tenant's data can move a tenant's scores. Terms are hashed to stable 31-bit indices, so no
vocabulary has to be stored.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter

from graph import SparseVector

__all__ = ["Bm25Encoder", "tokenize"]

_WORD = re.compile(r"[\w][\w'\-]*", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have he her "
    "his how i if in into is it its itself me my no nor not of on or our she so some such "
    "than that the their them then there these they this those to too us was we were what "
    "when where which while who whom whose why will with would you your".split()
)


def _stem(token: str) -> str:
    """A light English suffix strip: plurals and possessives only (safe for names)."""
    if token.endswith("'s"):
        token = token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded, stop-word-free, lightly stemmed word tokens."""
    folded = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return [
        _stem(t.strip("'-")) for t in _WORD.findall(folded) if t not in _STOPWORDS and t.strip("'-")
    ]


def _index(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


class Bm25Encoder:
    """Encodes texts as BM25 sparse vectors (``k1``, ``b``; ``avg_len`` in tokens)."""

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0) -> None:
        self.k1 = k1
        self.b = b
        self.avg_len = avg_len

    def encode_document(self, text: str) -> SparseVector:
        """Saturated term frequencies of a chunk."""
        tokens = tokenize(text)
        counts = Counter(_index(t) for t in tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
        items = sorted((i, tf * (self.k1 + 1) / (tf + norm)) for i, tf in counts.items())
        return SparseVector(indices=tuple(i for i, _ in items), values=tuple(v for _, v in items))

    def encode_query(self, text: str) -> SparseVector:
        """One unit weight per distinct query term."""
        indices = sorted({_index(t) for t in tokenize(text)})
        return SparseVector(indices=tuple(indices), values=tuple(1.0 for _ in indices))
