"""Community benchmark: what communities cost at ingest, what they cover, and how well
corpus-wide questions are answered from them.

Run through ``datasets/benchmark.py communities CORPUS`` (a shared-format
``corpus.jsonl``, a dataset folder holding one, or any text file Threadline reads). It
indexes the corpus into a fresh data dir, then reports:

- ``index``: indexing time and passages/s without communities;
- ``communities``: the time to compute them for the whole corpus (stages: read the
  entity graph, Leiden, summaries, store), their count per level, and the indexing
  throughput with them (ingest plus communities);
- ``coverage``: the share of entities that belong to a level-0 community (of all
  entities, and of those linked by at least one fact), of mentions, and of passages
  that mention a member;
- ``incremental``: ingesting one more document (the first 600 characters of the first
  one), then the time to bring the communities up
  to date (only its scope is rebuilt, seeded with the previous partition);
- ``global``: general corpus-wide questions (no benchmark template), answered from the
  communities with every point kept: points per answer, the share of points the
  validator supports, the communities drawn on, and latency; ``global_model`` the same
  with a model writing the answer (``--llm``: a local llama.cpp server is started).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from engine import Settings, Threadline
from engine.readers import SourceDocument
from engine.settings import ModelSettings
from graph import Access

__all__ = ["GLOBAL_QUESTIONS", "communities_bench"]

#: Questions an analyst asks first about any corpus (not shaped like a dataset's).
GLOBAL_QUESTIONS = (
    "What are the main themes in these documents?",
    "Who are the key people and how are they connected?",
    "What are the major events described across these documents?",
    "Summarize the main topics of this collection.",
    "What places and organisations are central in these documents?",
)


def _sources(tl: Threadline, corpus: Path) -> list[SourceDocument]:
    if corpus.is_dir() and (corpus / "corpus.jsonl").is_file():
        corpus = corpus / "corpus.jsonl"
    return tl.read([corpus])


async def communities_bench(
    corpus: Path, data_dir: Path, *, base_url: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Index ``corpus`` into ``data_dir`` and measure communities (see the module doc).

    With ``base_url`` (an OpenAI-compatible server) the global questions are also answered
    with the model writing the answer (``global_model``).
    """
    admin = Access.admin()
    settings = Settings(data_dir=data_dir)
    if base_url is not None:
        settings = Settings(
            data_dir=data_dir,
            model=ModelSettings(base_url=base_url, model=model or "model", timeout_s=300),
        )
    async with await Threadline.open(settings) as tl:
        sources = _sources(tl, corpus)
        first = sources[0]
        # One more document of the same scope: what a later ingest makes stale.
        held_out = [
            SourceDocument(
                source="benchmark-extra",
                title="benchmark extra",
                text=first.text[:600],
                origin="benchmark",
            )
        ]
        started = time.perf_counter()
        await tl.ingest(sources)
        ingest_s = time.perf_counter() - started
        browser = tl.browse(admin)
        started = time.perf_counter()
        report = await browser.refresh_communities()
        communities_s = time.perf_counter() - started
        stored = await tl.graph.communities(admin)
        coverage = await _coverage(tl, stored)
        started = time.perf_counter()
        await tl.ingest(held_out)
        added_s = time.perf_counter() - started
        started = time.perf_counter()
        again = await browser.refresh_communities()
        refresh_s = time.perf_counter() - started
        answers = [await _global(tl, q) for q in GLOBAL_QUESTIONS]
        written = [await _global(tl, q, llm=True) for q in GLOBAL_QUESTIONS] if base_url else []
        stats = await tl.stats(admin)
    levels: dict[int, int] = {}
    for c in stored:
        levels[c.level] = levels.get(c.level, 0) + 1
    points = [a["points"] for a in answers]
    shares = [a["supported_share"] for a in answers if a["points"]]
    result = {
        "corpus": str(corpus),
        "passages": len(sources),
        "stats": stats.model_dump(),
        "index": {"seconds": round(ingest_s, 1), "passages_per_s": _rate(sources, ingest_s)},
        "communities": {
            "seconds": round(communities_s, 2),
            "stages_s": {k: round(v, 2) for k, v in report.seconds.items()},
            "count": len(stored),
            "per_level": dict(sorted(levels.items())),
            "passages_per_s_with_communities": _rate(sources, ingest_s + communities_s),
            "share_of_indexing_time": round(communities_s / (ingest_s + communities_s), 3),
        },
        "coverage": coverage,
        "incremental": {
            "ingest_one_document_s": round(added_s, 2),
            "refresh_s": round(refresh_s, 2),
            "scopes_rebuilt": again.scopes,
            "stages_s": {k: round(v, 2) for k, v in again.seconds.items()},
        },
        "global": {
            "questions": len(answers),
            "points_mean": round(statistics.mean(points), 2) if points else 0,
            "supported_share_mean": round(statistics.mean(shares), 3) if shares else 0,
            "latency_ms_median": round(statistics.median(a["ms"] for a in answers), 1),
            "answers": answers,
        },
    }
    if written:
        result["global_model"] = _summary(written)
    return result


def _summary(answers: list[dict[str, Any]]) -> dict[str, Any]:
    with_points = [a for a in answers if a["points"]]
    return {
        "questions": len(answers),
        "model_written": sum(a["synthesis"] == "model" for a in answers),
        "points_mean": round(statistics.mean(a["points"] for a in answers), 2),
        "supported_share_mean": round(statistics.mean(a["supported_share"] for a in with_points), 3)
        if with_points
        else 0,
        "latency_ms_median": round(statistics.median(a["ms"] for a in answers), 1),
        "answers": answers,
    }


async def _coverage(tl: Threadline, stored: list[Any]) -> dict[str, float]:
    nodes, linked, chunks = {}, set(), set()
    for scope in await tl.graph.community_scopes(Access.admin()):
        graph = await tl.graph.entity_graph(scope)
        nodes.update({n.id: n for n in graph.nodes})
        linked |= {e for a, b, _ in graph.edges for e in (a, b)}
        chunks |= {c for n in graph.nodes for c in n.chunks}
    members = {e for c in stored if c.level == 0 for e in c.entity_ids}
    covered_chunks = {c for e in members if e in nodes for c in nodes[e].chunks}
    mentions = sum(n.mentions for n in nodes.values()) or 1
    stats = await tl.stats(Access.admin())
    return {
        "entities": round(len(members) / max(len(nodes), 1), 3),
        "linked_entities": round(len(members & linked) / max(len(linked), 1), 3),
        "mentions": round(sum(nodes[e].mentions for e in members if e in nodes) / mentions, 3),
        "passages": round(len(covered_chunks) / max(stats.chunks, 1), 3),
        "passages_with_entities": round(len(covered_chunks) / max(len(chunks), 1), 3),
    }


async def _global(tl: Threadline, question: str, *, llm: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    answer = await tl.ask(question, unsupported=True, llm=llm)
    ms = (time.perf_counter() - started) * 1000
    supported = [c for c in answer.claims if c.verdict == "supported"]
    return {
        "question": question,
        "mode": answer.mode,
        "synthesis": answer.synthesis,
        "points": len(answer.claims),
        "supported_share": round(len(supported) / len(answer.claims), 3) if answer.claims else 0,
        "communities": len({i for c in answer.claims for i in c.communities}),
        "support": [c.support for c in answer.claims],
        "unsupported_reasons": [c.reason for c in answer.claims if c.verdict != "supported"][:3],
        "ms": round(ms, 1),
    }


def dumps(result: dict[str, Any]) -> str:
    """The result as indented JSON."""
    return json.dumps(result, indent=2)


def _rate(sources: list[SourceDocument], seconds: float) -> float:
    return round(len(sources) / seconds, 2) if seconds > 0 else 0.0
