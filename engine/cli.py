"""The ``threadline`` command line. Results go to stdout; progress and logs go to stderr."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, DocumentId, Entity, Neighborhood, ThreadlineError

__all__ = ["app", "main"]

app = typer.Typer(
    help="Threadline: a knowledge graph with provenance, built from your documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")
Backend = Literal["networkx", "neo4j"]

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory [default: $THREADLINE_DATA_DIR or ./.threadline]",
        show_default=False,
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
Tenant = Annotated[str | None, typer.Option("--tenant", help="Read as this tenant.")]
Groups = Annotated[
    list[str] | None, typer.Option("--group", help="Access group (repeatable).", show_default=False)
]


def _settings(data_dir: Path | None) -> Settings:
    try:
        base = Settings()
    except ValidationError as exc:
        raise typer.BadParameter(f"invalid THREADLINE_* environment setting: {exc}") from exc
    return base.model_copy(update={"data_dir": data_dir}) if data_dir else base


def _access(tenant: str | None, groups: list[str] | None) -> Access:
    if tenant is None:
        return Access.admin()
    return Access(tenant=tenant, groups=frozenset(groups or ()))


def _run(data_dir: Path | None, job: Callable[[Threadline], Awaitable[T]]) -> T:
    async def _go() -> T:
        async with await Threadline.open(_settings(data_dir)) as tl:
            return await job(tl)

    try:
        return asyncio.run(_go())
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    except ValidationError as exc:
        err.print(f"[bold red]error:[/] invalid input: {exc}", markup=True)
        raise typer.Exit(1) from exc


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant the documents belong to.")] = None,
    group: Groups = None,
    reader: Annotated[
        str,
        typer.Option(
            help="builtin, or llamaindex: LlamaIndex's file readers, which keep PDF/DOCX page "
            "numbers and Markdown/HTML headings for citations.",
        ),
    ] = "builtin",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Ingest .txt, .md, .html, .jsonl ({id, title, text} per line), .pdf and .docx files."""
    if reader not in {"builtin", "llamaindex"}:
        raise typer.BadParameter("--reader takes builtin or llamaindex")
    chosen: Literal["builtin", "llamaindex"] = "llamaindex" if reader == "llamaindex" else "builtin"

    async def job(tl: Threadline) -> Any:
        sources = tl.read(paths, reader=chosen)  # validates everything before storing
        with _progress("ingesting") as progress:
            return await tl.ingest(sources, tenant=tenant, groups=group or (), progress=progress)

    report = _run(data_dir, job)
    if as_json:
        _emit_json(report.model_dump(mode="json", exclude={"document_ids"}))
        return
    out.print(
        f"read {report.documents_read} document(s): {report.added} added, "
        f"{report.replaced} replaced, {report.unchanged} unchanged; "
        f"{report.chunks} chunks, {report.mentions} mentions, {report.relations} facts, "
        f"{report.vectors} vectors in {report.seconds:.1f}s"
    )


@app.command()
def delete(
    document_ids: Annotated[list[str], typer.Argument(help="Document ids (doc_...).")],
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Delete documents and everything only they support."""
    ids = [DocumentId(d) for d in document_ids]
    report = _run(data_dir, lambda tl: tl.delete(ids))
    if as_json:
        _emit_json(report.model_dump())
    else:
        out.print(
            f"deleted {report.documents} document(s), {report.chunks} chunks, "
            f"{report.mentions} mentions, {report.relations} facts, {report.entities} entities"
        )


@app.command()
def stats(
    tenant: Tenant = None, group: Groups = None, data_dir: DataDir = None, as_json: JsonOut = False
) -> None:
    """Count documents, chunks, entities, mentions, facts and vectors."""
    access = _access(tenant, group)
    result = _run(data_dir, lambda tl: tl.stats(access))
    if as_json:
        _emit_json(result.model_dump())
        return
    table = Table(show_header=False, box=None)
    for key, value in result.model_dump().items():
        table.add_row(key, f"{value:,}")
    out.print(table)


@app.command()
def documents(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """List documents."""
    access = _access(tenant, group)
    docs = _run(data_dir, lambda tl: tl.documents(access, limit=limit, offset=offset))
    if as_json:
        _emit_json([d.model_dump(mode="json", exclude={"text"}) for d in docs])
        return
    for d in docs:
        out.print(f"{d.id}  v{d.version}  {d.tenant}  {d.title[:60]}  ({len(d.text):,} chars)")


@app.command()
def entities(
    search: Annotated[str, typer.Option(help="Name or alias contains this text.")] = "",
    entity_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Search entities (exact matches first, then the most mentioned)."""
    access = _access(tenant, group)
    types = [entity_type] if entity_type else []
    found = _run(
        data_dir, lambda tl: tl.graph.search_entities(search, access, types=types, limit=limit)
    )
    if as_json:
        _emit_json([e.model_dump() for e in found])
        return
    for e in found:
        alias = f"  (also: {', '.join(e.aliases[:4])})" if e.aliases else ""
        out.print(f"{e.id}  {e.type:<12} {e.name}{alias}")


@app.command()
def neighbors(
    entity: Annotated[str, typer.Argument(help="Entity id (ent_...) or name.")],
    depth: Annotated[int, typer.Option(min=1, max=4)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 25,
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Show an entity's facts and neighbours, with the sentences that state them."""
    access = _access(tenant, group)
    center, hood = _run(data_dir, lambda tl: tl.neighbors(entity, access, depth=depth, limit=limit))
    if as_json:
        _emit_json({"entity": center.model_dump(), **hood.model_dump(mode="json")})
        return
    _print_neighborhood(center, hood)


def _print_neighborhood(center: Entity, hood: Neighborhood, max_facts: int = 12) -> None:
    names = {e.id: e.name for e in hood.entities}
    out.print(f"[bold]{center.name}[/] ({center.type}, {center.id})", markup=True)
    explicit = [r for r in hood.relations if r.kind != "cooccurrence"]
    other = [r for r in hood.relations if r.kind == "cooccurrence"]
    for rel in (explicit + other)[:max_facts]:
        span = rel.evidence[0]
        quote = span.text if len(span.text) <= 160 else span.text[:157] + "..."
        out.print(
            f"  {names.get(rel.subject_id, rel.subject_id)} —{rel.predicate}→ "
            f"{names.get(rel.object_id, rel.object_id)}  [dim](conf {rel.confidence:.2f}, "
            f"{len(rel.evidence)} source(s))[/]",
            markup=True,
        )
        out.print(
            f"      [dim]{span.document_id} [{span.start}:{span.end}][/] “{quote}”", markup=True
        )
    if len(hood.relations) > max_facts:
        out.print(f"  … {len(hood.relations) - max_facts} more facts")


Mode = Annotated[
    str,
    typer.Option(
        "--mode",
        help="threadline (planned multi-hop), single (single-shot hybrid) or dense (baseline).",
    ),
]


def _mode(value: str) -> Any:
    if value not in {"threadline", "single", "dense"}:
        raise typer.BadParameter("--mode must be threadline, single or dense")
    return value


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    mode: Mode = "threadline",
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Evidence chunks to use.")] = 5,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm", help="The configured model (THREADLINE_MODEL__BASE_URL) writes the answer."
        ),
    ] = False,
    unsupported: Annotated[
        bool,
        typer.Option("--unsupported", help="Keep (flagged) claims the validator did not support."),
    ] = False,
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Answer a question with claims whose provenance chains are checked against the graph."""
    chosen = _mode(mode)
    streaming = llm and not as_json

    async def job(tl: Threadline) -> Any:
        access = _access(tenant, group) if tenant else Access(tenant=tl.settings.tenant)
        answer = None
        async for event in tl.ask_stream(
            question, access, k=k, mode=chosen, llm=llm or None, unsupported=unsupported
        ):
            if streaming and event.kind == "token" and event.text:
                out.print(escape(event.text), end="", markup=False, highlight=False)
            elif event.kind == "done":
                answer = event.answer
        if streaming:
            out.print()
        return answer

    answer = _run(data_dir, job)
    if as_json:
        _emit_json(
            {
                "question": answer.question,
                "answer": answer.answer,
                "mode": answer.mode,
                "synthesis": answer.synthesis,
                "synthesis_note": answer.synthesis_note,
                "claims": [c.model_dump(mode="json") for c in answer.claims],
                "removed_claims": answer.removed_claims,
                "evidence": [e.model_dump(mode="json") for e in answer.evidence],
                "entities": [e.model_dump(mode="json") for e in answer.entities],
                "plan": [
                    s.model_dump(mode="json", exclude={"note"} if not s.note else set())
                    for s in answer.plan
                ],
                "plan_note": answer.plan_note,
                "model": answer.model,
                "prompts": list(answer.prompts),
                "usage": answer.usage,
                "timings_ms": answer.timings_ms,
            }
        )
        return
    _print_answer(answer)


def _print_plan(answer: Any) -> None:
    """The executed plan as a short tree: each step under the step it reads from."""
    if not answer.plan:
        return
    depth: dict[str, int] = {}
    out.print("[dim]plan[/]", markup=True)
    for step in answer.plan:
        level = 1 + max((depth.get(d, 0) for d in step.depends_on), default=0)
        depth[step.id] = level
        what = step.input.get("mention") or step.input.get("relation") or ""
        if step.kind == "compare":
            what = f"{step.input.get('op', '')} {what}".strip()
        found = ", ".join(b.name for b in step.output[:3]) or "—"
        note = f"  ({step.note})" if step.note else ""
        line = f"{'  ' * level}{step.id} {step.kind} {what} → {found} ({step.ms:.0f} ms){note}"
        out.print(f"[dim]{escape(line)}[/]", markup=True, highlight=False)
    if answer.plan_note:
        out.print(f"[dim]  {escape(answer.plan_note)}[/]", markup=True, highlight=False)


def _print_answer(answer: Any) -> None:
    _print_plan(answer)
    out.print(f"[bold]{answer.answer}[/]", markup=True)
    if answer.entities:
        linked = ", ".join(f"{e.mention} → {e.name} ({e.method})" for e in answer.entities[:5])
        out.print(f"[dim]linked: {linked}[/]", markup=True)
    for i, claim in enumerate(answer.claims, 1):
        colour = {"supported": "green", "contradicted": "red"}.get(claim.verdict, "yellow")
        out.print(f"\n[{colour}]{i}. {claim.verdict.upper()}[/] {claim.reason}", markup=True)
        out.print(f"   “{claim.text}”")
        for fact in claim.facts:
            out.print(
                f"   fact  {fact.subject} —{fact.predicate}→ {fact.object}  "
                f"[dim]{fact.relation_id}[/]",
                markup=True,
            )
        for span in claim.spans:
            where = "".join(
                [
                    f", page {span.page}" if span.page else "",
                    f", under “{span.section}”" if span.section else "",
                ]
            )
            out.print(
                f"   span  {span.document_id} [{span.start}:{span.end}] in chunk "
                f"{span.chunk_id}{where}"
            )
        for doc in claim.documents:
            out.print(f"   doc   {doc.title} (v{doc.version}, {doc.source})")
    out.print("\n[dim]evidence:[/]", markup=True)
    for ev in answer.evidence:
        found_by = ", ".join(f"{name}#{sig.rank}" for name, sig in ev.signals.items())
        out.print(
            f"[dim]  {ev.chunk_id} {ev.document_id} {ev.score:.4f} ({found_by})[/]", markup=True
        )
    timing = ", ".join(
        f"{k} {v:.0f}"
        for k, v in answer.timings_ms.items()
        if k in {"retrieval", "answer", "validation", "total"}
    )
    out.print(f"[dim]ms: {timing}[/]", markup=True)
    if answer.synthesis_note:
        out.print(f"[dim]{escape(answer.synthesis_note)}[/]", markup=True, highlight=False)
    if answer.synthesis == "model":
        used = answer.usage
        out.print(
            f"[dim]model {answer.model}, prompts {', '.join(answer.prompts)}, "
            f"{used.get('prompt_tokens', 0)}+{used.get('completion_tokens', 0)} tokens; "
            f"{answer.removed_claims} unsupported claim(s) removed[/]",
            markup=True,
        )


@app.command()
def mcp(
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
) -> None:
    """Serve Threadline's tools (ask, search, entity, neighborhood, paths, facts) over MCP on
    stdin/stdout, reading as one tenant (default: THREADLINE_TENANT) and its groups."""
    from engine.mcp_server import serve_stdio  # noqa: PLC0415 - only this command needs it

    settings = _settings(data_dir)
    access = Access(tenant=tenant or settings.tenant, groups=frozenset(group or ()))
    try:
        asyncio.run(serve_stdio(settings, access))
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc


@app.command()
def research(
    question: Annotated[str, typer.Argument(help="The research question.")],
    llm: Annotated[
        bool, typer.Option("--llm", help="The configured model drives the tool-calling loop.")
    ] = False,
    tool_calling: Annotated[
        str,
        typer.Option(
            help="json (tools chosen through structured output; any server) or native "
            "(OpenAI tool calls; vLLM with a tool-call parser)."
        ),
    ] = "json",
    max_steps: Annotated[int, typer.Option(min=1, max=100, help="Tool calls allowed.")] = 12,
    max_tokens: Annotated[int, typer.Option(min=100, help="Model tokens allowed.")] = 30_000,
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Research a question in several steps and write a report whose every statement cites
    a validated provenance chain (the trace of tool calls comes with --json)."""
    from agents.research import ResearchAgent, ResearchBudget  # noqa: PLC0415
    from engine.tools import ThreadlineToolbox  # noqa: PLC0415

    if tool_calling not in {"json", "native"}:
        raise typer.BadParameter("--tool-calling takes json or native")

    async def job(tl: Threadline) -> Any:
        access = _access(tenant, group) if tenant else Access(tenant=tl.settings.tenant)
        agent = ResearchAgent(
            ThreadlineToolbox(tl, access),
            model=tl.model if llm else None,
            budget=ResearchBudget(max_steps=max_steps, max_tokens=max_tokens),
            tool_calling="native" if tool_calling == "native" else "json",
        )
        return await agent.run(question)

    report = _run(data_dir, job)
    if as_json:
        _emit_json(
            {
                "question": report.question,
                "mode": report.mode,
                "sub_questions": report.sub_questions,
                "statements": [
                    {
                        "text": s.text,
                        "notes": list(s.notes),
                        "claim": s.claim.model_dump(mode="json"),
                    }
                    for s in report.statements
                ],
                "notes": [{"id": n.id, "text": n.text, "step": n.step} for n in report.notes],
                "trace": [
                    {
                        "step": t.step,
                        "tool": t.tool,
                        "arguments": t.arguments,
                        "by": t.by,
                        "ms": t.ms,
                        "error": t.result.get("error"),
                    }
                    for t in report.trace
                ],
                "stopped": report.stopped,
                "dropped": report.dropped,
                "usage": {
                    "prompt_tokens": report.usage.prompt_tokens,
                    "completion_tokens": report.usage.completion_tokens,
                },
            }
        )
        return
    out.print(escape(report.markdown()), highlight=False)
    out.print(
        f"[dim]{len(report.trace)} tool calls ({report.mode}), {len(report.notes)} notes; "
        f"{report.stopped}[/]",
        markup=True,
    )


@app.command("serve-model-local")
def serve_model_local(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8080,
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Requests served at once.")] = 4,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="Serve /v1/embeddings instead of chat.")
    ] = False,
    build: Annotated[
        Path | None,
        typer.Option(
            help="Build llama-server from this llama-cpp-python source archive first.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    build_only: Annotated[bool, typer.Option("--build-only", help="Build, do not serve.")] = False,
) -> None:
    """Run llama.cpp's llama-server with the packaged SmolLM2-135M-Instruct on 127.0.0.1.

    A laptop stand-in for vLLM: set THREADLINE_MODEL__BASE_URL=http://127.0.0.1:PORT/v1.
    """
    from engine.local_model import (  # noqa: PLC0415 - only this command needs it
        LOCAL_MODEL_ALIAS,
        LocalModelServer,
        build_llama_server,
        default_server_binary,
    )

    try:
        if build is not None and not default_server_binary().is_file():
            err.print(f"building llama-server into {default_server_binary()} (several minutes)")
            build_llama_server(build, default_server_binary())
        if build_only:
            out.print(str(default_server_binary()))
            return
        server = LocalModelServer(port=port, parallel=parallel, embeddings=embeddings)
        server.start()
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    out.print(f"serving {LOCAL_MODEL_ALIAS} at {server.base_url} (Ctrl-C stops it)")
    out.print(
        f"export THREADLINE_MODEL__BASE_URL={server.base_url} "
        f"THREADLINE_MODEL__MODEL={LOCAL_MODEL_ALIAS}"
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


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
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Benchmark Threadline against the dense baseline on a shared-format dataset.

    The corpus is indexed into --data-dir (default .threadline-bench/DATASET); an unchanged
    corpus is not indexed again.
    """
    from engine.bench import run_bench  # noqa: PLC0415 - only this command needs it

    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
    except ValueError as exc:
        raise typer.BadParameter("--k takes numbers like 2,5") from exc
    if not ks or ks[0] < 1:
        raise typer.BadParameter("--k takes positive numbers like 2,5")
    target = data_dir or Path(".threadline-bench") / dataset_dir.resolve().name
    out_file = per_question or target / "per_question.jsonl"

    async def job(tl: Threadline) -> Any:
        with _progress("questions") as progress:
            return await run_bench(
                tl, dataset_dir, limit=limit, ks=ks, per_question=out_file, progress=progress
            )

    result = _run(target, job)
    if as_json:
        _emit_json(result)
        return
    out.print(f"{result['dataset']}: {result['questions']} questions")
    for mode in ("threadline", "single", "dense"):
        recall = "  ".join(f"R@{c}={v:.3f}" for c, v in result["recall"][mode].items())
        quality = ""
        if result["em"] is not None:
            quality = f"  EM={result['em'][mode]:.3f}  F1={result['f1'][mode]:.3f}"
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
        with _progress("ingesting") as progress:
            report = await tl.ingest(sources, progress=progress)
        out.print(
            f"\nIngested {report.documents_read} passages in {report.seconds:.1f}s "
            f"({report.added} new, {report.unchanged} unchanged)."
        )
        counts = await tl.stats()
        out.print(
            f"Knowledge graph: {counts.documents} documents, {counts.chunks} chunks, "
            f"{counts.entities} entities, {counts.relations} facts "
            f"({counts.mentions} mentions), {counts.vectors} vectors.\n"
        )
        shown = 0
        for ent in await tl.graph.search_entities("", Access.admin(), limit=200):
            if ent.type in {"DATE", "MISC"}:
                continue
            center, hood = await tl.neighbors(ent.id, limit=8)
            if not any(r.kind != "cooccurrence" for r in hood.relations):
                continue
            _print_neighborhood(center, hood, max_facts=4)
            out.print()
            shown += 1
            if shown == 4:
                break

    _run(data_dir, job)


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
    settings = _settings(data_dir)
    origin, target_backend = routes[to]

    async def go() -> Any:
        lock = DataDirLock(settings.data_dir)
        lock.acquire()
        try:
            source = await open_graph_store(settings, origin)
            try:
                target = await open_graph_store(settings, target_backend)
                try:
                    with _progress(f"{origin} → {to}") as progress:
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
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from exc
    if as_json:
        _emit_json(report.model_dump(mode="json"))
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

    settings = _settings(data_dir)
    configure_logging(settings.telemetry)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_config=None,
        access_log=False,
    )


keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _audit(data_dir: Path | None, action: str, **fields: Any) -> None:
    from engine.audit import AuditLog  # noqa: PLC0415

    audit = AuditLog(_settings(data_dir).data_dir / "audit.log")
    try:
        audit.append(action, key_id="cli", **fields)
    finally:
        audit.close()


def _key_store(data_dir: Path | None) -> Any:
    from engine.keys import KeyStore  # noqa: PLC0415

    return KeyStore(_settings(data_dir).data_dir / "keys.sqlite")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant the key reads and writes.")] = None,
    group: Groups = None,
    admin: Annotated[bool, typer.Option("--admin", help="A key that manages keys.")] = False,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Create a key; the key is printed once and only its hash is kept."""
    store = _key_store(data_dir)
    try:
        made = store.create(tenant=tenant, groups=tuple(group or ()), admin=admin, name=name)
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    _audit(data_dir, "key.create", created=made.key.id, tenant=tenant, admin=admin)
    if as_json:
        _emit_json({"key": made.key.model_dump(mode="json"), "secret": made.secret})
        return
    who = "admin" if admin else f"tenant {tenant}, groups {list(made.key.groups) or '-'}"
    out.print(f"created key {made.key.id} ({who}). Give this to the client; it is not stored:")
    out.print(made.secret)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Every key with its tenant, groups and state (never the secret)."""
    store = _key_store(data_dir)
    try:
        found = store.all()
    finally:
        store.close()
    if as_json:
        _emit_json([k.model_dump(mode="json") for k in found])
        return
    table = Table("id", "name", "tenant", "groups", "admin", "created", "revoked")
    for k in found:
        table.add_row(
            k.id,
            k.name,
            k.tenant or "-",
            ",".join(k.groups) or "-",
            "yes" if k.admin else "",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key: requests with it are refused from now on."""
    store = _key_store(data_dir)
    try:
        store.revoke(key_id)
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    finally:
        store.close()
    _audit(data_dir, "key.revoke", revoked=key_id)
    out.print(f"revoked key {key_id}")


@app.command("audit")
def audit_verify(data_dir: DataDir = None) -> None:
    """Verify the audit log's hash chain (exit 1 if any record was changed or removed)."""
    from engine.audit import verify  # noqa: PLC0415

    path = _settings(data_dir).data_dir / "audit.log"
    if not path.exists():
        out.print(f"no audit log at {path}")
        return
    try:
        count = verify(path)
    except ThreadlineError as exc:
        err.print(f"[bold red]tampered:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    out.print(f"{path}: {count} records, chain intact")


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    app()
