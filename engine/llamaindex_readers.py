"""LlamaIndex's readers in: files read with ``SimpleDirectoryReader`` into Threadline's
source documents, keeping where the text sits in its source. Install with
``pip install 'threadline[llamaindex]'``.

:func:`read_with_llamaindex` reads each format with a LlamaIndex reader that keeps
pages and headings: ``PDFReader`` (one part per page, with the PDF's page labels), and
readers of our own on LlamaIndex's ``BaseReader`` for what the stock ones drop: DOCX page
breaks and heading styles, HTML headings, and Markdown headings (parsed in linear time).
The parts of a file become one Threadline document whose sections carry the page labels
and headings, so every cited span can say "page 4".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core import SimpleDirectoryReader
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document as LlamaDocument
from llama_index.readers.file import PDFReader

from engine.markdown import markdown_sections, remove_links
from engine.readers import SourceDocument, check_size, decode_text, parse_html
from graph import InputError, Section

__all__ = [
    "LLAMAINDEX_SUFFIXES",
    "PagedDocxReader",
    "SectionedHtmlReader",
    "read_with_llamaindex",
]

LLAMAINDEX_SUFFIXES = frozenset({".pdf", ".docx", ".md", ".markdown", ".html", ".htm", ".txt"})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_MAX_HEADING = 500  # the longest section heading a document may carry
_BLOCKS = (*_HEADINGS, "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption")


class PagedDocxReader(BaseReader):
    """DOCX to one LlamaIndex document per (page, heading) run.

    Pages are counted at explicit page breaks, "page break before" paragraphs and the
    page breaks Word records when it saves a laid-out document; headings are paragraphs
    in a Title or Heading style. Metadata: ``page_label``, ``heading``, ``title``.
    """

    def load_data(
        self, file: Path, extra_info: dict[str, Any] | None = None, **_: Any
    ) -> list[LlamaDocument]:
        import zipfile  # noqa: PLC0415

        import docx  # noqa: PLC0415
        from docx.opc.exceptions import PackageNotFoundError  # noqa: PLC0415

        try:
            document = docx.Document(str(file))
        except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read the DOCX file: {exc}", source=str(file)) from exc
        pages = _DocxPages()
        for paragraph in document.paragraphs:
            pages.add(paragraph)
        title = document.core_properties.title or pages.first_heading
        meta = dict(extra_info or {})
        return [
            LlamaDocument(
                text="\n\n".join(lines),
                metadata={**meta, "page_label": str(page), "heading": heading, "title": title},
            )
            for page, heading, lines in pages.parts
            if lines
        ]


class _DocxPages:
    """Paragraph text grouped into (page, heading, lines) runs."""

    def __init__(self) -> None:
        self.page = 1
        self.heading: str | None = None
        self.first_heading: str | None = None
        self.parts: list[tuple[int, str | None, list[str]]] = [(1, None, [])]

    def _start(self, page: int, heading: str | None) -> None:
        self.page, self.heading = page, heading
        if self.parts[-1][2]:
            self.parts.append((page, heading, []))
        else:
            self.parts[-1] = (page, heading, [])

    def add(self, paragraph: Any) -> None:
        from docx.oxml.ns import qn  # noqa: PLC0415

        if paragraph.paragraph_format.page_break_before:
            self._start(self.page + 1, self.heading)
        buffer: list[str] = []
        for element in paragraph._p.iter():
            if element.tag == qn("w:t") and element.text:
                buffer.append(element.text)
            elif element.tag == qn("w:tab"):
                buffer.append("\t")
            elif (
                element.tag == qn("w:br") and element.get(qn("w:type")) == "page"
            ) or element.tag == qn("w:lastRenderedPageBreak"):
                if "".join(buffer).strip():
                    self.parts[-1][2].append("".join(buffer).strip())
                buffer = []
                self._start(self.page + 1, self.heading)
        text = "".join(buffer).strip()
        if not text:
            return
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith(("Heading", "Title")):
            self._start(self.page, text)
            self.first_heading = self.first_heading or text
        self.parts[-1][2].append(text)


class SectionedHtmlReader(BaseReader):
    """HTML to one LlamaIndex document per heading, text blocks in reading order.

    Metadata: ``heading`` (the nearest heading, h1 to h6, above) and ``title``.
    """

    def load_data(
        self, file: Path, extra_info: dict[str, Any] | None = None, **_: Any
    ) -> list[LlamaDocument]:
        root = parse_html(decode_text(Path(file).read_bytes(), str(file)), str(file))
        title_node = root.find(".//title")
        title = " ".join(title_node.text_content().split()) if title_node is not None else None
        body = root.find("body")
        top = body if body is not None else root
        sections: list[tuple[str | None, list[str]]] = [(None, [])]
        for element in _outer_blocks(top):
            text = " ".join(" ".join(element.itertext()).split())
            if not text:
                continue
            if element.tag in _HEADINGS:
                sections.append((_clip(text), []))
            sections[-1][1].append(text)
        if not any(lines for _, lines in sections):
            body_text = "\n".join(
                " ".join(line.split()) for line in "\n".join(top.itertext()).splitlines()
            )
            sections = [(None, [line for line in body_text.splitlines() if line])]
        meta = dict(extra_info or {})
        return [
            LlamaDocument(
                text="\n".join(lines), metadata={**meta, "heading": heading, "title": title or None}
            )
            for heading, lines in sections
            if lines
        ]


def _outer_blocks(root: Any) -> Iterator[Any]:
    """Text blocks not inside another block, in document order (a block's text holds its
    inner blocks' text), found in one walk of the tree."""
    stack = [root]
    while stack:
        element = stack.pop()
        if element.tag in _BLOCKS and element is not root:
            yield element
            continue
        stack.extend(reversed([child for child in element if isinstance(child.tag, str)]))


class _SectionedMarkdownReader(BaseReader):
    """Markdown to one LlamaIndex document per heading, with the heading path kept as
    metadata and the text decoded like every other Threadline text file.

    It follows LlamaIndex's ``MarkdownReader`` (links and images reduced to their text,
    HTML tags removed, headings joined with " / "), written with string scanning so that
    it works in time linear in the file: the library's patterns backtrack quadratically
    or worse on lines of brackets or "<".
    """

    def load_data(
        self, file: Path, extra_info: dict[str, Any] | None = None, **_: Any
    ) -> list[LlamaDocument]:
        content = remove_links(decode_text(Path(file).read_bytes(), str(file)))
        meta = dict(extra_info or {})
        out = []
        for header, text in markdown_sections(content):
            body = f"{header}\n{text}".strip() if header else text.strip()
            if body:
                out.append(
                    LlamaDocument(
                        text=body, metadata={**meta, "heading": _clip(header) if header else None}
                    )
                )
        return out


def _clip(heading: str) -> str:
    """A heading short enough for a section label."""
    return heading if len(heading) <= _MAX_HEADING else heading[: _MAX_HEADING - 1] + "\u2026"


class _TextReader(BaseReader):
    def load_data(
        self, file: Path, extra_info: dict[str, Any] | None = None, **_: Any
    ) -> list[LlamaDocument]:
        text = decode_text(Path(file).read_bytes(), str(file))
        return [LlamaDocument(text=text, metadata=dict(extra_info or {}))]


def _extractors() -> dict[str, BaseReader]:
    markdown = _SectionedMarkdownReader()
    html = SectionedHtmlReader()
    return {
        ".pdf": PDFReader(),
        ".docx": PagedDocxReader(),
        ".md": markdown,
        ".markdown": markdown,
        ".html": html,
        ".htm": html,
        ".txt": _TextReader(),
    }


def read_with_llamaindex(
    paths: Sequence[Path], *, max_bytes: int = 10_000_000
) -> Iterator[SourceDocument]:
    """Read files and directories (recursively) through LlamaIndex's readers.

    Each file becomes one source document whose sections carry its page labels and
    headings. Errors name the file, as the built-in readers' do.
    """
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", source=str(path))
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in LLAMAINDEX_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise InputError(
                    "no supported files inside (looked for "
                    f"{', '.join(sorted(LLAMAINDEX_SUFFIXES))})",
                    source=str(path),
                )
        elif path.suffix.lower() not in LLAMAINDEX_SUFFIXES:
            raise InputError(
                f"unsupported file type {path.suffix or '(none)'} for the LlamaIndex readers; "
                f"they read {', '.join(sorted(LLAMAINDEX_SUFFIXES))}",
                source=str(path),
            )
        else:
            files = [path]
        for file in files:
            check_size(file, max_bytes)
        reader = SimpleDirectoryReader(
            input_files=[str(f) for f in files],
            file_extractor=_extractors(),
            raise_on_error=True,
        )
        for file, parts in zip(files, _iter_files(reader, files), strict=True):
            yield _source_document(file, parts)


def _iter_files(reader: SimpleDirectoryReader, files: list[Path]) -> Iterator[list[LlamaDocument]]:
    iterator = reader.iter_data()
    for file in files:
        try:
            yield next(iterator)
        except InputError:
            raise
        except Exception as exc:
            # Reader libraries raise anything from ValueError to their own error types, and
            # SimpleDirectoryReader wraps the readers' own InputError in a bare Exception.
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, InputError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:
                raise cause from exc
            raise InputError(f"cannot read the file: {exc}", source=str(file)) from exc


def _source_document(file: Path, parts: list[LlamaDocument]) -> SourceDocument:
    texts: list[str] = []
    sections: list[Section] = []
    offset = 0
    title: str | None = None
    for part in parts:
        text = part.text.strip()
        if not text:
            continue
        if texts:
            offset += 2  # the "\n\n" joining the parts
        meta = part.metadata
        page = meta.get("page_label")
        heading = meta.get("heading")
        title = title or meta.get("title") or heading
        if page is not None or heading:
            sections.append(
                Section(
                    start=offset,
                    end=offset + len(text),
                    page=str(page) if page is not None else None,
                    heading=_clip(heading) if heading else None,
                )
            )
        texts.append(text)
        offset += len(text)
    if not texts:
        raise InputError("the file has no text in it", source=str(file))
    return SourceDocument(
        source=str(file.resolve()),
        title=title or file.stem,
        text="\n\n".join(texts),
        origin=str(file),
        sections=tuple(sections),
    )
