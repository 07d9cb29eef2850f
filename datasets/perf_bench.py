"""The performance gate: ``datasets/benchmark.py perf`` prints one JSON object.

Each measurement runs in a process of its own, one after the other, so peak memory is
that run's alone and no two runs share the CPU:

1. indexing (``benchmark.py index``) of each ``--index`` corpus into a fresh data dir:
   passages/s, CPU seconds, and the ratio of the ingest time to the embedding floor (every
   chunk embedded with the default embedder and nothing else, same process, same run);
2. ``threadline bench`` on each ``--latency`` dataset, all three modes: p50 and p95 of
   planned retrieval (``threadline``) as ratios to the dense baseline's in the same run,
   Recall@2/@5 per mode, and the run's peak resident memory (index plus three modes: the
   ``--memory`` dataset's data dir is fresh, so its peak includes indexing);
3. the HTTP API under load (``benchmark.py api``) on the ``--memory`` dataset's data dir:
   requests/s, errors, and the server's CPU milliseconds per ``/v1/ask``.

``targets`` says for each target of the issue the value, the limit and whether it is met.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["perf"]

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = Path(__file__).resolve().parent / "benchmark.py"


def perf(
    datasets: Path,
    work: Path,
    *,
    index_sets: list[str],
    latency_sets: list[str],
    memory_set: str,
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """Run the gate's measurements under ``work`` (data dirs are kept for a re-run)."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": _machine(), "commit": _commit()}
    out["index"] = {name: _index(datasets / name, work / f"index-{name}") for name in index_sets}
    latency: dict[str, Any] = {}
    for name in dict.fromkeys([memory_set, *latency_sets]):
        # The memory run indexes from scratch; the others reuse an index if one was made.
        fresh = name == memory_set
        data_dir = work / f"bench-{name}"
        if not fresh and (work / f"index-{name}").exists() and not data_dir.exists():
            data_dir = work / f"index-{name}"
        latency[name] = _bench(datasets / name, data_dir, fresh=fresh)
    out["latency"] = latency
    out["memory"] = {"dataset": memory_set, "peak_rss_mib": latency[memory_set]["peak_rss_mib"]}
    api_dir = work / f"bench-{memory_set}"
    out["api"] = _api(datasets / memory_set, api_dir, clients, seconds) if clients else None
    out["targets"] = _targets(out, latency_sets)
    return out


def _run(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own scripts
        command, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _index(dataset: Path, data_dir: Path) -> dict[str, Any]:
    if data_dir.exists():
        raise SystemExit(f"{data_dir} exists; the gate indexes into a fresh data dir")
    got = _run(
        [sys.executable, str(BENCHMARK), "index", str(dataset / "corpus.jsonl"), "--data-dir",
         str(data_dir)]
    )  # fmt: skip
    keep = (
        "passages", "seconds", "passages_per_s", "cpu_s", "floor_seconds",
        "floor_passages_per_s", "ratio_to_floor", "peak_rss_mib",
    )  # fmt: skip
    return {k: got[k] for k in keep}


def _bench(dataset: Path, data_dir: Path, *, fresh: bool) -> dict[str, Any]:
    if fresh and data_dir.exists():
        raise SystemExit(f"{data_dir} exists; the memory run indexes into a fresh data dir")
    got = _run(
        [sys.executable, "-m", "engine", "bench", str(dataset), "--json", "--data-dir",
         str(data_dir)]
    )  # fmt: skip
    lat = got["latency_ms"]
    dense = lat["dense"]
    return {
        "questions": got["questions"],
        "p50_ms": {m: v["p50"] for m, v in lat.items()},
        "p95_ms": {m: v["p95"] for m, v in lat.items()},
        "p50_ratio": round(lat["threadline"]["p50"] / dense["p50"], 2),
        "p95_ratio": round(lat["threadline"]["p95"] / dense["p95"], 2),
        "recall": got["recall"],
        "stages_ms": got["stages_ms"]["threadline"],
        "indexed_passages_per_s": (got.get("ingest") or {}).get("passages_per_s"),
        "peak_rss_mib": got["peak_rss_mb"],
    }


def _api(dataset: Path, data_dir: Path, clients: int, seconds: float) -> dict[str, Any]:
    got = _run(
        [sys.executable, str(BENCHMARK), "api", str(dataset), "--data-dir", str(data_dir),
         "--clients", str(clients), "--seconds", str(seconds)]
    )  # fmt: skip
    keep = ("clients", "requests", "errors", "requests_per_s", "cpu_ms_per_request")
    return {**{k: got.get(k) for k in keep}, "latency_ms": got.get("latency_ms")}


def _targets(out: dict[str, Any], latency_sets: list[str]) -> dict[str, Any]:
    rows: dict[str, Any] = {}

    def check(name: str, value: float | None, limit: float, *, most: bool) -> None:
        met = value is not None and (value <= limit if most else value >= limit)
        rows[name] = {"value": value, "limit": limit, "met": met}

    for name, got in out["index"].items():
        check(f"index.{name}.ratio_to_floor", got["ratio_to_floor"], 1.5, most=True)
    if "2wikimultihopqa" in out["index"]:
        check(
            "index.2wikimultihopqa.passages_per_s",
            out["index"]["2wikimultihopqa"]["passages_per_s"],
            30,
            most=False,
        )
    check("memory.peak_rss_mib", out["memory"]["peak_rss_mib"], 1536, most=True)
    for name in latency_sets:
        got = out["latency"][name]
        check(f"latency.{name}.p50_ratio", got["p50_ratio"], 1.3, most=True)
        check(f"latency.{name}.p95_ratio", got["p95_ratio"], 2.0, most=True)
    if out["api"] is not None:
        check("api.requests_per_s", out["api"]["requests_per_s"], 14, most=False)
        check("api.errors", out["api"]["errors"], 0, most=True)
    return rows


def _machine() -> str:
    cores = os.cpu_count()
    return f"{platform.machine()}, {cores} CPUs, {platform.python_implementation()} " + (
        platform.python_version()
    )


def _commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - read-only git query
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None
