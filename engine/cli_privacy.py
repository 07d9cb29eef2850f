"""``threadline subject export|erase``: subject requests (see :mod:`engine.subjects`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from engine.cli_common import DataDir, JsonOut, app, emit_json, out, run_job
from engine.control import is_shared, open_audit, open_feedback
from engine.feedback import FeedbackStore
from engine.subjects import erase_subject, find_subject, parse_subject, subject_ref
from engine.threadline import Threadline
from graph import InputError

__all__ = ["subject_erase", "subject_export"]

subject_app = typer.Typer(
    help="Subject requests: export or erase everything that mentions a person.",
    no_args_is_help=True,
)
app.add_typer(subject_app, name="subject")

Value = Annotated[str, typer.Argument(help="The person's name or e-mail address.")]


async def _open_feedback(tl: Threadline) -> FeedbackStore | None:
    if is_shared(tl.settings):
        return await open_feedback(tl.settings)
    path = tl.settings.data_dir / "feedback.sqlite"
    return await FeedbackStore.open(path) if path.exists() else None


@subject_app.command("export")
def subject_export(
    value: Value,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON report here (default: stdout).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Report every document, chunk, entity, fact, feedback rating, cached answer and audit
    field that mentions the subject, with ids, offsets and excerpts (JSON)."""

    async def job(tl: Threadline) -> dict[str, Any]:
        subject = parse_subject(value)
        audit = await open_audit(tl.settings)
        feedback = await _open_feedback(tl)
        try:
            report = await find_subject(tl, value, feedback=feedback, audit_path=audit.chain)
            await audit.append(
                "subject.export",
                key_id="cli",
                tenant=None,
                **subject_ref(subject),
                documents=len(report.documents),
                occurrences=len(report.occurrences),
            )
        finally:
            await audit.close()
            if feedback is not None:
                await feedback.close()
        return report.model_dump(mode="json")

    report = run_job(data_dir, job)
    if output is None:
        emit_json(report)
        return
    # The report quotes the subject: readable by its owner only.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, ensure_ascii=False, indent=2)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report["counts"].items())) or "nothing"
    out.print(f"wrote {output}: {len(report['documents'])} document(s); {counts}")


@subject_app.command("erase")
def subject_erase(
    value: Value,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete the documents instead of redacting them.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm an erase that changes many documents.")
    ] = False,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
) -> None:
    """Erase the subject: documents that mention it are replaced by a redacted version
    (re-ingested in place) or deleted (--delete); feedback is masked, cache entries are
    dropped and audit fields that mention it are redacted. The erase is audited without
    the subject's value."""

    async def job(tl: Threadline) -> dict[str, Any]:
        subject = parse_subject(value)
        audit = await open_audit(tl.settings)
        feedback = await _open_feedback(tl)
        ref: dict[str, Any] = subject_ref(subject)
        mode = "delete" if delete else "redact"
        try:
            async with audit.action(
                "subject.erase", key_id="cli", tenant=None, mode=mode, **ref
            ) as outcome:
                report = await find_subject(tl, value, feedback=feedback, audit_path=audit.chain)
                erased = await erase_subject(
                    tl,
                    report,
                    delete=delete,
                    confirm=yes,
                    feedback=feedback,
                    audit_path=audit.chain,
                    audit_fields={"key_id": "cli", "reason": "subject.erase", **ref},
                )
                outcome.fields.update(
                    documents=erased.documents,
                    feedback=erased.feedback,
                    cache=erased.cache,
                    audit_records=erased.audit_records,
                )
        finally:
            await audit.close()
            if feedback is not None:
                await feedback.close()
        return erased.model_dump(mode="json")

    if not value.strip():
        raise typer.BadParameter(str(InputError("name the subject: a name or an e-mail address")))
    result = run_job(data_dir, job)
    if as_json:
        emit_json(result)
        return
    verb = "deleted" if delete else "redacted and re-ingested"
    out.print(
        f"{result['documents']} document(s) {verb}; {result['feedback']} feedback rating(s) "
        f"masked; {result['cache']} cache entr(y/ies) dropped; {result['audit_records']} "
        "audit record(s) redacted"
    )
