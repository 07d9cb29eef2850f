"""``threadline communities``: the communities of the entity graph, each with its members
and a summary whose every line is cited to an exact span."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from engine.cli_common import (
    DataDir,
    Groups,
    JsonOut,
    Permissions,
    Tenant,
    access_for,
    app,
    emit_json,
    out,
    redactor,
    run_job,
)
from engine.threadline import Threadline
from graph.views import CommunityView

__all__ = ["communities"]


@app.command()
def communities(
    level: Annotated[
        int | None, typer.Option("--level", min=0, max=5, help="Only this level (0: coarsest).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 20,
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """List communities of the entity graph with members and a cited summary (communities
    whose documents changed are rebuilt first); personal data masked unless --permission pii."""
    access = access_for(tenant, group)

    async def read(tl: Threadline) -> list[CommunityView]:
        found = await tl.browse(access).communities(level=level, limit=limit)
        return (await redactor(tl, access, permission)).scrub(found)

    found = run_job(data_dir, read)
    if as_json:
        emit_json([c.model_dump(mode="json") for c in found])
        return
    if not found:
        out.print("No communities: ingest documents whose entities are linked by facts.")
    for c in found:
        out.print(
            f"[bold]{escape(c.name)}[/bold]  {c.id}  level {c.level}, {c.size} members, "
            f"{c.documents} documents, {c.passages} passages"
        )
        for line in c.summary:
            span = line.spans[0]
            out.print(
                f"  - {escape(line.text[:160])}  "
                f"[dim]{span.document_id}[{span.start}:{span.end}][/dim]"
            )
