"""What the ingest-time privacy checks cost and flag on a corpus.

Each corpus is chunked as ingest chunks it (whole sentences, 1,200 characters); then, per
chunk and timed separately: the personal-data detector (Presidio on the spaCy tokenizer,
behind the candidate test that skips text with nothing to find) and the injection rules.
Reports chunks, chunks the detector scanned, seconds and milliseconds per chunk for each
check, personal-data tags per type, and the chunks flagged as text aimed at a model (on
corpora with no injections, every flag is a false positive).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from loaders import load_corpus

from extractors import PiiDetector, SentenceChunker, find_injections

__all__ = ["privacy_scan"]


def privacy_scan(corpus: Path, chunk_chars: int = 1200) -> dict[str, object]:
    """The privacy checks' cost and findings on one ``corpus.jsonl``."""
    chunker = SentenceChunker(max_chars=chunk_chars)
    texts = [
        c.text
        for i, passage in enumerate(load_corpus(corpus))
        for c in chunker.chunk(f"doc_{i}", passage.text)
    ]
    detector = PiiDetector()
    detector.find("loaded@example.com")  # Presidio's load is not part of the per-chunk cost
    started = time.perf_counter()
    tags = [detector.find(text) for text in texts]
    pii_s = time.perf_counter() - started
    started = time.perf_counter()
    flags = [find_injections(text) for text in texts]
    injection_s = time.perf_counter() - started
    flagged = sum(1 for found in flags if found)
    return {
        "corpus": str(corpus),
        "chunks": len(texts),
        "pii": {
            "scanned_chunks": sum(1 for text in texts if detector.scans(text)),
            "seconds": round(pii_s, 2),
            "ms_per_chunk": round(1000 * pii_s / max(1, len(texts)), 3),
            "tags": dict(Counter(t.type for found in tags for t in found).most_common()),
            "chunks_with_pii": sum(1 for found in tags if found),
        },
        "injection": {
            "seconds": round(injection_s, 2),
            "ms_per_chunk": round(1000 * injection_s / max(1, len(texts)), 3),
            "flagged_chunks": flagged,
            "flagged_share": round(flagged / max(1, len(texts)), 4),
            "rules": dict(Counter(t.type for found in flags for t in found).most_common()),
        },
    }
