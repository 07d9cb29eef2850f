"""The cost and quality commands: ``usage`` (the chargeback report), ``quota`` (show and
set limits), ``eval`` (the regression gate) and ``feedback export``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.table import Table

from engine.cli_common import DataDir, JsonOut, app, emit_json, err, fail, load_settings, out
from engine.cli_common import run_job as _run_job
from engine.control import open_feedback, open_usage
from engine.evaluate import (
    GoldenMetrics,
    compare,
    dump_jsonl,
    feedback_cases,
    load_baseline,
    run_golden,
    write_baseline,
)
from engine.settings import QuotaLimits
from engine.threadline import Threadline
from engine.usage import GROUPS, Caller, Group, UsageLedger
from graph import Access, ChunkId, ThreadlineError

__all__ = ["eval_golden", "feedback_export", "quota_set", "quota_show", "usage"]

T = TypeVar("T")

quota_app = typer.Typer(help="Show and set token and question quotas.", no_args_is_help=True)
app.add_typer(quota_app, name="quota")
feedback_app = typer.Typer(help="Answer feedback for evaluation.", no_args_is_help=True)
app.add_typer(feedback_app, name="feedback")


def _with_ledger(data_dir: Path | None, call: Callable[[UsageLedger], Awaitable[T]]) -> T:
    settings = load_settings(data_dir)

    async def go() -> T:
        ledger = await open_usage(settings)
        try:
            return await call(ledger)
        finally:
            await ledger.close()

    try:
        return asyncio.run(go())
    except ThreadlineError as exc:
        raise fail(exc) from exc


@app.command("usage")
def usage(
    by: Annotated[
        list[str] | None,
        typer.Option(help="Group by tenant, key, model, purpose or day (repeatable)."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="First UTC day, YYYY-MM-DD [default: every day].")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day, included.")] = None,
    tenant: Annotated[str | None, typer.Option(help="One tenant only.")] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """The chargeback report: model tokens, calls, questions and cache hits per group."""
    groups: list[Group] = []
    for name in by or ["tenant"]:
        if name not in GROUPS:
            raise typer.BadParameter(f"--by takes {', '.join(GROUPS)}")
        groups.append(GROUPS[GROUPS.index(name)])
    first, last = _day(since, "--since"), _day(until, "--until")
    rows = _with_ledger(
        data_dir, lambda ledger: ledger.report(by=groups, since=first, until=last, tenant=tenant)
    )
    if as_json:
        emit_json([r.model_dump(exclude_none=True) for r in rows])
        return
    columns = [*groups, "prompt", "completion", "total", "calls", "asks", "hits", "saved"]
    table = Table(*columns)
    for r in rows:
        named = [str(getattr(r, g)) for g in groups]
        counts = (r.prompt_tokens, r.completion_tokens, r.total_tokens, r.calls, r.asks)
        table.add_row(*named, *(f"{n:,}" for n in (*counts, r.cache_hits, r.saved_tokens)))
    out.print(table)


@quota_app.command("show")
def quota_show(
    tenant: Annotated[str | None, typer.Option(help="The tenant.")] = None,
    key: Annotated[str | None, typer.Option(help="The key id.")] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """A tenant's and/or key's limits, what it spent and when each resets."""
    if tenant is None and key is None:
        raise typer.BadParameter("name a --tenant or a --key")
    states = _with_ledger(data_dir, lambda ledger: ledger.states(Caller(tenant=tenant, key_id=key)))
    if as_json:
        emit_json([s.model_dump() for s in states])
        return
    for s in states:
        limits = ", ".join(f"{k} {v:,}" for k, v in s.limits.model_dump().items() if v is not None)
        out.print(
            f"{s.scope} {s.name}: {limits or 'no limits'}; today {s.tokens_today:,} tokens, "
            f"{s.asks_today:,} questions; this month {s.tokens_this_month:,} tokens; "
            f"the day resets at {s.day_resets_at}"
        )


@quota_app.command("set")
def quota_set(
    tenant: Annotated[str | None, typer.Option(help="Set the limits of this tenant.")] = None,
    key: Annotated[str | None, typer.Option(help="Set the limits of this key id.")] = None,
    tokens_per_day: Annotated[int | None, typer.Option(min=0)] = None,
    tokens_per_month: Annotated[int | None, typer.Option(min=0)] = None,
    asks_per_day: Annotated[int | None, typer.Option(min=0)] = None,
    data_dir: DataDir = None,
) -> None:
    """Set a tenant's or a key's limits (a limit not given: the settings' default)."""
    if (tenant is None) == (key is None):
        raise typer.BadParameter("name either a --tenant or a --key")
    scope: Literal["tenant", "key"] = "tenant" if tenant is not None else "key"
    name = tenant or key or ""
    limits = QuotaLimits(
        tokens_per_day=tokens_per_day, tokens_per_month=tokens_per_month, asks_per_day=asks_per_day
    )
    _with_ledger(data_dir, lambda ledger: ledger.set_quota(scope, name, limits))
    shown = ", ".join(f"{k} {v:,}" for k, v in limits.model_dump().items() if v is not None)
    out.print(f"{scope} {name}: {shown or 'the settings defaults'}")


@app.command("eval")
def eval_golden(
    golden_dir: Annotated[Path, typer.Argument(help="corpus.jsonl + questions.jsonl folder.")],
    baseline: Annotated[
        Path | None, typer.Option(help="Baseline to compare with (--write-baseline wrote it).")
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="Allowed drop of each quality metric.")
    ] = 0.02,
    max_latency_ratio: Annotated[
        float, typer.Option(min=1, help="Allowed p50/p95 latency over the baseline's.")
    ] = 1.5,
    write: Annotated[
        Path | None, typer.Option("--write-baseline", help="Store this run as a baseline.")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Evidence chunks.")] = 5,
    mode: Annotated[str, typer.Option(help="threadline, single or dense.")] = "threadline",
    llm: Annotated[
        bool | None, typer.Option("--llm/--no-llm", help="Model answers [default: setting].")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N questions only.")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Index into this data dir [default: a fresh temporary one]."),
    ] = None,
    as_json: JsonOut = False,
) -> None:
    """Run a golden question set; exit 1 listing each metric worse than the baseline's."""
    if mode not in {"threadline", "single", "dense"}:
        raise typer.BadParameter("--mode takes threadline, single or dense")
    reference = _checked(lambda: load_baseline(baseline)) if baseline else None
    chosen: Any = mode

    async def job(tl: Threadline) -> GoldenMetrics:
        return await run_golden(tl, golden_dir, k=k, mode=chosen, llm=llm, limit=limit)

    if data_dir is None:
        import tempfile  # noqa: PLC0415 - only this command needs it

        with tempfile.TemporaryDirectory(prefix="threadline-eval-") as tmp:
            metrics = _run_job(Path(tmp), job)
    else:
        metrics = _run_job(data_dir, job)
    if write is not None:
        write_baseline(write, metrics)
    regressions = (
        compare(metrics, reference, tolerance=tolerance, max_latency_ratio=max_latency_ratio)
        if reference
        else []
    )
    if as_json:
        emit_json(
            {
                "passed": not regressions,
                "metrics": metrics.model_dump(),
                "baseline": reference.model_dump() if reference else None,
                "regressions": [r.model_dump() for r in regressions],
            }
        )
    else:
        _print_eval(metrics, reference)
    if regressions:
        listed = ", ".join(f"{r.metric} {r.baseline} → {r.current}" for r in regressions)
        err.print(f"[bold red]regressed:[/] {listed}", markup=True, highlight=False)
        raise typer.Exit(1)


def _print_eval(metrics: GoldenMetrics, reference: GoldenMetrics | None) -> None:
    table = Table("metric", "current", "baseline")
    rows = [
        *((f"recall@{n}", v, reference.recall.get(n) if reference else None)
          for n, v in metrics.recall.items()),
        ("em", metrics.em, reference.em if reference else None),
        ("f1", metrics.f1, reference.f1 if reference else None),
        ("supported", metrics.supported, reference.supported if reference else None),
        ("contradicted", metrics.contradicted, reference.contradicted if reference else None),
        *((f"latency {n} ms", v, reference.latency_ms.get(n) if reference else None)
          for n, v in metrics.latency_ms.items()),
    ]  # fmt: skip
    for name, now, before in rows:
        table.add_row(name, f"{now:g}", "-" if before is None else f"{before:g}")
    out.print(
        f"{metrics.dataset}: {metrics.questions} questions, mode {metrics.mode}, k {metrics.k}"
    )
    out.print(table)


@feedback_app.command("export")
def feedback_export(
    max_rating: Annotated[int, typer.Option(min=1, max=5, help="Ratings up to this.")] = 2,
    output: Annotated[
        Path | None, typer.Option("--out", help="questions.jsonl to write [default: stdout].")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Low-rated answers as golden-format questions (answers left for a reviewer), with the
    rated answer, its cited spans and the comment."""

    async def job(tl: Threadline) -> list[dict[str, Any]]:
        store = await open_feedback(tl.settings)
        try:
            rows = await store.low_rated(max_rating)
        finally:
            await store.close()
        for row in rows:
            row["spans"] = await _span_texts(tl, row["tenant"], row["spans"])
        return feedback_cases(rows)

    cases = _run_job(data_dir, job)
    if output is None:
        for case in cases:
            emit_json(case)
        return
    dump_jsonl(output, cases)
    err.print(f"wrote {len(cases)} case(s) to {output}")


async def _span_texts(
    tl: Threadline, tenant: str | None, spans: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The cited spans with their text and passage id, read now; a span of a document that
    is gone, or of another tenant's, is left out."""
    if not spans:
        return []
    operator = Access.admin()
    chunks = {
        c.id: c for c in await tl.graph.chunks([ChunkId(s["chunk_id"]) for s in spans], operator)
    }
    ids = list({c.document_id for c in chunks.values()})
    docs = {d.id: d for d in await tl.graph.documents(operator, ids=ids, limit=len(ids) or 1)}
    out = []
    for span in spans:
        chunk = chunks.get(ChunkId(span["chunk_id"]))
        doc = docs.get(chunk.document_id) if chunk else None
        if chunk is None or doc is None or doc.id != span["document_id"] or doc.tenant != tenant:
            continue
        start, end = max(span["start"], chunk.start), min(span["end"], chunk.end)
        text = chunk.text[start - chunk.start : end - chunk.start]
        out.append({**span, "source": doc.source, "title": doc.title, "text": text})
    return out


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{option} takes a date, YYYY-MM-DD") from exc


def _checked(call: Callable[[], T]) -> T:
    try:
        return call()
    except ThreadlineError as exc:
        raise fail(exc) from exc
