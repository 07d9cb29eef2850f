"""One parse cache per spaCy pipeline, shared by every query-side reader of it.

The retriever parses the question, the answerer the question again and the evidence
sentences, the answer check and the entailment judge the question and the claims (the
same sentences). With one cache per extractor each text is parsed once, however many
components read it and however many answers cite it.
"""

from __future__ import annotations

import threading
from functools import _lru_cache_wrapper, lru_cache
from typing import Any
from weakref import WeakKeyDictionary

from extractors import SpacyEntityExtractor

__all__ = ["PARSE_CACHE_SIZE", "cached_parser"]

#: parsed texts kept per extractor (questions, evidence sentences and their asides, claims;
#: about 18 KiB each: one question reads a few dozen, so this holds the last ~50 questions)
PARSE_CACHE_SIZE = 2048

_PARSERS: WeakKeyDictionary[SpacyEntityExtractor, _lru_cache_wrapper[Any]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def cached_parser(extractor: SpacyEntityExtractor) -> _lru_cache_wrapper[Any]:
    """``extractor.parse`` behind the extractor's shared LRU cache (thread-safe; the
    ``Doc`` returned is shared, so readers must not change it; ``cache_clear()`` empties
    it)."""
    with _LOCK:
        parse = _PARSERS.get(extractor)
        if parse is None:
            parse = _PARSERS[extractor] = lru_cache(maxsize=PARSE_CACHE_SIZE)(extractor.parse)
        return parse
