"""Threadline inside LlamaIndex: LlamaIndex's readers in, retriever and query engine out.

Real files made here (a three-page PDF, a two-page DOCX, Markdown, HTML) go through
LlamaIndex's readers with their pages and headings kept in the citations; the retriever
and query engine run in LlamaIndex pipelines against the bundled sample, and their nodes
map back to exact Threadline spans. Tenants stay apart through the retriever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import TextNode
from typer.testing import CliRunner

from engine import Settings, Threadline
from engine.cli import app
from engine.llamaindex import (
    ThreadlineQueryEngine,
    ThreadlineRetriever,
    ThreadlineSession,
    read_with_llamaindex,
    span_from_node,
)
from graph import Access, InputError
from tests.conftest import SAMPLE
from tests.documents import pdf_bytes, write_docx

pytestmark = pytest.mark.llamaindex

ACME = Access(tenant="acme")
GLOBEX = Access(tenant="globex")
QUESTION = (
    "Who was the first president of the association which published "
    "Journal of Psychotherapy Integration?"
)


def _files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pdf = folder / "engines.pdf"
    pdf.write_bytes(
        pdf_bytes(
            [
                "Ada Lovelace wrote the first program.",
                "Charles Babbage designed the Analytical Engine in London.",
                "Alan Turing studied the engine at Cambridge.",
            ]
        )
    )
    docx = write_docx(
        folder / "history.docx",
        [
            ("Engines", ["Charles Babbage built the Difference Engine."]),
            ("Programs", ["Ada Lovelace published her notes in 1843."]),
        ],
    )
    markdown = folder / "notes.md"
    markdown.write_text(
        "# Computing\n\nIntro text about machines.\n\n## Pioneers\n\n"
        "Grace Hopper wrote the first compiler.\n",
        encoding="utf-8",
    )
    html = folder / "page.html"
    html.write_text(
        "<html><head><title>Labs</title><script>var x = 1;</script></head><body>"
        "<h1>Bell Labs</h1><p>Claude Shannon worked at Bell Labs.</p>"
        "<h2>Later</h2><ul><li>John Pierce coined the word transistor.</li></ul>"
        "</body></html>",
        encoding="utf-8",
    )
    return {"pdf": pdf, "docx": docx, "md": markdown, "html": html}


def _section(doc_text: str, sections: tuple, phrase: str) -> tuple[str | None, str | None]:
    at = doc_text.index(phrase)
    for s in sections:
        if s.start <= at < s.end:
            return s.page, s.heading
    return None, None


def test_readers_keep_pages_and_headings(tmp_path: Path) -> None:
    files = _files(tmp_path / "in")
    docs = {Path(d.origin).suffix: d for d in read_with_llamaindex([tmp_path / "in"])}
    assert set(docs) == {".pdf", ".docx", ".md", ".html"}
    pdf = docs[".pdf"]
    assert _section(pdf.text, pdf.sections, "Charles Babbage")[0] == "2"
    assert _section(pdf.text, pdf.sections, "Alan Turing")[0] == "3"
    docx = docs[".docx"]
    assert _section(docx.text, docx.sections, "Difference Engine") == ("1", "Engines")
    assert _section(docx.text, docx.sections, "1843") == ("2", "Programs")
    md = docs[".md"]
    assert _section(md.text, md.sections, "Grace Hopper")[1] == "Computing / Pioneers"
    html = docs[".html"]
    assert html.title == "Labs"
    assert "var x" not in html.text
    assert _section(html.text, html.sections, "John Pierce")[1] == "Later"
    # Single files read the same way; the document id is the file, as with the built-in readers.
    (single,) = read_with_llamaindex([files["pdf"]])
    assert single.source == str(files["pdf"].resolve())
    assert single.sections == pdf.sections


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(InputError, match=r"broken\.pdf"):
        list(read_with_llamaindex([broken]))
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        list(read_with_llamaindex([empty]))
    odd = tmp_path / "data.xyz"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="unsupported file type"):
        list(read_with_llamaindex([odd]))


async def test_pages_flow_into_cited_spans(settings: Settings, tmp_path: Path) -> None:
    files = _files(tmp_path / "in")
    async with await Threadline.open(settings) as tl:
        report = await tl.ingest(tl.read([files["pdf"], files["docx"]], reader="llamaindex"))
        assert report.added == 2
        answer = await tl.ask("Who designed the Analytical Engine?", Access.admin())
        spans = [s for c in answer.claims for s in c.spans]
        assert spans
        docs = {d.id: d for d in await tl.browse(Access.admin()).documents()}
        for span in spans:
            assert docs[span.document_id].text[span.start : span.end] == span.text
        babbage = [s for s in spans if "Analytical Engine" in s.text]
        assert babbage
        assert {s.page for s in babbage} == {"2"}
        # Mentions in the DOCX carry their page too, through the stored sections.
        (docx,) = [d for d in docs.values() if d.source.endswith("history.docx")]
        found = await tl.graph.match_entities(["Ada Lovelace"], Access.admin())
        mentions = await tl.graph.mentions([found["Ada Lovelace"][0].id], Access.admin())
        ada = next(m for m in mentions if m.span.document_id == docx.id)
        section = docx.section_at(ada.span.start)
        assert section is not None
        assert (section.page, section.heading) == ("2", "Programs")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadlineSession]:
    """The bundled sample for tenant acme and one document for tenant globex."""
    data_dir = tmp_path_factory.mktemp("llamaindex") / "data"
    other = tmp_path_factory.mktemp("globex") / "globex.jsonl"
    other.write_text(
        json.dumps(
            {
                "id": "g1",
                "title": "Journal of Psychotherapy Integration",
                "text": "The Journal of Psychotherapy Integration is read by Globex staff only.",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    with ThreadlineSession.open(Settings(data_dir=data_dir)) as opened:
        tl = opened.threadline
        opened.run(tl.ingest(tl.read([SAMPLE]), tenant="acme"))
        opened.run(tl.ingest(tl.read([other]), tenant="globex"))
        yield opened


def _round_trips(session: ThreadlineSession, node: TextNode) -> None:
    span = span_from_node(node)
    docs = session.run(session.threadline.graph.documents(Access.admin(), ids=[span.document_id]))
    assert docs[0].text[span.start : span.end] == span.text


@pytest.mark.slow
def test_retriever_nodes_round_trip_to_spans(session: ThreadlineSession) -> None:
    retriever = session.retriever(ACME, k=5)
    nodes = retriever.retrieve(QUESTION)
    assert 1 <= len(nodes) <= 5
    for item in nodes:
        assert item.score is not None
        meta = item.node.metadata
        assert meta["tenant"] == "acme"
        assert meta["signals"]
        assert item.node.node_id == meta["chunk_id"]
        _round_trips(session, item.node)
    # The graph found the journal's publisher: its facts and entities are in the metadata.
    assert any(n.node.metadata["facts"] for n in nodes)
    # LLM-facing text carries the title, not the bookkeeping.
    llm_text = nodes[0].node.get_content(metadata_mode="llm")
    assert "chunk_id" not in llm_text
    assert nodes[0].node.metadata["title"] in llm_text


@pytest.mark.slow
async def test_retriever_in_an_async_llamaindex_pipeline(session: ThreadlineSession) -> None:
    fused = QueryFusionRetriever(
        [session.retriever(ACME, k=5), session.retriever(ACME, k=5, mode="dense")],
        llm=MockLLM(),  # one query, so the LLM never generates variants; none is called
        num_queries=1,
        mode="reciprocal_rerank",
        similarity_top_k=5,
        use_async=True,
    )
    nodes = await fused.aretrieve(QUESTION)
    assert nodes
    for item in nodes:
        assert isinstance(item.node, TextNode)
        _round_trips(session, item.node)
    # A LlamaIndex query engine over the retriever returns its nodes as sources.
    engine = RetrieverQueryEngine(
        retriever=session.retriever(ACME, k=3), response_synthesizer=NoText(llm=MockLLM())
    )
    response = await engine.aquery(QUESTION)
    assert [n.node.node_id for n in response.source_nodes] == [
        n.node.node_id for n in session.retriever(ACME, k=3).retrieve(QUESTION)
    ]


@pytest.mark.slow
def test_query_engine_returns_validated_claims(session: ThreadlineSession) -> None:
    engine = session.query_engine(ACME)
    response = engine.query(QUESTION)
    assert response.response
    assert response.source_nodes
    for item in response.source_nodes:
        meta = item.node.metadata
        assert meta["verdict"] == "supported"
        assert meta["spans"]
        assert meta["documents"]
        _round_trips(session, item.node)  # type: ignore[arg-type]
    claims = response.metadata["claims"] if response.metadata else []
    assert len(claims) >= len(response.source_nodes)


@pytest.mark.slow
async def test_tenants_stay_apart_through_the_retriever(session: ThreadlineSession) -> None:
    acme = await session.retriever(ACME).aretrieve("Journal of Psychotherapy Integration")
    globex = await session.retriever(GLOBEX).aretrieve("Journal of Psychotherapy Integration")
    acme_docs = {n.node.metadata["document_id"] for n in acme}
    globex_docs = {n.node.metadata["document_id"] for n in globex}
    assert globex_docs
    assert acme_docs.isdisjoint(globex_docs)
    assert all("Globex" in n.node.get_content() for n in globex)
    nobody = await session.retriever(Access(tenant="initech")).aretrieve("Journal")
    assert nobody == []
    response = await session.query_engine(GLOBEX).aquery(QUESTION)
    for item in response.source_nodes:
        assert {d["document_id"] for d in item.node.metadata["documents"]} <= globex_docs


async def test_retriever_on_an_async_threadline(settings: Settings, small_corpus: Path) -> None:
    async with await Threadline.open(settings) as tl:
        await tl.ingest(tl.read([small_corpus]))
        retriever = ThreadlineRetriever(tl, k=3)
        nodes = await retriever.aretrieve("Journal of Psychotherapy Integration")
        assert nodes
        with pytest.raises(InputError, match="ThreadlineSession"):
            retriever.retrieve("anything")
        engine = ThreadlineQueryEngine(tl)
        response = await engine.aquery("Journal of Psychotherapy Integration publisher")
        assert response.response


def test_cli_reads_through_llamaindex(tmp_path: Path) -> None:
    files = _files(tmp_path / "in")
    runner = CliRunner()
    data = str(tmp_path / "data")
    ingested = runner.invoke(
        app, ["ingest", str(files["pdf"]), "--reader", "llamaindex", "--data-dir", data]
    )
    assert ingested.exit_code == 0, ingested.output
    asked = runner.invoke(
        app, ["ask", "Who designed the Analytical Engine?", "--data-dir", data, "--json"]
    )
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout.strip().splitlines()[-1])
    pages = {s["page"] for c in answer["claims"] for s in c["spans"]}
    assert pages == {"2"}
    human = runner.invoke(app, ["ask", "Who designed the Analytical Engine?", "--data-dir", data])
    assert ", page 2" in human.stdout
    wrong = runner.invoke(
        app, ["ingest", str(files["pdf"]), "--reader", "tika", "--data-dir", data]
    )
    assert wrong.exit_code != 0
