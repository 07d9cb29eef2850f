"""LlamaIndex integration: LlamaIndex's readers in, Threadline out as a retriever and a
query engine. Install with ``pip install 'threadline[llamaindex]'``.

Readers. :func:`read_with_llamaindex` walks files and directories with LlamaIndex's
``SimpleDirectoryReader`` and reads each format with a LlamaIndex reader that keeps where
the text sits in its source: ``PDFReader`` (one part per page, with the PDF's page
labels), ``MarkdownReader`` (one part per heading), and two readers of our own on
LlamaIndex's ``BaseReader`` for what the stock ones drop: DOCX page breaks and heading
styles (``DocxReader`` returns one undivided text), and HTML headings (``HTMLTagReader``
reads one tag name). The parts of a file become one Threadline document whose sections
carry the page labels and headings, so every cited span can say "page 4".

Retrieval. :class:`ThreadlineRetriever` returns Threadline's evidence as
``NodeWithScore`` items whose metadata holds the provenance (document, exact span, page,
heading, the signals and graph facts that found it); :class:`ThreadlineQueryEngine`
answers with Threadline's validated claims as the response's source nodes. Both are
async-native; for synchronous LlamaIndex code open them through
:class:`ThreadlineSession`, which runs Threadline on an event loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Self, TypeVar

from llama_index.core import SimpleDirectoryReader
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.prompts.mixin import PromptMixinType
from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document as LlamaDocument
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.readers.file import PDFReader

from engine.markdown import markdown_sections, remove_links
from engine.readers import SourceDocument, check_size, decode_text, parse_html
from engine.settings import Settings
from engine.threadline import Threadline
from graph import Access, ChunkId, DocumentId, InputError, Section
from graph.provenance import Answer, Claim, Evidence, SpanRef

__all__ = [
    "LLAMAINDEX_SUFFIXES",
    "PagedDocxReader",
    "SectionedHtmlReader",
    "ThreadlineQueryEngine",
    "ThreadlineRetriever",
    "ThreadlineSession",
    "read_with_llamaindex",
    "span_from_node",
]

T = TypeVar("T")

LLAMAINDEX_SUFFIXES = frozenset({".pdf", ".docx", ".md", ".markdown", ".html", ".htm", ".txt"})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_MAX_HEADING = 500  # the longest section heading a document may carry
_BLOCKS = (*_HEADINGS, "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption")


# ---------------------------------------------------------------------------- readers


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


# ---------------------------------------------------------------------------- running


class ThreadlineSession:
    """A Threadline opened on an event loop of its own, for synchronous callers.

    ``with ThreadlineSession.open(settings) as session: session.retriever().retrieve(q)``.
    Async code may use the same objects (``await retriever.aretrieve(q)``): calls are
    handed to the session's loop, so Threadline's connections stay on one loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="threadline-session", daemon=True
        )
        self._thread.start()
        self._tl: Threadline | None = None

    @classmethod
    def open(cls, settings: Settings | None = None) -> Self:
        """Open Threadline with ``settings`` (default: from the environment)."""
        session = cls()
        try:
            session._tl = session.run(Threadline.open(settings))
        except BaseException:
            session._stop()
            raise
        return session

    @property
    def threadline(self) -> Threadline:
        if self._tl is None:
            raise InputError("the session is closed")
        return self._tl

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule a coroutine on the session's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the session's loop and wait for its result."""
        return self.submit(coro).result()

    def retriever(
        self, access: Access | None = None, *, k: int = 5, mode: str = "threadline"
    ) -> ThreadlineRetriever:
        return ThreadlineRetriever(self.threadline, access=access, k=k, mode=mode, session=self)

    def query_engine(
        self, access: Access | None = None, *, k: int = 5, include_unsupported: bool = False
    ) -> ThreadlineQueryEngine:
        return ThreadlineQueryEngine(
            self.threadline,
            access=access,
            k=k,
            include_unsupported=include_unsupported,
            session=self,
        )

    def close(self) -> None:
        if self._tl is not None:
            tl, self._tl = self._tl, None
            self.run(tl.close())
        self._stop()

    def _stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _on(session: ThreadlineSession | None, coro: Coroutine[Any, Any, T]) -> T:
    if session is None:
        return await coro
    return await asyncio.wrap_future(session.submit(coro))


def _blocking(session: ThreadlineSession | None, coro: Coroutine[Any, Any, T], name: str) -> T:
    if session is None:
        coro.close()
        raise InputError(
            f"this {name} wraps a Threadline opened in async code; call its async method "
            f"(aretrieve / aquery), or open it with ThreadlineSession for synchronous use"
        )
    return session.run(coro)


# ---------------------------------------------------------------------------- retriever


def _mode(mode: str) -> Any:
    if mode not in {"threadline", "single", "dense"}:
        raise InputError(f"unknown retrieval mode {mode!r}; use 'threadline', 'single' or 'dense'")
    return mode


class ThreadlineRetriever(BaseRetriever):
    """Threadline's hybrid graph retrieval as a LlamaIndex retriever.

    Each node is one retrieved chunk: ``node.node_id`` is the chunk id, ``node.text`` the
    chunk's exact text, and ``node.metadata`` its provenance: ``document_id``, ``title``,
    ``source``, ``version``, ``start``/``end`` (document offsets), ``page``, ``section``,
    the ``signals`` that found it and the graph ``facts`` and ``entities`` involved, and
    the ``tenant`` and ``groups`` it was read as.
    """

    def __init__(
        self,
        threadline: Threadline,
        *,
        access: Access | None = None,
        k: int = 5,
        mode: str = "threadline",
        session: ThreadlineSession | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._tl = threadline
        self._access = access or Access(tenant=threadline.settings.tenant)
        self._k = k
        self._mode = _mode(mode)
        self._session = session

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return _blocking(self._session, self._fetch(query_bundle.query_str), "retriever")

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await _on(self._session, self._fetch(query_bundle.query_str))

    async def _fetch(self, question: str) -> list[NodeWithScore]:
        retrieval = await self._tl.retrieve(question, self._access, k=self._k, mode=self._mode)
        return await evidence_nodes(self._tl, retrieval.evidence, self._access)


async def evidence_nodes(
    tl: Threadline, evidence: Sequence[Evidence], access: Access
) -> list[NodeWithScore]:
    """Evidence as LlamaIndex nodes with their provenance in the metadata."""
    nodes = []
    for source in await tl.browse(access).sources(evidence):
        item, chunk, doc = source.evidence, source.chunk, source.document
        section = doc.section_at(chunk.start)
        signals = {name: sig.model_dump(mode="json") for name, sig in item.signals.items()}
        metadata: dict[str, Any] = {
            "chunk_id": chunk.id,
            "document_id": doc.id,
            "title": doc.title,
            "source": doc.source,
            "version": doc.version,
            "start": chunk.start,
            "end": chunk.end,
            "page": section.page if section else None,
            "section": section.heading if section else None,
            "signals": signals,
            "facts": sorted({r for sig in item.signals.values() for r in sig.relations}),
            "entities": sorted({e for sig in item.signals.values() for e in sig.entities}),
            "tenant": access.tenant,
            "groups": sorted(access.groups),
        }
        hidden = [key for key in metadata if key not in {"title", "page", "section"}]
        node = TextNode(
            id_=chunk.id,
            text=chunk.text,
            metadata=metadata,
            excluded_llm_metadata_keys=hidden,
            excluded_embed_metadata_keys=hidden,
        )
        nodes.append(NodeWithScore(node=node, score=item.score))
    return nodes


def span_from_node(node: TextNode) -> SpanRef:
    """The Threadline span a retriever or query-engine node stands for."""
    meta = node.metadata
    if "claim" in meta:  # a query-engine node: its first cited span
        return SpanRef.model_validate(meta["spans"][0])
    return SpanRef(
        chunk_id=ChunkId(meta["chunk_id"]),
        document_id=DocumentId(meta["document_id"]),
        start=meta["start"],
        end=meta["end"],
        text=node.text,
        page=meta.get("page"),
        section=meta.get("section"),
    )


# ---------------------------------------------------------------------------- query engine


class ThreadlineQueryEngine(BaseQueryEngine):
    """Threadline's validated answer as a LlamaIndex ``Response``.

    ``response.response`` is the answer text; each source node is one claim (supported
    ones only unless ``include_unsupported``) whose text is the quoted source and whose
    metadata holds the claim, its verdict and reason, and its chain: ``facts``,
    ``spans`` (with page and heading) and ``documents``. ``response.metadata`` carries the
    whole answer (claims, evidence, timings).
    """

    def __init__(
        self,
        threadline: Threadline,
        *,
        access: Access | None = None,
        k: int = 5,
        include_unsupported: bool = False,
        session: ThreadlineSession | None = None,
        callback_manager: CallbackManager | None = None,
    ) -> None:
        super().__init__(callback_manager=callback_manager)
        self._tl = threadline
        self._access = access or Access(tenant=threadline.settings.tenant)
        self._k = k
        self._include_unsupported = include_unsupported
        self._session = session

    def _get_prompt_modules(self) -> PromptMixinType:
        return {}

    def _query(self, query_bundle: QueryBundle) -> Response:
        return _blocking(self._session, self._answer(query_bundle.query_str), "query engine")

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await _on(self._session, self._answer(query_bundle.query_str))

    async def _answer(self, question: str) -> Response:
        answer = await self._tl.ask(question, self._access, k=self._k)
        claims = [c for c in answer.claims if self._include_unsupported or c.verdict == "supported"]
        return Response(
            response=answer.answer,
            source_nodes=[_claim_node(i, c) for i, c in enumerate(claims)],
            metadata=_answer_metadata(answer),
        )


def _claim_node(index: int, claim: Claim) -> NodeWithScore:
    chain = claim.model_dump(mode="json")
    metadata: dict[str, Any] = {
        "claim": claim.text,
        "verdict": claim.verdict,
        "reason": claim.reason,
        "facts": chain["facts"],
        "spans": chain["spans"],
        "documents": chain["documents"],
        "page": claim.spans[0].page if claim.spans else None,
        "section": claim.spans[0].section if claim.spans else None,
        "title": claim.documents[0].title if claim.documents else None,
    }
    hidden = [key for key in metadata if key not in {"title", "page", "section"}]
    node = TextNode(
        id_=f"claim-{index}-{claim.spans[0].chunk_id if claim.spans else 'none'}",
        text="\n".join(span.text for span in claim.spans) or claim.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=hidden,
    )
    return NodeWithScore(node=node, score=1.0 if claim.verdict == "supported" else 0.0)


def _answer_metadata(answer: Answer) -> dict[str, Any]:
    dumped = answer.model_dump(mode="json")
    by_verdict: dict[str, int] = defaultdict(int)
    for claim in answer.claims:
        by_verdict[claim.verdict] += 1
    return {
        "question": dumped["question"],
        "claims": dumped["claims"],
        "evidence": dumped["evidence"],
        "timings_ms": dumped["timings_ms"],
        "verdicts": dict(by_verdict),
    }
