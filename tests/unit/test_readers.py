"""File readers: every supported format, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.readers import read_paths
from graph import InputError
from tests.documents import pdf_bytes

LIMIT = 1_000_000


def _read(*paths: Path, limit: int = LIMIT):
    return list(read_paths(list(paths), max_bytes=limit))


def test_text_markdown_and_html(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain text about Ada Lovelace.", encoding="utf-8")
    (tmp_path / "b.md").write_text(
        "Intro line\n\n# The Engine\n\nBabbage built it.", encoding="utf-8"
    )
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page</title><style>p{}</style><script>var x=1;</script></head>"
        "<body><h1>Heading</h1><p>First   paragraph.</p><p>Second.</p></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "skip.bin").write_bytes(b"\x00\x01")
    docs = {d.origin.rsplit("/", 1)[-1]: d for d in _read(tmp_path)}
    assert set(docs) == {"a.txt", "b.md", "c.html"}
    assert docs["a.txt"].title == "a"
    assert docs["b.md"].title == "The Engine"
    html = docs["c.html"]
    assert html.title == "Page"
    assert html.text == "Heading\nFirst paragraph.\nSecond."
    assert "var x" not in html.text


def test_jsonl_records_use_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"id": "p1", "title": "T1", "text": "One."})
        + "\n\n"
        + json.dumps({"text": "Two."})
        + "\n",
        encoding="utf-8",
    )
    docs = _read(path)
    assert (docs[0].source, docs[0].title, docs[0].text) == ("p1", "T1", "One.")
    assert docs[1].source.endswith("c.jsonl#3")
    assert docs[1].origin.endswith("c.jsonl:3")


def test_legacy_encodings_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("Café société in Zürich, façade and naïve résumé. ".encode("cp1252") * 5)
    (doc,) = _read(path)
    assert "Café société in Zürich" in doc.text
    utf16 = tmp_path / "u16.txt"
    utf16.write_text("Grüße aus Köln", encoding="utf-16")
    assert _read(utf16)[0].text == "Grüße aus Köln"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\t\n", "no text"),
        ("junk.txt", bytes(range(256)) * 40, "binary"),
        ("junk.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("bad.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("bad.docx", b"PK not a zip", "DOCX"),
        ("data.csv", b"a,b\n1,2\n", "unsupported file type"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        _read(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "text": "fine"', "malformed JSON"),
        ('["a", "b"]', "JSON object"),
        ('{"id": "x"}', '"text"'),
        ('{"id": "x", "text": "   "}', '"text"'),
        ('{"id": ["x"], "text": "ok"}', "string"),
        ('{"id": "x", "text": "caf\\u00e9"}\udcff', "UTF-8"),
    ],
)
def test_bad_jsonl_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "c.jsonl"
    good = json.dumps({"id": "ok", "text": "Fine."})
    path.write_bytes(
        (good + "\n" + good + "\n").encode() + line.encode("utf-8", "surrogateescape") + b"\n"
    )
    with pytest.raises(InputError, match=message) as info:
        _read(path)
    assert f"{path}:3:" in str(info.value)


def test_a_huge_single_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(b'{"id": "ok", "text": "fine"}\n{"id": "big", "text": "')
        chunk = b"x" * (1 << 20)
        for _ in range(50):
            handle.write(chunk)
        handle.write(b'"}\n')
    with pytest.raises(InputError, match="longer than") as info:
        _read(path, limit=10_000_000)
    assert f"{path}:2:" in str(info.value)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000, encoding="utf-8")
    with pytest.raises(InputError, match="document limit"):
        _read(path, limit=1000)


def test_missing_path_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        _read(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no supported files"):
        _read(tmp_path / "empty")


def test_docx_and_pdf(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Ada Lovelace wrote the first program.")
    document.add_paragraph("Charles Babbage designed the engine.")
    document.save(str(tmp_path / "notes.docx"))
    (doc,) = _read(tmp_path / "notes.docx")
    assert (
        doc.text == "Ada Lovelace wrote the first program.\n\nCharles Babbage designed the engine."
    )

    (tmp_path / "paper.pdf").write_bytes(_tiny_pdf("Grace Hopper wrote compilers."))
    (pdf,) = _read(tmp_path / "paper.pdf")
    assert "Grace Hopper wrote compilers." in pdf.text


def _tiny_pdf(text: str) -> bytes:
    return pdf_bytes([text])
