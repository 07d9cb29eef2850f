"""Uploaded files: checked before anything is written, read in a worker thread, named by
the uploader's file name.

Every check here is cheap and linear in the upload (names, suffixes, sizes, whether text
decodes, PDF and DOCX signatures), so a bad upload is refused with a 400 before a job
starts. Reading proper happens in the job, in a worker thread; its errors and the
documents it produces name the uploaded file, never the temporary path it was saved at.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from engine.readers import SUPPORTED_SUFFIXES, SourceDocument, decode_text
from engine.threadline import Threadline
from graph import InputError, ThreadlineError

__all__ = ["Upload", "check_upload", "stage_uploads"]

Reader = Literal["builtin", "llamaindex"]

_MAX_NAME = 255
_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".html", ".htm"})
_LLAMAINDEX_FALLBACK = frozenset({".pdf", ".docx", ".md", ".markdown", ".html", ".htm", ".txt"})


@dataclasses.dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded file that passed :func:`check_upload`."""

    name: str
    data: bytes


def upload_name(raw: str | None, number: int) -> str:
    """The uploaded file's name, when it is a plain file name.

    Raises:
        InputError: the name is empty, has folders or ``..`` in it, or control characters.
    """
    name = (raw or "").strip()
    where = f"file {number + 1}"
    if not name:
        raise InputError(
            "the uploaded file has no name; send each file with its name, e.g. report.pdf",
            source=where,
        )
    if "/" in name or "\\" in name or name in {".", ".."} or not name.isprintable():
        raise InputError(
            f"the file name {name[:80]!r} is not a plain file name; send the name alone, "
            "without folders, '..' or control characters (e.g. report.pdf)",
            source=where,
        )
    if len(name.encode("utf-8")) > _MAX_NAME:
        raise InputError(f"the file name is longer than {_MAX_NAME} bytes", source=where)
    return name


def _suffixes(reader: Reader) -> frozenset[str]:
    if reader == "builtin":
        return SUPPORTED_SUFFIXES
    try:
        from engine.llamaindex import LLAMAINDEX_SUFFIXES  # noqa: PLC0415 - optional extra
    except ImportError:
        return _LLAMAINDEX_FALLBACK  # the job reports the missing extra
    return LLAMAINDEX_SUFFIXES


def check_upload(
    raw_name: str | None, number: int, data: bytes, *, reader: Reader, max_bytes: int
) -> Upload:
    """Refuse an upload that cannot be read, before anything is stored (run in a thread).

    Raises:
        InputError: the name, type, size or content is not acceptable; the message says why.
    """
    name = upload_name(raw_name, number)
    suffix = Path(name).suffix.lower()
    allowed = _suffixes(reader)
    if suffix not in allowed:
        raise InputError(
            f"unsupported file type {suffix or '(none)'}; the {reader} reader reads "
            f"{', '.join(sorted(allowed))}",
            source=name,
        )
    if not data.strip():
        raise InputError("the file is empty", source=name)
    if len(data) > max_bytes and suffix != ".jsonl":
        raise InputError(
            f"the file is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB document "
            "limit; split it",
            source=name,
        )
    if suffix == ".pdf" and not data.lstrip()[:5] == b"%PDF-":
        raise InputError("this is not a PDF file (it does not start with %PDF-)", source=name)
    if suffix == ".docx" and not data.startswith(b"PK\x03\x04"):
        raise InputError("this is not a DOCX file (it is not a ZIP package)", source=name)
    if suffix == ".jsonl" and b"\x00" in data[:8192]:
        raise InputError(
            "this looks like a binary file, not JSONL; each line must be one JSON object",
            source=name,
        )
    if suffix in _TEXT_SUFFIXES:
        text = decode_text(data, name)
        if not text.strip():
            raise InputError("the file has no text in it", source=name)
    return Upload(name=name, data=data)


def stage_uploads(
    tl: Threadline, uploads: Sequence[Upload], *, reader: Reader
) -> Callable[[], list[SourceDocument]]:
    """Save checked uploads to a private temporary folder (call in a worker thread) and
    return the reading step of the job, which removes the folder when done."""
    folder = Path(tempfile.mkdtemp(prefix="threadline-upload-"))
    paths: list[Path] = []
    renames: list[tuple[str, str]] = []
    try:
        for number, upload in enumerate(uploads):
            target = folder / f"{number:04d}" / upload.name
            target.parent.mkdir()
            target.write_bytes(upload.data)
            paths.append(target)
            renames += [(str(target.resolve()), upload.name), (str(target), upload.name)]
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise InputError("the uploaded files could not be saved for reading") from exc
    renames += [(str(folder.resolve()), "upload"), (str(folder), "upload")]

    def scrub(text: str) -> str:
        for path, name in renames:
            text = text.replace(path, name)
        return text

    def read() -> list[SourceDocument]:
        try:
            found = tl.read(paths, reader=reader)
        except InputError as exc:
            raise InputError(
                _bare_message(exc, scrub), source=scrub(exc.source or "") or None, line=exc.line
            ) from exc
        except ThreadlineError:
            raise
        except Exception as exc:
            # Reader libraries raise anything from ValueError to their own error types; the
            # message must not carry the temporary path either.
            raise InputError(f"cannot read the uploaded files: {scrub(str(exc))}") from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        # Documents are named by the uploaded file name, not the temporary path.
        return [
            dataclasses.replace(s, source=scrub(s.source), origin=scrub(s.origin)) for s in found
        ]

    return read


def _bare_message(exc: InputError, scrub: Callable[[str], str]) -> str:
    """The error's message without its ``source:line:`` prefix, paths scrubbed."""
    message = str(exc)
    if exc.source is not None:
        prefix = f"{exc.source}:{exc.line}: " if exc.line is not None else f"{exc.source}: "
        message = message.removeprefix(prefix)
    return scrub(message)
