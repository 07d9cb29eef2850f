"""Readers: files on disk to source documents, with errors that name the file and line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from charset_normalizer import from_bytes

from graph import InputError, Section

if TYPE_CHECKING:
    from lxml.html import HtmlElement

__all__ = ["SUPPORTED_SUFFIXES", "SourceDocument", "check_size", "decode_text", "read_paths"]

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".jsonl", ".pdf", ".docx"}
_MULTIBYTE = frozenset(
    {
        "utf_16",
        "utf_32",
        "big5",
        "gb18030",
        "gb2312",
        "gbk",
        "shift_jis",
        "cp932",
        "euc_jp",
        "euc_kr",
        "cp949",
        "iso2022_jp",
        "hz",
        "johab",
        "cp950",
        "big5hkscs",
    }
)
#: Deeper element nesting than this is refused: HTML parsers spend time per open element
#: on every tag, so a file of nothing but opening tags would otherwise take quadratic time.
MAX_HTML_DEPTH = 256


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A document as read, before ids, chunks and extraction."""

    source: str
    title: str
    text: str
    origin: str  # file (and line) it came from, for error messages
    sections: tuple[Section, ...] = ()  # pages and headings, when the reader knows them


def read_paths(paths: Sequence[Path], *, max_bytes: int) -> Iterator[SourceDocument]:
    """Read files and directories (recursively, supported suffixes only), in a stable order."""
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", source=str(path))
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _supported(p))
            if not files:
                raise InputError(
                    "no supported files inside (looked for "
                    f"{', '.join(sorted(SUPPORTED_SUFFIXES))})",
                    source=str(path),
                )
            for file in files:
                yield from _read_file(file, max_bytes)
        else:
            yield from _read_file(path, max_bytes)


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES and not path.name.startswith(".")


def _read_file(path: Path, max_bytes: int) -> Iterator[SourceDocument]:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix or '(none)'}; Threadline reads "
            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}",
            source=str(path),
        )
    if suffix == ".jsonl":
        yield from _read_jsonl(path, max_bytes)
        return
    check_size(path, max_bytes)
    source = str(path.resolve())
    if suffix == ".pdf":
        text, title = _pdf_text(path), path.stem
    elif suffix == ".docx":
        text, title = _docx_text(path), path.stem
    else:
        raw = _decode(path.read_bytes(), str(path))
        if suffix in HTML_SUFFIXES:
            text, title = _html_text(raw, path)
        else:
            text = raw
            heading = _markdown_title(raw) if suffix in {".md", ".markdown"} else None
            title = heading or path.stem
    if not text.strip():
        raise InputError("the file has no text in it", source=str(path))
    yield SourceDocument(source=source, title=title, text=text, origin=str(path))


def _markdown_title(text: str) -> str | None:
    """The text of the first level-one ATX heading (``# Title #``), closing hashes removed.

    Plain string scanning, in time linear in the text: a document is untrusted input, and
    a backtracking pattern over a line of spaces would hold the interpreter for minutes.
    """
    for line in text.split("\n"):
        if len(line) < 2 or line[0] != "#" or not line[1].isspace():
            continue
        title = line[1:].strip().rstrip("#").rstrip()
        if title:
            return title
    return None


def decode_text(data: bytes, where: str) -> str:
    """Bytes of a text file to text: BOMs, UTF-8, then a detected legacy encoding."""
    return _decode(data, where)


def check_size(path: Path, max_bytes: int) -> None:
    """Refuse empty files and files over the document size limit."""
    size = path.stat().st_size
    if size == 0:
        raise InputError("the file is empty", source=str(path))
    if size > max_bytes:
        raise InputError(
            f"the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB document limit; "
            "split it or raise THREADLINE_INGEST__MAX_DOCUMENT_BYTES",
            source=str(path),
        )


def _decode(data: bytes, where: str, line: int | None = None) -> str:
    """Decode bytes as UTF-8 (with or without BOM), or UTF-16 with a BOM, or a detected charset."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-16 text: {exc}", source=where, line=line) from exc
    if b"\x00" in data[:8192]:
        raise InputError(
            "this looks like a binary file, not text; give Threadline text, HTML, Markdown, "
            "JSONL, PDF or DOCX",
            source=where,
            line=line,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if line is not None:
            raise InputError(
                f"the line is not valid UTF-8 (byte {exc.start}); JSONL files must be UTF-8",
                source=where,
                line=line,
            ) from exc
    best = from_bytes(data).best()
    if best is None or best.encoding not in _MULTIBYTE:
        # Detectors confuse the single-byte code pages on short texts; Windows-1252 is by
        # far the most common legacy encoding, so it wins whenever it decodes cleanly.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            pass
    if best is None or best.chaos > 0.2:
        raise InputError(
            "the text is not UTF-8 and its encoding could not be recognised; convert it to UTF-8",
            source=where,
            line=line,
        )
    return str(best)


def _read_jsonl(path: Path, max_bytes: int) -> Iterator[SourceDocument]:
    where = str(path)
    found = False
    with path.open("rb") as handle:
        line_no = 0
        while True:
            data = handle.readline(max_bytes + 1)
            if not data:
                break
            line_no += 1
            if len(data) > max_bytes and not data.endswith(b"\n"):
                raise InputError(
                    f"the line is longer than the {max_bytes / 1e6:.1f} MB record limit; split "
                    "the record or raise THREADLINE_INGEST__MAX_DOCUMENT_BYTES",
                    source=where,
                    line=line_no,
                )
            if not data.strip():
                continue
            record = _parse_record(_decode(data, where, line_no), where, line_no)
            found = True
            yield SourceDocument(
                source=record.get("id") or f"{path.resolve()}#{line_no}",
                title=record.get("title") or "",
                text=record["text"],
                origin=f"{where}:{line_no}",
            )
    if not found:
        raise InputError("the file holds no records", source=where)


def _parse_record(line: str, where: str, line_no: int) -> dict[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON at column {exc.colno}: {exc.msg}; each line must be one "
            'object like {"id": ..., "title": ..., "text": ...}',
            source=where,
            line=line_no,
        ) from exc
    except RecursionError as exc:
        raise InputError(
            "the JSON nests arrays or objects too deeply; each line must be one flat "
            'object like {"id": ..., "title": ..., "text": ...}',
            source=where,
            line=line_no,
        ) from exc
    if not isinstance(record, dict):
        raise InputError("each line must be a JSON object", source=where, line=line_no)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError('the record needs a non-empty string "text"', source=where, line=line_no)
    out = {"text": text}
    for key in ("id", "title"):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, str | int):
            raise InputError(f'"{key}" must be a string', source=where, line=line_no)
        out[key] = str(value)
    return out


def _html_text(raw: str, path: Path) -> tuple[str, str]:
    root = parse_html(raw, str(path))
    title_node = root.find(".//title")
    title = " ".join(title_node.text_content().split()) if title_node is not None else ""
    body = root.find("body")
    text = "\n".join((body if body is not None else root).itertext())
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line), title or path.stem


def parse_html(raw: str, where: str) -> HtmlElement:
    """Parse HTML with libxml2, which works in time linear in the input, and drop the
    elements whose text is not prose (scripts, styles, templates) or is hidden from a
    human reader (``hidden``, ``aria-hidden="true"``, ``display:none``, ``visibility:hidden``,
    ``font-size:0``, ``opacity:0``): hidden text is where instructions aimed at a model
    hide, and a document holds what its reader sees.

    Raises:
        InputError: the document nests elements deeper than :data:`MAX_HTML_DEPTH`.
    """
    from lxml import etree, html  # noqa: PLC0415 - only needed for HTML

    if not raw.strip():
        raise InputError("the file has no text in it", source=where)
    parser = html.HTMLParser(remove_comments=True, remove_pis=True)
    try:
        root = html.document_fromstring(raw, parser=parser)
    except etree.ParserError as exc:
        raise InputError(f"cannot read the HTML: {exc}", source=where) from exc
    if any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for e in parser.error_log):
        raise InputError(
            f"the HTML nests elements more than {MAX_HTML_DEPTH} deep; flatten it or save "
            "its text as a .txt file",
            source=where,
        )
    for node in list(root.iter("script", "style", "noscript", "template")):
        node.drop_tree()
    for node in [n for n in root.iter() if isinstance(n.tag, str) and _hidden(n)]:
        if node.getparent() is not None:
            node.drop_tree()
    return root


# Inline styles that hide an element's text from a human reader.
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|"
    r"(?:font-size|opacity)\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:;|!|$)",
    re.IGNORECASE,
)


def _hidden(node: HtmlElement) -> bool:
    """Whether an element is hidden from a human reader (``hidden``, ``aria-hidden``, or
    an inline style such as ``display:none``): text a person never sees is a classic
    carrier of instructions aimed at a model, so it is not read into the document."""
    attrs = node.attrib
    return (
        "hidden" in attrs
        or attrs.get("aria-hidden", "").strip().lower() == "true"
        or bool(_HIDDEN_STYLE.search(attrs.get("style", "")))
    )


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader  # noqa: PLC0415 - only needed for PDF
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise InputError("the PDF is encrypted; decrypt it first", source=str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read the PDF: {exc}", source=str(path)) from exc


def _docx_text(path: Path) -> str:
    import zipfile  # noqa: PLC0415

    from docx import Document as open_docx  # noqa: PLC0415, N813 - only needed for DOCX
    from docx.opc.exceptions import PackageNotFoundError  # noqa: PLC0415

    try:
        doc = open_docx(str(path))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read the DOCX file: {exc}", source=str(path)) from exc
    return "\n\n".join(p.text for p in doc.paragraphs if p.text.strip())
