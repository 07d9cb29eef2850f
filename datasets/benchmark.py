"""Benchmark harness: indexing throughput and peak memory on a shared-format corpus.

Usage::

    .venv/bin/python datasets/benchmark.py index ../shared/datasets/musique/corpus.jsonl

It indexes the whole corpus into a fresh data dir (a temporary one unless ``--data-dir``
is given) with the embedded default stores and prints one JSON object: passages, words,
seconds, passages/s, words/s, peak resident memory, and the resulting store counts.
Retrieval and answer-quality numbers join this harness with the question-answering work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Settings, Threadline  # noqa: E402 - the path is set up first

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loaders import load_corpus  # noqa: E402


async def index(corpus: Path, data_dir: Path) -> dict[str, object]:
    passages = load_corpus(corpus)
    words = sum(len(p.text.split()) for p in passages)
    async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
        sources = tl.read([corpus])
        started = time.perf_counter()
        report = await tl.ingest(sources)
        seconds = time.perf_counter() - started
        stats = await tl.stats()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "corpus": str(corpus),
        "passages": len(passages),
        "words": words,
        "seconds": round(seconds, 1),
        "passages_per_s": round(len(passages) / seconds, 1),
        "words_per_s": round(words / seconds),
        "peak_rss_mib": round(peak_kib / 1024),
        "added": report.added,
        "stats": stats.model_dump(),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a corpus.jsonl and report throughput")
    idx.add_argument("corpus", type=Path)
    idx.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        result = asyncio.run(index(args.corpus, data_dir))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
