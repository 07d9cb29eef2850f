"""The ``threadline`` command line. Results go to stdout; progress and logs go to stderr.

This module holds the ingest, browse, ask, keys and audit commands and the entry point;
the others live in ``engine.cli_model``, ``engine.cli_ops`` and ``engine.cli_verify``, and
what they all share in ``engine.cli_common``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from engine.cli_common import (
    DataDir,
    Groups,
    JsonOut,
    Permissions,
    Tenant,
    access_for,
    app,
    err,
    out,
    print_neighborhood,
    progress_bar,
    redactor,
    run_job,
)
from engine.cli_common import emit_json as _emit_json
from engine.cli_common import load_settings as _settings
from engine.cluster import RayRunner, parse_cluster
from engine.redaction import StreamMasker, visible_entities
from engine.threadline import Threadline
from engine.views import DocumentPrivacy
from graph import Document, DocumentId, StoreCorruptedError, ThreadlineError

__all__ = ["app", "main"]

T = TypeVar("T")


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
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run chunking, spaCy and embedding on Ray: local[N] (N workers on this "
            "machine), ray://HOST:PORT (a Ray cluster) or auto (docs/production.md).",
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Ingest .txt, .md, .html, .jsonl ({id, title, text} per line), .pdf and .docx files."""
    if reader not in {"builtin", "llamaindex"}:
        raise typer.BadParameter("--reader takes builtin or llamaindex")
    chosen: Literal["builtin", "llamaindex"] = "llamaindex" if reader == "llamaindex" else "builtin"
    try:
        spec = parse_cluster(cluster) if cluster is not None else None
    except ThreadlineError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cluster") from exc

    async def job(tl: Threadline) -> Any:
        sources = tl.read(paths, reader=chosen)  # validates everything before storing
        if spec is None:
            with progress_bar("ingesting") as progress:
                return await tl.ingest(
                    sources, tenant=tenant, groups=group or (), progress=progress
                )
        async with await RayRunner.open(spec, tl.settings) as runner:
            with progress_bar(f"ingesting on {runner.workers} Ray workers") as progress:
                return await tl.ingest(
                    sources, tenant=tenant, groups=group or (), progress=progress, runner=runner
                )

    report = run_job(data_dir, job)
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
    tenant: Tenant = None,
    group: Groups = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Delete documents and everything only they support.

    With ``--tenant`` (and ``--group``) only documents that tenant and groups may read are
    deleted; without them the operator deletes any document.
    """
    if group and tenant is None:
        raise typer.BadParameter("--group needs --tenant (the tenant the groups belong to)")
    ids = [DocumentId(d) for d in document_ids]
    access = access_for(tenant, group)
    report = run_job(data_dir, lambda tl: tl.delete(ids, access))
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
    access = access_for(tenant, group)
    result = run_job(data_dir, lambda tl: tl.stats(access))
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
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """List documents, with their personal-data counts and injection flags (personal data
    masked unless --permission pii)."""
    access = access_for(tenant, group)

    async def read(tl: Threadline) -> tuple[list[Document], dict[DocumentId, DocumentPrivacy]]:
        browser = tl.browse(access)
        docs = await browser.documents(limit=limit, offset=offset)
        shown = await redactor(tl, access, permission)
        return shown.scrub(docs), shown.scrub(await browser.privacy(docs))

    docs, privacy = run_job(data_dir, read)
    if as_json:
        _emit_json(
            [
                {
                    **d.model_dump(mode="json", exclude={"text"}),
                    "privacy": privacy[d.id].model_dump(mode="json", exclude={"document_id"}),
                }
                for d in docs
            ]
        )
        return
    for d in docs:
        out.print(f"{d.id}  v{d.version}  {d.tenant}  {d.title[:60]}  ({len(d.text):,} chars)")
        _print_privacy(privacy[d.id])


def _print_privacy(view: DocumentPrivacy) -> None:
    counts = ", ".join(f"{t} {n}" for t, n in view.pii_counts.items())
    out.print(f"    contains_pii: {'yes (' + counts + ')' if view.contains_pii else 'no'}")
    if view.injection_flags:
        out.print(f"    injection flags: {len(view.injection_flags)}")
    for flag in view.injection_flags:
        span = f"[{flag.start}:{flag.end}]"
        out.print(f"      {flag.chunk_id} {span} {flag.rule}: {escape(flag.excerpt)}")


@app.command()
def entities(
    search: Annotated[str, typer.Option(help="Name or alias contains this text.")] = "",
    entity_type: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Search entities (exact matches first, then the most mentioned); names that are
    personal data are masked (and not searched) unless --permission pii."""
    access = access_for(tenant, group)
    types = [entity_type] if entity_type else []

    async def read(tl: Threadline) -> Any:
        shown = await redactor(tl, access, permission)
        query = shown.input(search)
        found = await tl.browse(access).entities(query, types=types, limit=limit)
        return visible_entities(found, query, shown)

    found = run_job(data_dir, read)
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
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Show an entity's facts and neighbours, with the sentences that state them (personal
    data masked unless --permission pii)."""
    access = access_for(tenant, group)

    async def read(tl: Threadline) -> Any:
        shown = await redactor(tl, access, permission)
        view = await tl.browse(access).neighborhood(shown.input(entity), depth=depth, limit=limit)
        return shown.scrub(view)

    view = run_job(data_dir, read)
    if as_json:
        # "relations" keeps the shape scripts already read; each fact also carries names.
        _emit_json(
            {
                "entity": view.centres[0].model_dump(),
                "entities": [e.model_dump(mode="json") for e in view.entities],
                "relations": [f.model_dump(mode="json") for f in view.facts],
                "truncated": view.truncated,
            }
        )
        return
    print_neighborhood(view)


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
    stream_draft: Annotated[
        bool,
        typer.Option(
            "--stream-draft",
            help="With --llm, print the model's draft as it is written (unverified), "
            "before the validated answer.",
        ),
    ] = False,
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Answer a question with claims whose provenance chains are checked against the graph
    (personal data masked, in the question too, unless --permission pii)."""
    chosen = _mode(mode)
    streaming = llm and stream_draft and not as_json

    async def job(tl: Threadline) -> Any:
        access = access_for(tenant, group) if tenant else tl.access()
        shown = await redactor(tl, access, permission)
        tokens = StreamMasker(shown)
        answer = None
        if streaming:
            out.print("draft (unverified, not yet checked against the graph):", style="dim")
        async for event in tl.ask_stream(
            shown.input(question),
            access,
            k=k,
            mode=chosen,
            llm=llm or None,
            unsupported=unsupported,
        ):
            if streaming and event.kind == "token" and event.text:
                text = tokens.feed(event.text)
                out.print(escape(text), end="", markup=False, highlight=False)
            elif event.kind == "done":
                answer = event.answer
        if streaming:
            out.print(escape(tokens.flush()), markup=False, highlight=False)
        return shown.scrub(answer)

    answer = run_job(data_dir, job)
    if as_json:
        _emit_json(
            {
                "question": answer.question,
                "answer": answer.answer,
                "answer_verdict": answer.answer_verdict,
                "answer_reason": answer.answer_reason,
                "mode": answer.mode,
                "synthesis": answer.synthesis,
                "synthesis_note": answer.synthesis_note,
                "claims": [c.model_dump(mode="json") for c in answer.claims],
                "removed_claims": answer.removed_claims,
                "warnings": list(answer.warnings),
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


def _print_claim(i: int, claim: Any) -> None:
    colour = {"supported": "green", "contradicted": "red"}.get(claim.verdict, "yellow")
    out.print(f"\n[{colour}]{i}. {claim.verdict.upper()}[/] {claim.reason}", markup=True)
    out.print(f"   “{claim.text}”")
    for fact in claim.facts:
        out.print(
            f"   fact  {fact.subject} —{fact.predicate}→ {fact.object}  [dim]{fact.relation_id}[/]",
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
            f"   span  {span.document_id} [{span.start}:{span.end}] in chunk {span.chunk_id}{where}"
        )
    for doc in claim.documents:
        out.print(f"   doc   {doc.title} (v{doc.version}, {doc.source})")


def _print_answer(answer: Any) -> None:
    verdict = answer.answer_verdict or "not found"
    colour = {"supported": "green", "contradicted": "red"}.get(verdict, "yellow")
    out.print(
        f"[{colour}]{verdict.upper()}[/] [bold]{escape(answer.answer)}[/]",
        markup=True,
        highlight=False,
    )
    if answer.answer_reason:
        out.print(f"[dim]{escape(answer.answer_reason)}[/]", markup=True, highlight=False)
    for warning in answer.warnings:
        out.print(f"[yellow]warning: {escape(warning)}[/]", markup=True, highlight=False)
    _print_plan(answer)
    if answer.entities:
        linked = ", ".join(f"{e.mention} → {e.name} ({e.method})" for e in answer.entities[:5])
        out.print(f"[dim]linked: {linked}[/]", markup=True)
    for i, claim in enumerate(answer.claims, 1):
        _print_claim(i, claim)
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


# Importing the sibling modules registers their commands; here, so that --help lists them
# after the commands above, as it always has.
from engine import (  # noqa: E402, F401
    cli_communities,
    cli_model,
    cli_ops,
    cli_privacy,
    cli_usage,
    cli_verify,
)

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _audit(data_dir: Path | None, action: str, **fields: Any) -> None:
    from engine.control import open_audit  # noqa: PLC0415

    async def go() -> None:
        audit = await open_audit(_settings(data_dir))
        try:
            await audit.append(action, key_id="cli", **fields)
        finally:
            await audit.close()

    asyncio.run(go())


def _with_keys(data_dir: Path | None, call: Callable[[Any], Awaitable[T]]) -> T:
    from engine.control import open_keys  # noqa: PLC0415

    async def go() -> T:
        store = await open_keys(_settings(data_dir))
        try:
            return await call(store)
        finally:
            await store.close()

    return asyncio.run(go())


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant the key reads and writes.")] = None,
    group: Groups = None,
    admin: Annotated[bool, typer.Option("--admin", help="A key that manages keys.")] = False,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    permission: Annotated[
        list[str] | None,
        typer.Option(
            "--permission",
            help="A permission (repeatable): write:tenant lets a key with groups write "
            "documents public within its tenant; pii lets it read personal data unmasked.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Create a key; the key is printed once and only its hash is kept."""
    try:
        made = _with_keys(
            data_dir,
            lambda s: s.create(
                tenant=tenant,
                groups=tuple(group or ()),
                admin=admin,
                name=name,
                permissions=permission or (),
            ),
        )
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    _audit(
        data_dir,
        "key.create",
        created=made.key.id,
        tenant=tenant,
        groups=list(made.key.groups),
        admin=admin,
        permissions=list(made.key.permissions),
    )
    if as_json:
        _emit_json({"key": made.key.model_dump(mode="json"), "secret": made.secret})
        return
    who = "admin" if admin else f"tenant {tenant}, groups {list(made.key.groups) or '-'}"
    out.print(f"created key {made.key.id} ({who}). Give this to the client; it is not stored:")
    out.print(made.secret)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Every key with its tenant, groups and state (never the secret)."""
    found = _with_keys(data_dir, lambda s: s.all())
    if as_json:
        _emit_json([k.model_dump(mode="json") for k in found])
        return
    table = Table("id", "name", "tenant", "groups", "admin", "permissions", "created", "revoked")
    for k in found:
        table.add_row(
            k.id,
            k.name,
            k.tenant or "-",
            ",".join(k.groups) or "-",
            "yes" if k.admin else "",
            ",".join(k.permissions),
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from engine.control import open_audit, open_keys  # noqa: PLC0415

    async def go() -> None:
        settings = _settings(data_dir)
        audit = await open_audit(settings)
        try:
            async with audit.action("key.revoke", key_id="cli", tenant=None, revoked=key_id):
                store = await open_keys(settings)
                try:
                    await store.revoke(key_id)
                finally:
                    await store.close()
        finally:
            await audit.close()

    try:
        asyncio.run(go())
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    out.print(f"revoked key {key_id}")


@app.command("audit")
def audit_verify(data_dir: DataDir = None) -> None:
    """Verify the audit log's hash chain (exit 1 if any record was changed or removed).

    With ``THREADLINE_CONTROL__URL`` set, the chain every replica shares in PostgreSQL."""
    from engine.audit import verify  # noqa: PLC0415
    from engine.control import audit_chain  # noqa: PLC0415

    async def go() -> tuple[str, int | None]:
        async with audit_chain(_settings(data_dir)) as chain:
            if not chain.exists():
                return chain.name, None
            return chain.name, await asyncio.to_thread(verify, chain)

    try:
        name, count = asyncio.run(go())
    except StoreCorruptedError as exc:
        err.print(f"[bold red]tampered:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    except ThreadlineError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        raise typer.Exit(1) from exc
    if count is None:
        out.print(f"no audit log at {name}")
        return
    out.print(f"{name}: {count} records, chain intact")


def main() -> None:
    """Console-script entry point."""
    from engine.allocator import limit_arenas  # noqa: PLC0415
    from engine.telemetry import PiiFilter  # noqa: PLC0415

    limit_arenas()  # before any thread starts

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(PiiFilter())  # no personal data in what the CLI logs
    app()
