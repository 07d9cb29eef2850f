"""``threadline`` commands that run or move a whole installation: ``bench``, ``demo``,
``maintain``, ``migrate``, ``control import`` and ``serve``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from agents import Mode
from engine.cli_common import (
    Backend,
    DataDir,
    JsonOut,
    app,
    emit_json,
    fail,
    load_settings,
    out,
    print_neighborhood,
    progress_bar,
    run_job,
)
from engine.threadline import Threadline
from graph import Access, ThreadlineError

__all__ = ["bench", "control_import", "demo", "maintain", "migrate", "serve"]


@app.command()
def bench(
    dataset_dir: Annotated[
        Path, typer.Argument(help="Folder with corpus.jsonl and questions.jsonl.")
    ],
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs for Recall@k.")] = "2,5",
    per_question: Annotated[
        Path | None, typer.Option(help="Write one JSON line per question here.")
    ] = None,
    modes: Annotated[
        str, typer.Option("--modes", help="Comma-separated modes to run (threadline,single,dense).")
    ] = "threadline,single,dense",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Benchmark Threadline against the dense baseline on a shared-format dataset.

    The corpus is indexed into --data-dir (default .threadline-bench/DATASET); an unchanged
    corpus is not indexed again.
    """
    from engine.bench import MODES, run_bench  # noqa: PLC0415 - only this command needs it

    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
    except ValueError as exc:
        raise typer.BadParameter("--k takes numbers like 2,5") from exc
    if not ks or ks[0] < 1:
        raise typer.BadParameter("--k takes positive numbers like 2,5")
    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in MODES]
    if not chosen or unknown:
        raise typer.BadParameter(f"--modes takes some of {', '.join(MODES)}")
    target = data_dir or Path(".threadline-bench") / dataset_dir.resolve().name
    out_file = per_question or target / "per_question.jsonl"

    async def job(tl: Threadline) -> Any:
        with progress_bar("questions") as progress:
            return await run_bench(
                tl,
                dataset_dir,
                limit=limit,
                ks=ks,
                per_question=out_file,
                progress=progress,
                modes=[cast("Mode", m) for m in chosen],
            )

    result = run_job(target, job)
    if as_json:
        emit_json(result)
        return
    out.print(f"{result['dataset']}: {result['questions']} questions")
    for mode in result["recall"]:
        recall = "  ".join(f"R@{c}={v:.3f}" for c, v in result["recall"][mode].items())
        quality = ""
        if result["em"] is not None:
            given = result["answers"][mode]
            quality = (
                f"  EM={result['em'][mode]:.3f}  F1={result['f1'][mode]:.3f}"
                f"  abstained={given['abstained']:.3f}"
            )
        lat = result["latency_ms"][mode]
        out.print(f"  {mode:<10} {recall}{quality}  p50={lat['p50']}ms p95={lat['p95']}ms")
    out.print(f"  per-question results: {out_file}")


@app.command()
def demo(
    paths: Annotated[list[Path], typer.Argument(help="Corpus to ingest for the tour.")],
    data_dir: DataDir = None,
) -> None:
    """Ingest a corpus, then show counts and a few entities with neighbours and sources."""

    async def job(tl: Threadline) -> None:
        sources = tl.read(paths)
        with progress_bar("ingesting") as progress:
            report = await tl.ingest(sources, progress=progress)
        out.print(
            f"\nIngested {report.documents_read} passages in {report.seconds:.1f}s "
            f"({report.added} new, {report.unchanged} unchanged)."
        )
        # The operator's tour of their own data dir: everything is visible.
        access = Access.admin()
        counts = await tl.stats(access)
        out.print(
            f"Knowledge graph: {counts.documents} documents, {counts.chunks} chunks, "
            f"{counts.entities} entities, {counts.relations} facts "
            f"({counts.mentions} mentions), {counts.vectors} vectors.\n"
        )
        browser = tl.browse(access)
        shown = 0
        for ent in await browser.entities("", limit=200):
            if ent.type in {"DATE", "MISC"}:
                continue
            view = await browser.neighborhood(ent.id, limit=8)
            if not any(f.kind != "cooccurrence" for f in view.facts):
                continue
            print_neighborhood(view, max_facts=4)
            out.print()
            shown += 1
            if shown == 4:
                break

    run_job(data_dir, job)


@app.command()
def maintain(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Remove audit records, feedback and usage records older than the retention settings
    (THREADLINE_PRIVACY__AUDIT_DAYS, __FEEDBACK_DAYS, __USAGE_DAYS); `serve` does this
    hourly. The audit log keeps verifying (`threadline audit`)."""
    from engine.retention import apply_retention  # noqa: PLC0415 - only this command needs it

    settings = load_settings(data_dir)
    try:
        report = asyncio.run(apply_retention(settings))
    except ThreadlineError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    kept = {"audit": "audit records", "feedback": "feedback ratings", "usage": "usage records"}
    for name, what in kept.items():
        removed = getattr(report, name)
        if removed is None:
            out.print(f"{what}: kept for ever (no retention set)")
        else:
            out.print(f"{what}: {removed} expired record(s) removed")


control_app = typer.Typer(
    help="The control plane shared by API replicas (THREADLINE_CONTROL__URL).",
    no_args_is_help=True,
)
app.add_typer(control_app, name="control")


@control_app.command("import")
def control_import(
    source: Annotated[
        Path, typer.Argument(help="The data dir whose keys, usage, feedback and audit log to copy.")
    ],
    as_json: JsonOut = False,
) -> None:
    """Copy a data dir's keys, usage and quotas, feedback and audit log into the shared
    PostgreSQL control plane (which must be empty), so replicas start with them."""
    from engine.control import import_data_dir  # noqa: PLC0415 - only this command needs it

    settings = load_settings(None)
    try:
        copied = asyncio.run(import_data_dir(settings, source))
    except ThreadlineError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(copied)
        return
    for table, count in copied.items():
        out.print(f"{table}: {count} row(s) copied")


@app.command()
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Target store: neo4j (copy the data dir's embedded graph into the "
            "THREADLINE_GRAPH__* server) or networkx (copy the server's graph into the data dir).",
        ),
    ],
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Documents per write.")] = 50,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Copy the knowledge graph between the embedded store and Neo4j, then verify the copy.

    Counts and a random sample of facts must match, or the command fails. Nothing is removed
    from the source. Run it again to resume an interrupted migration.
    """
    from engine.journal import DataDirLock  # noqa: PLC0415 - only this command needs them
    from engine.migrate import migrate as run_migration  # noqa: PLC0415
    from engine.threadline import open_graph_store  # noqa: PLC0415

    routes: dict[str, tuple[Backend, Backend]] = {
        "neo4j": ("networkx", "neo4j"),
        "networkx": ("neo4j", "networkx"),
    }
    if to not in routes:
        raise typer.BadParameter("--to takes neo4j or networkx")
    settings = load_settings(data_dir)
    origin, target_backend = routes[to]

    async def go() -> Any:
        lock = DataDirLock(settings.data_dir)
        lock.acquire()
        try:
            source = await open_graph_store(settings, origin)
            try:
                target = await open_graph_store(settings, target_backend)
                try:
                    with progress_bar(f"{origin} → {to}") as progress:
                        return await run_migration(
                            source, target, batch_documents=batch, progress=progress
                        )
                finally:
                    await target.close()
            finally:
                await source.close()
        finally:
            lock.release()

    try:
        report = asyncio.run(go())
    except ThreadlineError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.model_dump(mode="json"))
        return
    s = report.target
    out.print(
        f"migrated {report.copied} document(s) to {to} ({report.already_present} already there) "
        f"in {report.seconds:.1f}s; both stores hold {s.documents} documents, {s.chunks} chunks, "
        f"{s.entities} entities, {s.mentions} mentions, {s.relations} facts; "
        f"{report.facts_checked} sampled facts identical"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [default: 8000]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the HTTP API (/v1, OpenAPI at /docs) until interrupted."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from engine.api import create_app  # noqa: PLC0415
    from engine.telemetry import configure_logging  # noqa: PLC0415

    settings = load_settings(data_dir)
    configure_logging(settings.telemetry)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_config=None,
        access_log=False,
    )
