"""``threadline verify``: check answers written elsewhere against the stored text and graph.

One JSON item per line in (see :mod:`engine.verify`), one line out per item line, in
order. A line that is not JSON or not an item comes out as ``{"line": N, "error": ...}``
and the rest go on; only a file that cannot be read at all ends the command with exit 1.
Blank lines are skipped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
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
    err,
    out,
    redactor,
    run_job,
)
from engine.threadline import Threadline
from engine.verify import MAX_FILE_LINES, MAX_ITEMS, VerifyItem, VerifyResult

__all__ = ["verify"]

_COLOURS = {"supported": "green", "contradicted": "red", "unsupported": "yellow"}


@app.command()
def verify(
    path: Annotated[
        str, typer.Argument(metavar="FILE.jsonl", help="One item per line; - reads stdin.")
    ],
    tenant: Tenant = None,
    group: Groups = None,
    permission: Permissions = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Verify claims and answers written elsewhere against the documents you may read.

    Each line: {"id", "question"?, "answer"?, "claims": [{"text", "citations": [{"source"
    or "document", "start", "end"}], "facts"?: [relation ids]}]}. Without --tenant, reads as
    the configured tenant (THREADLINE_TENANT).
    """
    if group and tenant is None:
        raise typer.BadParameter("--group needs --tenant (the tenant the groups belong to)")
    lines = _read_lines(path)
    parsed: list[tuple[int, VerifyItem | str]] = [
        (number, _parse(line)) for number, line in lines if line.strip()
    ]
    items = [item for _, item in parsed if isinstance(item, VerifyItem)]

    async def job(tl: Threadline) -> list[VerifyResult]:
        access = access_for(tenant, group) if tenant else tl.access()
        shown = await redactor(tl, access, permission)
        # Personal data in the items is masked before they are checked, as for the API.
        checked = shown.scrub_input(items)
        results: list[VerifyResult] = []
        for at in range(0, len(checked), MAX_ITEMS):
            results += await tl.verify(checked[at : at + MAX_ITEMS], access)
        return shown.scrub(results)

    results = iter(run_job(data_dir, job) if items else [])
    for number, item in parsed:
        if isinstance(item, str):
            _show_error(number, item, as_json=as_json)
        else:
            _show(item, next(results), as_json=as_json)


def _read_lines(path: str) -> list[tuple[int, str]]:
    """The file's lines, numbered from 1; a file that cannot be read exits 1."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[bold red]error:[/] cannot read {escape(path)}: {exc}", markup=True)
        raise typer.Exit(1) from exc
    # Split on newlines only: a JSON string may hold U+2028 and its kin unescaped.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and not lines[-1]:
        lines.pop()
    if len(lines) > MAX_FILE_LINES:
        err.print(
            f"[bold red]error:[/] {escape(path)} has {len(lines):,} lines; verify at most "
            f"{MAX_FILE_LINES:,} per run (split the file)",
            markup=True,
        )
        raise typer.Exit(1)
    return list(enumerate(lines, 1))


def _parse(line: str) -> VerifyItem | str:
    """The item on a line, or what is wrong with the line."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON: {exc.msg} at column {exc.colno}"
    try:
        return VerifyItem.model_validate(value)
    except ValidationError as exc:
        return "; ".join(_problem(e) for e in exc.errors())


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _show_error(number: int, message: str, *, as_json: bool) -> None:
    if as_json:
        emit_json({"line": number, "error": message})
    else:
        out.print(f"[red]line {number}: {escape(message)}[/]", markup=True)


def _show(item: VerifyItem, result: VerifyResult, *, as_json: bool) -> None:
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    label = escape(item.id or "(no id)")
    if result.answer_verdict is None:
        out.print(f"[bold]{label}[/]  [dim]no answer to check[/]", markup=True)
    else:
        colour = _COLOURS[result.answer_verdict]
        out.print(
            f"[bold]{label}[/]  answer [{colour}]{result.answer_verdict.upper()}[/] "
            f"“{escape(item.answer or '')}”",
            markup=True,
        )
    for number, (given, checked) in enumerate(zip(item.claims, result.claims, strict=True), 1):
        colour = _COLOURS[checked.verdict]
        cites = "citations valid" if checked.citations_valid else "citations invalid"
        out.print(
            f"  {number}. [{colour}]{checked.verdict.upper()}[/] ({cites}) "
            f"{escape(checked.reason)}",
            markup=True,
        )
        out.print(f"     “{escape(_short(given.text))}”", markup=True)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
