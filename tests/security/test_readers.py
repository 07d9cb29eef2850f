"""Readers that cannot be stalled, and uploads that cannot reach outside their folder.

Every reader (built-in and LlamaIndex: Markdown, plain text, HTML, JSONL, PDF, DOCX) and
the text steps after it (sentence splitting, keyword tokens) get pathological inputs at
two sizes; each must finish quickly and in time roughly linear in its size. A timer
signal cuts off a reader that backtracks (the regular expression engine checks signals),
so a stall fails within seconds instead of hanging the suite. Over real HTTP, the health
endpoint answers while a pathological Markdown upload is ingested, and bad uploads get a
400 that names the file and never shows a server path.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest

from engine.keys import KeyStore
from engine.llamaindex import read_with_llamaindex
from engine.readers import read_paths
from engine.settings import Settings
from extractors.chunker import split_sentences
from extractors.sparse import tokenize
from graph import InputError
from tests.documents import pdf_bytes, write_docx
from tests.servers import running_api, wait_job

pytestmark = pytest.mark.security

#: The larger input may take at most this much longer than the one a quarter its size
#: (linear is 4x; quadratic is 16x).
MAX_RATIO = 12.0
#: Times under this are noise, not a measure of growth.
FLOOR = 0.02
#: No single read may take longer, even on a loaded two-core machine.
LIMIT = 6.0
BASE = 20_000


class ReaderStalledError(BaseException):
    """A reader ran past :data:`LIMIT` (a BaseException, so no reader library's
    ``except Exception`` can swallow it)."""


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise ReaderStalledError


def _timed(run: Callable[[], object]) -> float:
    """Seconds ``run`` takes; cut off (and failed) after :data:`LIMIT`."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    start = time.perf_counter()
    try:
        run()
    except ReaderStalledError:
        pytest.fail(f"still running after {LIMIT:.0f} s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- inputs

TEXTS: dict[str, Callable[[int], str]] = {
    "title-spaces": lambda n: "# b" + " " * n + "y\nText.",
    "title-hashes": lambda n: "# a" + " #" * n + " b\nText.",
    "many-hashes": lambda n: "#" * n + " x\nText.",
    "open-brackets": lambda n: "[" * n + "](\nText.",
    "links-unclosed": lambda n: "[a](" * n + "\nText.",
    "images": lambda n: "![" * n + "]( x\nText.",
    "angles": lambda n: "Text.\n" + "<" * n,
    "spaces": lambda n: "x" + " " * n + "y.",
    "newline-spaces": lambda n: "x.\n" + " " * n + "y.",
    "huge-line": lambda n: "word. " * n,
    "closers": lambda n: "End." + ")" * n + " x",
    "dots": lambda n: "a." * n + " B",
}
HTML: dict[str, Callable[[int], str]] = {
    "deep-div": lambda n: "<html><body>" + "<div>" * n + "deep text" + "</div>" * n,
    "deep-blockquote": lambda n: "<body>" + "<blockquote>" * n + "deep text",
    "open-li": lambda n: "<body>" + "<li>item " * n,
    "unterminated-attr": lambda n: "<body><p>text</p>" + "<a href='" * n,
    "unterminated-comment": lambda n: "<body><p>text</p>" + "<!--" * n,
    "angles": lambda n: "<body><p>text " + "<" * n,
    "formatting": lambda n: "<body><p>" + "<b><i>" * n + "text" + "</p>" * n,
    "title-spaces": lambda n: "<title>" + " " * n + "t</title><body><h1># b" + " " * n + "y</h1>",
}


@dataclass(frozen=True)
class Case:
    reader: str  # builtin | llamaindex | sentences | tokens
    suffix: str
    make: Callable[[int], str | bytes]
    scale: int = 1  # a divisor of BASE, for formats whose writers are slow

    def write(self, folder: Path, n: int) -> Path:
        path = folder / f"case-{n}{self.suffix}"
        if self.suffix == ".docx":
            text = str(self.make(n))
            return write_docx(path, [(text[:n], [text])])
        data = self.make(n)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path


def _cases() -> Iterator[Any]:
    for name, make in TEXTS.items():
        for reader in ("builtin", "llamaindex"):
            for suffix in (".md", ".txt"):
                yield pytest.param(Case(reader, suffix, make), id=f"{reader}{suffix}-{name}")
        yield pytest.param(Case("sentences", "", make), id=f"sentences-{name}")
        yield pytest.param(Case("tokens", "", make), id=f"tokens-{name}")
        yield pytest.param(
            Case("builtin", ".jsonl", lambda n, m=make: json.dumps({"text": m(n)})),
            id=f"builtin.jsonl-{name}",
        )
    for name, make in HTML.items():
        for reader in ("builtin", "llamaindex"):
            yield pytest.param(Case(reader, ".html", make), id=f"{reader}.html-{name}")
    nested = Case("builtin", ".jsonl", lambda n: '{"text": "x", "deep": ' + "[" * n + "\n")
    yield pytest.param(nested, id="builtin.jsonl-nested-brackets")
    for reader in ("builtin", "llamaindex"):
        for name in ("title-spaces", "open-brackets", "angles"):
            make = TEXTS[name]
            yield pytest.param(
                Case(reader, ".pdf", lambda n, m=make: pdf_bytes([m(n).replace("\n", " ")]), 4),
                id=f"{reader}.pdf-{name}",
            )
            yield pytest.param(Case(reader, ".docx", make, 4), id=f"{reader}.docx-{name}")


def _read(case: Case, path: Path, text: str) -> object:
    """Run the reader; a clear InputError is an acceptable outcome, anything else is not."""
    try:
        if case.reader == "builtin":
            return list(read_paths([path], max_bytes=50_000_000))
        if case.reader == "llamaindex":
            return list(read_with_llamaindex([path], max_bytes=50_000_000))
        if case.reader == "sentences":
            return list(split_sentences(text))
        return tokenize(text)
    except InputError as exc:
        return exc


@pytest.mark.parametrize("case", list(_cases()))
def test_reader_time_is_linear_in_input_size(case: Case, tmp_path: Path) -> None:
    times = []
    for n in (BASE // case.scale, 4 * BASE // case.scale):
        path = case.write(tmp_path, n) if case.suffix else tmp_path
        made = case.make(n)
        text = made if isinstance(made, str) else ""
        outcome: list[object] = []
        times.append(_timed(lambda p=path, t=text, o=outcome: o.append(_read(case, p, t))))
        if isinstance(outcome[0], InputError):  # refusing is fine when it names the file
            assert path.name in str(outcome[0])
    small, large = times
    if large / max(small, FLOOR) >= MAX_RATIO:
        # one slow read can be a pause of the machine; a super-linear reader is slow on
        # every read, so the larger input is read once more and the faster time counts
        again: list[object] = []
        large = min(large, _timed(lambda o=again: o.append(_read(case, path, text))))
    assert large < LIMIT, f"{large:.1f} s"
    assert large / max(small, FLOOR) < MAX_RATIO, f"{small:.3f} s then {large:.3f} s at 4x"


def test_deep_html_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    path.write_text(HTML["deep-div"](5000), encoding="utf-8")
    for read in (read_paths, read_with_llamaindex):
        with pytest.raises(InputError, match="nests elements more than 256 deep"):
            list(read([path], max_bytes=10_000_000))


def test_the_reported_markdown_title_finishes_at_once(tmp_path: Path) -> None:
    path = tmp_path / "slow.md"
    path.write_text("# b" + " " * 2000 + "y", encoding="utf-8")
    found: list[Any] = []
    took = _timed(lambda: found.extend(read_paths([path], max_bytes=1_000_000)))
    assert took < 0.5
    assert found[0].title == "b" + " " * 2000 + "y"


def test_markdown_titles_and_sections_keep_their_meaning(tmp_path: Path) -> None:
    titled = tmp_path / "titled.md"
    titled.write_text(
        "Intro.\n\n## Not a title\n\n#No title\n\n# The Engine ##\n", encoding="utf-8"
    )
    (builtin,) = read_paths([titled], max_bytes=1_000_000)
    assert builtin.title == "The Engine"
    path = tmp_path / "doc.md"
    path.write_text(
        "# The Engine\n\nSee [the notes](n.md) and ![a diagram](d.png) <b>now</b>.\n\n"
        "## Parts\n\nGears.\n\n```\n# not a heading\n```\n",
        encoding="utf-8",
    )
    (sectioned,) = read_with_llamaindex([path], max_bytes=1_000_000)
    assert "See the notes and a diagram now." in sectioned.text
    assert "# not a heading" in sectioned.text
    # LlamaIndex's splitting: a deeper heading extends the open section's heading path.
    assert [s.heading for s in sectioned.sections] == ["The Engine / Parts"]


# ---------------------------------------------------------------------------- over HTTP


@dataclass
class Server:
    base: str
    data_dir: Path
    secret: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.secret}"}, timeout=120
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("readers") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )

    async def make_key() -> str:
        store = await KeyStore.open(data_dir / "keys.sqlite")
        try:
            return (await store.create(tenant="acme")).secret
        finally:
            await store.close()

    secret = asyncio.run(make_key())
    with running_api(config) as base:
        yield _warmed(Server(base, data_dir, secret))


def _warmed(running: Server) -> Server:
    with running.client() as client:  # models load on the first ingest, not during a test
        warm = client.post(
            "/v1/documents", json={"documents": [{"id": "warm", "text": "Ada Lovelace."}]}
        )
        assert wait_job(client, warm.json()["id"])["status"] == "succeeded"
    return running


def _no_server_paths(server: Server, body: str) -> None:
    for secret_path in (str(server.data_dir), tempfile.gettempdir() + "/", "threadline-upload-"):
        assert secret_path not in body, body


@pytest.mark.parametrize("reader", ["builtin", "llamaindex"])
def test_health_answers_while_a_pathological_upload_is_ingested(
    server: Server, reader: str
) -> None:
    markdown = (
        "# b" + " " * 2000 + "y\n\n" + "[a](" * 3000 + "\n\n" + "<" * 3000 + "\n\n"
        "Ada Lovelace wrote the first program for the Analytical Engine.\n"
    )
    # Answer times, not request latencies: a thread holding the interpreter stalls the
    # polling thread anywhere in its loop, so the gaps between answers are what shows it.
    answered: list[float] = []
    statuses: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=server.base, timeout=120) as anonymous:
            while not done.is_set():
                statuses.add(anonymous.get("/v1/health/live").status_code)
                answered.append(time.monotonic())
                time.sleep(0.02)

    poller = threading.Thread(target=poll)
    with server.client() as client:
        poller.start()
        try:
            while len(answered) < 2:  # the server answers before the upload arrives
                time.sleep(0.01)
            job = client.post(
                "/v1/documents/upload",
                files=[("files", (f"slow-{reader}.md", markdown.encode()))],
                data={"reader": reader},
            )
            assert job.status_code == 202, job.text
            state = wait_job(client, job.json()["id"])
            answered.append(time.monotonic())  # a stall at the very end counts too
        finally:
            done.set()
            poller.join(timeout=120)
    assert state["status"] == "succeeded", state
    assert statuses == {200}
    assert len(answered) > 1, "the health endpoint was never asked"
    gap = max(b - a for a, b in itertools.pairwise(answered))
    assert gap < 2.0, f"the health endpoint went {gap:.1f} s without answering"


BAD_UPLOADS = [
    pytest.param("../escape.txt", b"Ada Lovelace.", "not a plain file name", id="dot-dot"),
    pytest.param("/etc/passwd.txt", b"Ada Lovelace.", "not a plain file name", id="absolute"),
    pytest.param("a\\..\\b.txt", b"Ada Lovelace.", "not a plain file name", id="backslash"),
    pytest.param("..", b"Ada Lovelace.", "not a plain file name", id="only-dots"),
    pytest.param("tool.exe", b"MZ\x90\x00", "unsupported file type .exe", id="suffix"),
    pytest.param("README", b"Ada Lovelace.", "unsupported file type (none)", id="no-suffix"),
    pytest.param("empty.txt", b"", "the file is empty", id="empty"),
    pytest.param("blank.md", b" \n\n ", "the file is empty", id="blank"),
    pytest.param("junk.txt", bytes(range(256)) * 8, "binary file", id="binary-text"),
    pytest.param("junk.html", b"\x00\x01<p>x</p>", "binary file", id="binary-html"),
    pytest.param("junk.jsonl", b'{"text": "a"}\x00\x00', "binary file", id="binary-jsonl"),
    pytest.param("junk.pdf", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a PDF", id="binary-pdf"),
    pytest.param("junk.docx", b"%PDF-1.4 not a zip", "not a DOCX", id="binary-docx"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_UPLOADS)
def test_bad_uploads_are_refused_with_a_clear_message(
    server: Server, name: str, data: bytes, message: str
) -> None:
    with server.client() as client:
        before = client.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        answer = client.post("/v1/documents/upload", files=[("files", (name, data))])
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_input"
        assert message in answer.json()["message"]
        _no_server_paths(server, answer.text)
        after = client.get("/v1/documents", params={"limit": 1000}).json()["documents"]
    assert after == before


def test_an_upload_without_a_file_name_is_refused(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/v1/documents/upload", files=[("files", ("", b"Ada Lovelace."))])
    assert 400 <= answer.status_code < 500, answer.text
    assert "files" in answer.text
    _no_server_paths(server, answer.text)


def test_a_jsonl_upload_is_named_by_its_file(server: Server) -> None:
    lines = [
        json.dumps({"text": "Grace Hopper wrote the first compiler."}),
        json.dumps({"id": "hopper-2", "text": "Grace Hopper served in the Navy."}),
    ]
    with server.client() as client:
        job = client.post(
            "/v1/documents/upload",
            files=[("files", ("hopper.jsonl", "\n".join(lines).encode()))],
        )
        assert job.status_code == 202, job.text
        state = wait_job(client, job.json()["id"])
        assert state["status"] == "succeeded", state
        docs = [client.get(f"/v1/documents/{d}") for d in state["report"]["document_ids"]]
        assert {d.json()["source"] for d in docs} == {"hopper.jsonl#1", "hopper-2"}
        for body in (job.text, json.dumps(state), *(d.text for d in docs)):
            _no_server_paths(server, body)
        # The LlamaIndex readers do not read JSONL: refused before a job starts.
        refused = client.post(
            "/v1/documents/upload",
            files=[("files", ("hopper.jsonl", lines[0].encode()))],
            data={"reader": "llamaindex"},
        )
        assert refused.status_code == 400
        assert "unsupported file type .jsonl" in refused.json()["message"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.jsonl", b'{"text": "ok"}\n{"text": \n', "malformed JSON"),
        ("deep.jsonl", b'{"text": "x", "d": ' + b"[" * 100_000 + b"\n", "nests"),
        ("deep.html", ("<body>" + "<div>" * 5000 + "x").encode(), "nests elements"),
        ("broken.pdf", b"%PDF-1.4 nothing else", "cannot read the PDF"),
    ],
)
def test_unreadable_uploads_fail_their_job_naming_only_the_file(
    server: Server, name: str, data: bytes, message: str
) -> None:
    with server.client() as client:
        job = client.post("/v1/documents/upload", files=[("files", (name, data))])
        assert job.status_code == 202, job.text
        state = wait_job(client, job.json()["id"])
    assert state["status"] == "failed"
    assert state["error"]["error"] == "invalid_input"
    assert state["error"]["message"].startswith(f"{name}")
    assert message in state["error"]["message"]
    _no_server_paths(server, json.dumps(state))
