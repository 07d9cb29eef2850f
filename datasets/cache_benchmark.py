"""Repeated-question workload: what the answer and query-embedding caches save.

Usage::

    .venv/bin/python datasets/cache_benchmark.py datasets/golden --rounds 5
    .venv/bin/python datasets/cache_benchmark.py datasets/golden --rounds 3 --questions 3 --llm

Indexes the golden set's corpus into a fresh data dir, then asks its questions
``--rounds`` times over (round-robin, as a dashboard refreshing or several analysts
asking the same things would), once with the caches off and once with them on, and
prints one JSON object: per run the latency percentiles of every ask, of the first round
and of the repeats, the hit rates, and (with ``--llm``: the local llama.cpp server
writes the answers and judges the claims) the model tokens spent and saved, from the
usage ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import Settings, Threadline  # noqa: E402 - the path is set up first
from engine.bench import load_questions  # noqa: E402
from engine.settings import CacheSettings, ModelSettings  # noqa: E402
from graph import Access  # noqa: E402


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)

    return {"p50": at(0.5), "p95": at(0.95), "mean": round(sum(ordered) / len(ordered), 2)}


async def run(
    golden: Path, data_dir: Path, *, rounds: int, limit: int, cached: bool, base_url: str | None
) -> dict[str, Any]:
    questions = [q.question for q in load_questions(golden / "questions.jsonl")[:limit]]
    model = ModelSettings(base_url=base_url, timeout_s=600) if base_url else ModelSettings()
    settings = Settings(data_dir=data_dir, model=model, cache=CacheSettings(answers=cached))
    access = Access(tenant="bench")
    async with await Threadline.open(settings) as tl:
        await tl.ingest(tl.read([golden / "corpus.jsonl"]), tenant="bench")
        await tl.retrieve("warm up the models", access)
        first: list[float] = []
        repeats: list[float] = []
        started = time.perf_counter()
        for round_ in range(rounds):
            for question in questions:
                began = time.perf_counter()
                await tl.ask(question, access, llm=base_url is not None)
                (first if round_ == 0 else repeats).append((time.perf_counter() - began) * 1000)
        wall = time.perf_counter() - started
        assert tl.usage is not None
        rows = await tl.usage.report(by=["tenant"], tenant="bench")
        caches = {name: round(stats.hit_rate, 3) for name, stats in tl.caches.items()}
    spent = rows[0] if rows else None
    return {
        "answer_cache": cached,
        "asks": len(first) + len(repeats),
        "seconds": round(wall, 2),
        "latency_ms": _percentiles(first + repeats),
        "first_round_ms": _percentiles(first),
        "repeat_ms": _percentiles(repeats),
        "hit_rate": caches,
        "tokens_spent": spent.total_tokens if spent else 0,
        "model_calls": spent.calls if spent else 0,
        "tokens_saved": spent.saved_tokens if spent else 0,
        "cache_hits": spent.cache_hits if spent else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("golden", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--llm", action="store_true", help="model answers (local llama.cpp)")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="threadline-cache-") as tmp:
        server = None
        if args.llm:
            from engine.local_model import LocalModelServer  # noqa: PLC0415

            server = LocalModelServer(parallel=2)
            server.start()
        try:
            base_url = server.base_url if server else None
            for cached in (False, True):
                data_dir = Path(tmp) / ("on" if cached else "off")
                runs.append(
                    asyncio.run(
                        run(
                            args.golden,
                            data_dir,
                            rounds=args.rounds,
                            limit=args.questions,
                            cached=cached,
                            base_url=base_url,
                        )
                    )
                )
        finally:
            if server is not None:
                server.stop()
    print(
        json.dumps(
            {
                "golden": str(args.golden),
                "rounds": args.rounds,
                "questions": args.questions,
                "llm": args.llm,
                "runs": runs,
                "machine": f"{platform.machine()}, {platform.python_implementation()} "
                f"{platform.python_version()}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
