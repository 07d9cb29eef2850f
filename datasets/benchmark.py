"""Benchmark harness: indexing throughput and peak memory on a shared-format corpus.

Usage::

    .venv/bin/python datasets/benchmark.py index ../shared/datasets/musique/corpus.jsonl
    .venv/bin/python datasets/benchmark.py graph ../shared/datasets/musique --data-dir DIR

``index`` indexes the whole corpus into a fresh data dir (a temporary one unless
``--data-dir`` is given) with the embedded default stores and prints one JSON object:
passages, words, seconds, passages/s, words/s, peak resident memory, and store counts.

``api`` load-tests the HTTP API on a data dir that ``threadline bench`` indexed: it starts
``threadline serve`` on 127.0.0.1, gives each of N concurrent clients its own API key, and
has them ask the dataset's questions back to back for a fixed time; it reports requests/s,
latency percentiles and every non-200 status.

``errors`` explains the failures of planned retrieval on a data dir that ``threadline
bench`` indexed: every question whose gold passages are not all in the top 5 is put in
the category of the step that broke (the planner left part of the question out or found
no chain, a name linked to nothing, the right bridge was not in the beam, the bridge's
page was missed, or fusion ranked a page the plan reached out of the top 5).

``model`` measures the model path with a local llama.cpp server it starts (or the server
``--base-url`` names): synthesis on the dataset's first ``--questions`` questions (tokens
per answer, synthesis and validation latency, how many answers the model wrote, claims
kept and removed, EM/F1 and the share answered "not found"), then model extraction on
the corpus's first ``--passages`` passages (chunks/s), and a re-ingest of the same
passages after deleting them (cache hit rate, chunks/s).

``verify`` measures claim verification on any corpus: it builds cases from the corpus's
sentences (``datasets/verify_cases.py``: the sentence itself, without its parenthesis, a
passive made active; a negation added or removed, two names swapped, a year changed, a name
replaced, a direction word flipped, a condition dropped), ingests the corpus into a fresh
data dir, runs the cases through ``threadline verify`` and reports per kind the share
judged supported.

``communities`` indexes a corpus (a ``corpus.jsonl``, a dataset folder, or a text file) and
measures communities: computation time per stage, indexing throughput with and without
them, their coverage, an incremental rebuild, and corpus-wide answers (points, share
supported); see ``datasets/community_bench.py``.

``privacy`` runs the ingest-time privacy checks on each ``corpus.jsonl`` given: the
personal-data detector and the injection rules, timed per chunk, with what they found (on
the shared corpora every injection flag is a false positive); see
``datasets/privacy_bench.py``. Indexing with and without personal-data detection is
``index`` with ``THREADLINE_PRIVACY__PII_DETECTION=false`` for the second run.

``cluster`` indexes a corpus twice in one run, each time into a fresh data dir: in this
process, then with the worker stage (chunking, spaCy, embeddings) on Ray (``--cluster``,
default ``local[2]``: a Ray runtime on this machine with 2 workers); it prints passages/s
of each, the Ray start-up time apart, and whether both stored the same counts.

``perf`` is the performance gate (``datasets/perf_bench.py``): indexing against the
embedding floor, peak memory of ``threadline bench``, planned retrieval's p50/p95 as ratios
to dense, and the HTTP API's requests/s and CPU per answer, each target with its limit, in
one JSON object. ``index`` also reports the embedding floor of its corpus: every chunk
embedded with the default embedder and nothing else, after the ingest, same process.

``graph`` compares graph stores on a data dir that ``threadline bench`` already indexed:
it bulk-loads the embedded graph into the Neo4j server named by ``THREADLINE_GRAPH__*``
(``threadline migrate``; entities/s, mentions/s and facts/s), then runs the dataset's
questions through the same retrieval with each store and reports latency and recall.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents import NOT_FOUND  # noqa: E402 - the path is set up first
from engine import Settings, Threadline  # noqa: E402
from graph import Access, DocumentId  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loaders import load_corpus  # noqa: E402
from verify_cases import SentenceSource, VerifyCase, build_cases  # noqa: E402


async def index(corpus: Path, data_dir: Path) -> dict[str, object]:
    passages = load_corpus(corpus)
    words = sum(len(p.text.split()) for p in passages)
    settings = Settings(data_dir=data_dir)
    async with await Threadline.open(settings) as tl:
        sources = tl.read([corpus])
        started, cpu = time.perf_counter(), time.process_time()
        report = await tl.ingest(sources)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        stats = await tl.stats(Access.admin())
    floor = embedding_floor(settings, [p.text for p in passages])
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "corpus": str(corpus),
        "passages": len(passages),
        "words": words,
        "seconds": round(seconds, 1),
        "passages_per_s": round(len(passages) / seconds, 1),
        "cpu_s": round(cpu, 1),
        "words_per_s": round(words / seconds),
        "floor_seconds": floor,
        "floor_passages_per_s": round(len(passages) / floor, 1),
        "ratio_to_floor": round(seconds / floor, 2),
        "peak_rss_mib": round(peak_kib / 1024),
        "added": report.added,
        "stats": stats.model_dump(),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
    }


def embedding_floor(settings: Settings, texts: list[str]) -> float:
    """Seconds to embed every chunk of ``texts`` with the default embedder and nothing else:
    the chunks ingest makes, in one call (sorted by length, the least padding), the model
    loaded before the clock starts."""
    from engine.ingest import embedder_for, stage_for  # noqa: PLC0415

    chunker = stage_for(settings).chunker
    chunks = [
        c.text for i, text in enumerate(texts) for c in chunker.chunk(DocumentId(f"d{i}"), text)
    ]
    embedder = embedder_for(settings)
    embedder.embed_sync(chunks[:8])
    started = time.perf_counter()
    embedder.embed_sync(chunks)
    return round(time.perf_counter() - started, 1)


async def cluster_compare(corpus: Path, root: Path, cluster: str) -> dict[str, object]:
    """``cluster``: single-process vs distributed indexing of one corpus, same run."""
    from engine.cluster import RayRunner, parse_cluster  # noqa: PLC0415 - only this command

    spec = parse_cluster(cluster)
    passages = len(load_corpus(corpus))
    runs: dict[str, dict[str, object]] = {}
    for name in ("single-process", str(spec)):
        settings = Settings(data_dir=root / f"data-{len(runs)}")
        async with await Threadline.open(settings) as tl:
            sources = tl.read([corpus])
            started = time.perf_counter()
            runner = await RayRunner.open(spec, settings) if name != "single-process" else None
            startup = time.perf_counter() - started
            try:
                started = time.perf_counter()
                await tl.ingest(sources, runner=runner)
                seconds = time.perf_counter() - started
            finally:
                if runner is not None:
                    await runner.close()
            stats = await tl.stats(Access.admin())
        runs[name] = {
            "seconds": round(seconds, 1),
            "passages_per_s": round(passages / seconds, 1),
            "startup_s": round(startup, 1),
            "stats": stats.model_dump(),
        }
    counts = [r["stats"] for r in runs.values()]
    return {
        "corpus": str(corpus),
        "passages": passages,
        "cpus": os.cpu_count(),
        "runs": runs,
        "same_counts": all(c == counts[0] for c in counts),
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


async def api_load(
    dataset_dir: Path, data_dir: Path, clients: int, seconds: float
) -> dict[str, object]:
    import socket  # noqa: PLC0415
    import statistics  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    from engine.keys import KeyStore  # noqa: PLC0415

    questions = [
        json.loads(line)["question"]
        for line in (dataset_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    store = await KeyStore.open(data_dir / "keys.sqlite")
    keys = [(await store.create(tenant="default", name=f"load-{i}")).secret for i in range(clients)]
    await store.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "engine", "serve", "--data-dir", str(data_dir)]
    server = subprocess.Popen(  # noqa: S603, ASYNC220 - our own CLI, started once
        [*command, "--port", str(port)],
        # Every request answered: the clients repeat the dataset's questions, and cached
        # answers would measure the cache, not the cost of an answer.
        env={
            **os.environ,
            "THREADLINE_TELEMETRY__JSON_LOGS": "false",
            "THREADLINE_CACHE__ANSWERS": "false",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as probe:
            for _ in range(600):
                try:
                    if (await probe.get("/v1/health/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)
            # Load the models before the clock starts.
            await probe.post(
                "/v1/ask",
                json={"question": questions[0]},
                headers={"Authorization": f"Bearer {keys[0]}"},
            )
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        deadline = time.perf_counter() + seconds

        async def client(number: int) -> None:
            headers = {"Authorization": f"Bearer {keys[number]}"}
            async with httpx.AsyncClient(base_url=base, timeout=300, headers=headers) as http:
                i = number
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await http.post(
                        "/v1/ask", json={"question": questions[i % len(questions)]}
                    )
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    i += clients

        def cpu_s() -> float:
            # The server's own CPU time (user + system; fields 14-15 of /proc/PID/stat).
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        cpu_before = cpu_s()
        started = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = cpu_s() - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=60)
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000)

    return {
        "dataset": dataset_dir.name,
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 1),
        "server_cpu_s": round(cpu, 1),
        "errors": sum(n for code, n in statuses.items() if code != 200),
        "statuses": statuses,
        "latency_ms": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "mean": round(statistics.fmean(ordered) * 1000),
        },
    }


async def failures(dataset_dir: Path, data_dir: Path) -> dict[str, object]:
    """Failed questions of planned retrieval, by the step that broke."""
    from graph import title_key  # noqa: PLC0415 - after the path set-up

    questions = [
        json.loads(line)
        for line in (dataset_dir / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    by_title = "graphrag_bench_medical" in dataset_dir.name
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
        access = Access(tenant=tl.settings.tenant)
        for q in questions:
            found = await tl.retrieve(q["question"], access, k=5)
            docs = {
                d.id: d
                for d in await tl.graph.documents(
                    access, ids=[e.document_id for e in found.evidence]
                )
            }
            got = {(d.title if by_title else d.source) for d in docs.values()}
            gold = set(q["supporting_titles"] if by_title else q["supporting_passage_ids"])
            if gold <= got:
                continue
            category = await _category(tl, access, found.plan, q, gold, by_title, title_key)
            counts[category] = counts.get(category, 0) + 1
            examples.setdefault(category, []).append(q["question"])
    return {
        "dataset": dataset_dir.name,
        "questions": len(questions),
        "failed": sum(counts.values()),
        "by_step": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "examples": {k: v[:3] for k, v in examples.items()},
    }


async def _category(
    tl: Threadline, access: Any, trace: Any, q: dict[str, Any], gold: set[str],
    by_title: bool, title_key: Any,
) -> str:  # fmt: skip
    if trace is None or not trace.plan.decomposed:
        return "planner: no chain"
    if any(s.kind == "link" and not s.output for s in trace.steps):
        return "link: a name matched no entity or page"
    reached: set[str] = set()
    for step in trace.steps:
        reached.update(b.home for b in step.output if b.home)
        if step.note.startswith("relaxed") or "chunks that mention" in step.note:
            reached.update(c for c in step.evidence if c.startswith("chk_"))
    chunks = await tl.graph.chunks(sorted(reached), access)
    docs = await tl.graph.documents(
        access, ids=list({c.document_id for c in chunks}), limit=len(chunks) or 1
    )
    if gold <= {(d.title if by_title else d.source) for d in docs}:
        return "fusion: the plan reached every gold page, ranked out of the top 5"
    if not trace.plan.complete:
        return "planner: partial chain"
    named = {title_key(b.name) for s in trace.steps if s.kind == "traverse" for b in s.output}
    wanted = {title_key(t) for t in q.get("supporting_titles") or ()}

    def same(a: str, b: str) -> bool:
        return a == b or a.startswith(b + " ") or b.startswith(a + " ")

    if any(same(g, n) for g in wanted for n in named if len(n) > 3):
        return "traverse: the right bridge was found, its page was not"
    return "traverse: the right bridge was not in the beam"


async def model_path(
    dataset_dir: Path, data_dir: Path, base_url: str, model: str, questions: int, passages: int
) -> dict[str, object]:
    from engine.bench import exact_match, f1_score, load_questions  # noqa: PLC0415
    from engine.settings import ModelSettings  # noqa: PLC0415

    cfg = ModelSettings(base_url=base_url, model=model, timeout_s=300)
    corpus = dataset_dir / "corpus.jsonl"
    asked = load_questions(dataset_dir / "questions.jsonl")[:questions]
    rows: list[dict[str, Any]] = []
    async with await Threadline.open(Settings(data_dir=data_dir / "qa", model=cfg)) as tl:
        await tl.ingest(tl.read([corpus]))
        await tl.model.check()
        for q in asked:
            started = time.perf_counter()
            answer = await tl.ask(q.question, llm=True)
            rows.append(
                {
                    "seconds": time.perf_counter() - started,
                    "synthesis_ms": answer.timings_ms["answer"],
                    "validation_ms": answer.timings_ms["validation"],
                    "model": answer.synthesis == "model",
                    "prompt_tokens": answer.usage.get("prompt_tokens", 0),
                    "completion_tokens": answer.usage.get("completion_tokens", 0),
                    "supported": sum(c.verdict == "supported" for c in answer.claims),
                    "removed": answer.removed_claims,
                    "em": exact_match(answer.answer, q.answers),
                    "f1": f1_score(answer.answer, q.answers),
                    "abstained": answer.answer == NOT_FOUND,
                }
            )
    by_model = [r for r in rows if r["model"]]

    def mean(key: str, of: list[dict[str, Any]]) -> float:
        return round(sum(float(r[key]) for r in of) / len(of), 1) if of else 0.0

    def pct(key: str, q: float) -> float:
        values = sorted(float(r[key]) for r in rows)
        return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else 0.0

    extraction = await _model_extraction(corpus, data_dir / "extract", cfg, passages)
    return {
        "dataset": str(dataset_dir),
        "model": model,
        "questions": len(rows),
        "answers_written_by_model": len(by_model),
        "prompt_tokens_per_answer": mean("prompt_tokens", by_model),
        "completion_tokens_per_answer": mean("completion_tokens", by_model),
        "synthesis_ms_p50": pct("synthesis_ms", 0.5),
        "synthesis_ms_p95": pct("synthesis_ms", 0.95),
        "validation_ms_p50": pct("validation_ms", 0.5),
        "supported_claims_per_answer": mean("supported", rows),
        "removed_claims_per_answer": mean("removed", rows),
        "em": round(sum(r["em"] for r in rows) / len(rows), 3) if rows else 0.0,
        "f1": round(sum(r["f1"] for r in rows) / len(rows), 3) if rows else 0.0,
        "abstained": round(sum(r["abstained"] for r in rows) / len(rows), 3) if rows else 0.0,
        "extraction": extraction,
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
    }


async def verify_bench(
    corpus: Path,
    data_dir: Path,
    per_kind: int,
    seed: int,
    results: Path | None,
    cited_only: bool = False,
) -> dict[str, object]:
    """Cases built from the corpus, run through ``threadline verify``, scored per kind."""
    from extractors import SpacyEntityExtractor  # noqa: PLC0415

    started = time.perf_counter()
    settings = Settings(data_dir=data_dir)
    # The last record of a source is the document Threadline keeps.
    latest = {p.source: SentenceSource(source=p.source, text=p.text) for p in load_corpus(corpus)}
    parser = SpacyEntityExtractor(pipeline=settings.extraction.spacy_pipeline)
    cases = build_cases(list(latest.values()), parser.parse, per_kind=per_kind, seed=seed)
    built_s = time.perf_counter() - started
    cited = {c.source for c in cases}
    async with await Threadline.open(settings) as tl:
        documents = tl.read([corpus])
        if cited_only:  # a claim is checked against its own document and the graph
            documents = [d for d in documents if d.source in cited]
        report = await tl.ingest(documents)
    ingest_s = time.perf_counter() - started - built_s
    requests = data_dir / "verify-cases.jsonl"
    requests.write_text("".join(json.dumps(c.request()) + "\n" for c in cases), encoding="utf-8")
    out: dict[str, object] = {
        "corpus": str(corpus),
        "documents": len(latest),
        "ingested": report.added,
        "cited_only": cited_only,
        "seed": seed,
        "cases": len(cases),
    }
    verdicts, problem = await asyncio.to_thread(_run_verify, requests, data_dir)
    verify_s = time.perf_counter() - started - built_s - ingest_s
    if problem is not None:
        out |= {"verification": f"unavailable: {problem}", "cases_file": str(requests)}
    else:
        out["kinds"] = _score(cases, verdicts)
    if results is not None:
        _write_results(results, cases, verdicts)
        out["results_file"] = str(results)
    return out | {
        "seconds": {
            "build_cases": round(built_s, 1),
            "ingest": round(ingest_s, 1),
            "verify": round(verify_s, 1),
            "total": round(time.perf_counter() - started, 1),
        },
    }


def _run_verify(requests: Path, data_dir: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """``threadline verify FILE --json`` in a child process: its output lines by case id."""
    import subprocess  # noqa: PLC0415

    command = [sys.executable, "-m", "engine", "verify", str(requests), "--json"]
    done = subprocess.run(  # noqa: S603 - our own CLI on a file we wrote
        [*command, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "THREADLINE_TELEMETRY__JSON_LOGS": "false"},
    )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {}, f"`threadline verify` exited with {done.returncode}: {tail}"
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    return {str(line["id"]): line for line in lines}, None


def _verdict(line: dict[str, Any] | None) -> tuple[str, str, bool | None]:
    if line is None or not line.get("claims"):
        return "missing", "no output line for the case", None
    claim = line["claims"][0]
    return str(claim["verdict"]), str(claim.get("reason", "")), claim.get("citations_valid")


def _score(cases: list[VerifyCase], verdicts: dict[str, dict[str, Any]]) -> dict[str, object]:
    kinds: dict[str, object] = {}
    for kind in dict.fromkeys(c.kind for c in cases):
        of = [c for c in cases if c.kind == kind]
        judged = [_verdict(verdicts.get(c.id)) for c in of]
        counts: dict[str, int] = {}
        for verdict, _, _ in judged:
            counts[verdict] = counts.get(verdict, 0) + 1
        kinds[kind] = {
            "faithful": of[0].faithful,
            "cases": len(of),
            "supported": round(counts.get("supported", 0) / len(of), 3),
            "citations_valid": round(sum(v is True for _, _, v in judged) / len(of), 3),
            "verdicts": counts,
        }
    return kinds


def _write_results(
    path: Path, cases: list[VerifyCase], verdicts: dict[str, dict[str, Any]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for case in cases:
            verdict, reason, valid = _verdict(verdicts.get(case.id))
            row = case.model_dump() | {
                "verdict": verdict,
                "reason": reason,
                "citations_valid": valid,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _head(corpus: Path, lines: int, dest: Path) -> Path:
    """The first ``lines`` passages of a corpus, as their own file."""
    head = corpus.read_text(encoding="utf-8").splitlines()[:lines]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(head) + "\n", encoding="utf-8")
    return dest


async def _model_extraction(
    corpus: Path, data_dir: Path, cfg: Any, passages: int
) -> dict[str, object]:
    sample = _head(corpus, passages, data_dir.parent / "extract-sample.jsonl")
    settings = Settings(data_dir=data_dir, model=cfg.model_copy(update={"extraction": True}))
    async with await Threadline.open(settings) as tl:
        sources = tl.read([sample])
        started = time.perf_counter()
        first = await tl.ingest(sources)
        first_s = time.perf_counter() - started
        calls = tl.model.usage
        await tl.delete(list(first.document_ids), Access.admin())
        started = time.perf_counter()
        again = await tl.ingest(sources)
        again_s = time.perf_counter() - started
        relations = await tl.stats(Access.admin())
    return {
        "passages": first.documents_read,
        "chunks": first.model_chunks,
        "seconds": round(first_s, 1),
        "chunks_per_s": round(first.model_chunks / first_s, 2),
        "failed_chunks": first.model_failed,
        "dropped_items": first.model_dropped,
        "completion_tokens_per_chunk": round(calls.completion_tokens / max(calls.calls, 1), 1),
        "reingest_seconds": round(again_s, 1),
        "reingest_chunks_per_s": round(again.model_chunks / again_s, 2),
        "reingest_cache_hit_rate": round(again.model_cache_hits / max(again.model_chunks, 1), 3),
        "graph": relations.model_dump(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    idx = sub.add_parser("index", help="index a corpus.jsonl and report throughput")
    idx.add_argument("corpus", type=Path)
    idx.add_argument("--data-dir", type=Path, default=None)
    _cluster_parser(sub)
    _perf_parser(sub)
    _variants_parser(sub)
    cmp = sub.add_parser("graph", help="bulk-load into Neo4j and compare retrieval per store")
    cmp.add_argument("dataset", type=Path)
    cmp.add_argument("--data-dir", type=Path, required=True)
    cmp.add_argument("--limit", type=int, default=None)
    err = sub.add_parser("errors", help="failed questions of planned retrieval, by step")
    err.add_argument("dataset", type=Path)
    err.add_argument("--data-dir", type=Path, required=True)
    mdl = sub.add_parser("model", help="synthesis tokens/latency and model extraction speed")
    mdl.add_argument("dataset", type=Path)
    mdl.add_argument("--data-dir", type=Path, default=None)
    mdl.add_argument("--base-url", default=None, help="default: start the local llama-server")
    mdl.add_argument("--model", default=None)
    mdl.add_argument("--questions", type=int, default=20)
    mdl.add_argument("--passages", type=int, default=100)
    _verify_arguments(sub.add_parser("verify", help="claim verification per kind of edit"))
    _communities_parser(sub)
    prv = sub.add_parser("privacy", help="cost and findings of the ingest-time privacy checks")
    prv.add_argument("corpus", type=Path, nargs="+")
    load = sub.add_parser("api", help="load-test the HTTP API with concurrent clients")
    load.add_argument("dataset", type=Path)
    load.add_argument("--data-dir", type=Path, required=True)
    load.add_argument("--clients", type=int, default=50)
    load.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.command == "api":
        result = asyncio.run(api_load(args.dataset, args.data_dir, args.clients, args.seconds))
        print(json.dumps(result, indent=2))
        return
    runners = {
        "model": _run_model,
        "verify": _run_verify_bench,
        "communities": _run_communities,
        "cluster": _run_cluster,
        "perf": _run_perf,
        "variants": _run_variants,
    }
    if args.command in runners:
        print(json.dumps(runners[args.command](args), indent=2))
        return
    if args.command == "privacy":
        from privacy_bench import privacy_scan  # noqa: PLC0415 - loads Presidio

        print(json.dumps([privacy_scan(corpus) for corpus in args.corpus], indent=2))
        return
    if args.command == "errors":
        print(json.dumps(asyncio.run(failures(args.dataset, args.data_dir)), indent=2))
        return
    if args.command == "graph":
        print(
            json.dumps(asyncio.run(graph_stores(args.dataset, args.data_dir, args.limit)), indent=2)
        )
        return
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        result = asyncio.run(index(args.corpus, data_dir))
    print(json.dumps(result, indent=2))


def _variants_parser(sub: Any) -> None:
    var = sub.add_parser("variants", help="a shared set with titles replaced by opaque ids")
    var.add_argument("dataset", type=Path, nargs="+")
    var.add_argument("--out", type=Path, required=True)


def _run_variants(args: argparse.Namespace) -> dict[str, object]:
    from variants import untitled  # noqa: PLC0415

    return {"variants": [untitled(dataset, args.out) for dataset in args.dataset]}


def _perf_parser(sub: Any) -> None:
    gate = sub.add_parser("perf", help="the performance gate: speed and memory ratios as JSON")
    gate.add_argument("datasets", type=Path, help="the folder holding the shared datasets")
    gate.add_argument("--work-dir", type=Path, required=True, help="fresh folder for data dirs")
    gate.add_argument("--index", default="musique,2wikimultihopqa")
    gate.add_argument("--latency", default="2wikimultihopqa,musique,hotpotqa")
    gate.add_argument("--memory", default="2wikimultihopqa")
    gate.add_argument("--clients", type=int, default=50, help="0: no API load run")
    gate.add_argument("--seconds", type=float, default=60)


def _run_perf(args: argparse.Namespace) -> dict[str, object]:
    from perf_bench import perf  # noqa: PLC0415

    def names(value: str) -> list[str]:
        return [n for n in value.split(",") if n]

    return perf(
        args.datasets,
        args.work_dir,
        index_sets=names(args.index),
        latency_sets=names(args.latency),
        memory_set=args.memory,
        clients=args.clients,
        seconds=args.seconds,
    )


def _cluster_parser(sub: Any) -> None:
    clu = sub.add_parser("cluster", help="single-process vs Ray indexing of a corpus, same run")
    clu.add_argument("corpus", type=Path)
    clu.add_argument("--cluster", default="local[2]", help="local[N], ray://HOST:PORT or auto")


def _run_cluster(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="threadline-cluster-") as tmp:
        return asyncio.run(cluster_compare(args.corpus, Path(tmp), args.cluster))


def _communities_parser(sub: Any) -> None:
    com = sub.add_parser("communities", help="community cost, coverage and global answers")
    com.add_argument("corpus", type=Path)
    com.add_argument("--data-dir", type=Path, default=None)
    com.add_argument("--llm", action="store_true", help="also with a local model writing")


def _run_communities(args: argparse.Namespace) -> dict[str, object]:
    from community_bench import communities_bench  # noqa: PLC0415 - only this command

    from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="threadline-communities-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        if not args.llm:
            return asyncio.run(communities_bench(args.corpus, data_dir))
        with LocalModelServer(parallel=4) as server:
            return asyncio.run(
                communities_bench(
                    args.corpus, data_dir, base_url=server.base_url, model=LOCAL_MODEL_ALIAS
                )
            )


def _verify_arguments(ver: argparse.ArgumentParser) -> None:
    ver.add_argument("corpus", type=Path)
    ver.add_argument("--sentences", type=int, default=40, help="cases per kind at most")
    ver.add_argument("--seed", type=int, default=0)
    ver.add_argument("--data-dir", type=Path, default=None)
    ver.add_argument("--results", type=Path, default=None, help="write every case's verdict")
    ver.add_argument(
        "--cited-only",
        action="store_true",
        help="ingest only the documents the cases cite (faster on large corpora)",
    )


def _run_verify_bench(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="threadline-verify-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(
            verify_bench(
                args.corpus, data_dir, args.sentences, args.seed, args.results, args.cited_only
            )
        )


def _run_model(args: argparse.Namespace) -> dict[str, object]:
    from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="threadline-model-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        if args.base_url:
            model = args.model or LOCAL_MODEL_ALIAS
            return asyncio.run(
                model_path(
                    args.dataset, data_dir, args.base_url, model, args.questions, args.passages
                )
            )
        with LocalModelServer(parallel=4) as server:
            result = asyncio.run(
                model_path(
                    args.dataset,
                    data_dir,
                    server.base_url,
                    LOCAL_MODEL_ALIAS,
                    args.questions,
                    args.passages,
                )
            )
            result["server"] = "llama-server " + " ".join(server.command()[3:])
            return result


if __name__ == "__main__":
    main()
