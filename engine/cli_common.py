"""What every ``threadline`` command shares: the one Typer ``app``, the consoles, the common
options and the helpers that open Threadline, report errors and print results.

The commands live in :mod:`engine.cli` and its sibling ``engine.cli_*`` modules, which
register themselves on ``app`` when :mod:`engine.cli` imports them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.keys import PII
from engine.redaction import Redactor, redactor_for
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, ThreadlineError
from graph.views import NeighborhoodView

__all__ = [
    "Backend",
    "DataDir",
    "Groups",
    "JsonOut",
    "Permissions",
    "Tenant",
    "access_for",
    "app",
    "emit_json",
    "err",
    "fail",
    "load_settings",
    "out",
    "print_neighborhood",
    "progress_bar",
    "redactor",
    "run_job",
    "sees_pii",
]

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
Permissions = Annotated[
    list[str] | None,
    typer.Option(
        "--permission",
        help="pii: show personal data (e-mail addresses, phone numbers, ...) unmasked; "
        "without it, it is masked.",
        show_default=False,
    ),
]


def load_settings(data_dir: Path | None) -> Settings:
    """The environment's settings, with ``--data-dir`` applied."""
    try:
        base = Settings()
    except ValidationError as exc:
        raise typer.BadParameter(f"invalid THREADLINE_* environment setting: {exc}") from exc
    return base.model_copy(update={"data_dir": data_dir}) if data_dir else base


def access_for(tenant: str | None, groups: list[str] | None) -> Access:
    """``--tenant``/``--group`` as an access; without a tenant, the operator sees everything."""
    if tenant is None:
        return Access.admin()
    return Access(tenant=tenant, groups=frozenset(groups or ()))


def sees_pii(permissions: list[str] | None) -> bool:
    """Whether ``--permission`` asks for personal data unmasked (``pii``)."""
    chosen = set(permissions or ())
    unknown = sorted(chosen - {PII})
    if unknown:
        raise typer.BadParameter(
            f"--permission takes {PII} (show personal data unmasked), not {', '.join(unknown)}"
        )
    return PII in chosen


async def redactor(tl: Threadline, access: Access, permissions: list[str] | None) -> Redactor:
    """What masks a read command's output: nothing with ``--permission pii``, else the
    personal data ``access`` may read and whatever the detector finds."""
    return await redactor_for(tl, access, pii=sees_pii(permissions))


def fail(exc: ThreadlineError) -> typer.Exit:
    """Print ``exc`` for the user; raise the returned exit (status 1) ``from exc``."""
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
    return typer.Exit(1)


def run_job(data_dir: Path | None, job: Callable[[Threadline], Awaitable[T]]) -> T:
    """Open Threadline on the data dir, run ``job`` on it and close it; errors exit 1."""

    async def _go() -> T:
        async with await Threadline.open(load_settings(data_dir)) as tl:
            return await job(tl)

    try:
        return asyncio.run(_go())
    except ThreadlineError as exc:
        raise fail(exc) from exc
    except ValidationError as exc:
        err.print(f"[bold red]error:[/] invalid input: {exc}", markup=True)
        raise typer.Exit(1) from exc


def emit_json(payload: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=str) + "\n")


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields its ``update(done, total)``."""
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


def print_neighborhood(view: NeighborhoodView, max_facts: int = 12) -> None:
    """The first centre, then its facts (explicit before co-occurrence), each with the
    sentence that states it."""
    center = view.centres[0]
    out.print(f"[bold]{center.name}[/] ({center.type}, {center.id})", markup=True)
    explicit = [f for f in view.facts if f.kind != "cooccurrence"]
    other = [f for f in view.facts if f.kind == "cooccurrence"]
    for fact in (explicit + other)[:max_facts]:
        span = fact.evidence[0]
        quote = span.text if len(span.text) <= 160 else span.text[:157] + "..."
        out.print(
            f"  {fact.subject} —{fact.predicate}→ {fact.object}  [dim](conf "
            f"{fact.confidence:.2f}, {len(fact.evidence)} source(s))[/]",
            markup=True,
        )
        out.print(
            f"      [dim]{span.document_id} [{span.start}:{span.end}][/] “{quote}”", markup=True
        )
    if len(view.facts) > max_facts:
        out.print(f"  … {len(view.facts) - max_facts} more facts")
