"""Benchmark harness: indexing throughput and peak memory on a shared-format corpus.

Usage::

    .venv/bin/python datasets/benchmark.py index ../shared/datasets/musique/corpus.jsonl
    .venv/bin/python datasets/benchmark.py graph ../shared/datasets/musique --data-dir DIR

``index`` indexes the whole corpus into a fresh data dir (a temporary one unless
``--data-dir`` is given) with the embedded default stores and prints one JSON object:
passages, words, seconds, passages/s, words/s, peak resident memory, and store counts.

``graph`` compares graph stores on a data dir that ``threadline bench`` already indexed:
it bulk-loads the embedded graph into the Neo4j server named by ``THREADLINE_GRAPH__*``
(``threadline migrate``; entities/s, mentions/s and facts/s), then runs the dataset's
questions through the same retrieval with each store and reports latency and recall.
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


async def graph_stores(dataset_dir: Path, data_dir: Path, limit: int | None) -> dict[str, object]:
    from engine.bench import run_bench  # noqa: PLC0415
    from engine.migrate import migrate  # noqa: PLC0415
    from engine.threadline import open_graph_store  # noqa: PLC0415

    base = Settings(data_dir=data_dir)
    source = await open_graph_store(base, "networkx")
    target = await open_graph_store(base, "neo4j")
    try:
        report = await migrate(source, target, batch_documents=100)
    finally:
        await source.close()
        await target.close()
    stats = report.target
    full = report.copied == report.documents
    load = {
        "documents": report.documents,
        "copied": report.copied,
        "seconds": round(report.seconds, 1),
        # Rates only mean something when this run loaded the whole graph.
        "entities_per_s": round(stats.entities / report.seconds) if full else None,
        "mentions_per_s": round(stats.mentions / report.seconds) if full else None,
        "facts_per_s": round(stats.relations / report.seconds) if full else None,
        "stats": stats.model_dump(),
        "facts_checked": report.facts_checked,
    }
    retrieval: dict[str, object] = {}
    for backend in ("networkx", "neo4j"):
        graph = base.graph.model_copy(update={"backend": backend})
        settings = base.model_copy(update={"graph": graph})
        async with await Threadline.open(settings) as tl:
            with tempfile.TemporaryDirectory() as tmp:
                result = await run_bench(
                    tl, dataset_dir, limit=limit, per_question=Path(tmp) / "q.jsonl"
                )
        retrieval[backend] = {
            "recall": result["recall"]["threadline"],
            "latency_ms": result["latency_ms"]["threadline"],
        }
    return {"dataset": dataset_dir.name, "bulk_load": load, "retrieval": retrieval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a corpus.jsonl and report throughput")
    idx.add_argument("corpus", type=Path)
    idx.add_argument("--data-dir", type=Path, default=None)
    cmp = sub.add_parser("graph", help="bulk-load into Neo4j and compare retrieval per store")
    cmp.add_argument("dataset", type=Path)
    cmp.add_argument("--data-dir", type=Path, required=True)
    cmp.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if args.command == "graph":
        print(
            json.dumps(asyncio.run(graph_stores(args.dataset, args.data_dir, args.limit)), indent=2)
        )
        return
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        result = asyncio.run(index(args.corpus, data_dir))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
