"""Redaction: a caller without the ``pii`` permission finds no planted personal data in
anything Threadline hands out or keeps; a caller with it reads the values as stored.

The planted corpus (:mod:`tests.privacy.corpus`) is ingested once for tenant ``acme``;
tenant ``bravo`` ingests a text holding one of acme's values without the context that
makes it personal data. Every read path is walked: the Python-facing ones (agent tools,
MCP tools, notebook tables, the CLI's read commands in process), then the HTTP API
(documents, entities, neighbourhoods, paths, communities, search, ask as JSON and as
Server-Sent Events, verify, feedback, usage) with keys with and without ``pii``. Log
lines, the audit log, the usage and feedback files and every other file of the data dir
but the stores that hold the documents must not hold a raw value either.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic_core import to_jsonable_python
from typer.testing import CliRunner

from engine.cli import app as cli
from engine.frames import to_dataframe
from engine.mcp_server import build_server
from engine.readers import SourceDocument
from engine.redaction import RAW, StreamMasker, redactor_for
from engine.settings import Settings
from engine.telemetry import JsonFormatter, PiiFilter
from engine.threadline import Threadline
from engine.tools import ThreadlineToolbox
from extractors.privacy import PII_TYPES, mask_value
from graph import Access
from tests.privacy import corpus
from tests.servers import create_keys, running_api

pytestmark = pytest.mark.privacy

ACME = Access(tenant="acme")
BRAVO = Access(tenant="bravo")
#: Every planted value.
VALUES = tuple(v for found in corpus.PLANTED.values() for v, _ in found)
#: bravo's own text: acme's account number with nothing around it that makes it one.
BRAVO_TEXT = f"The shipment reference {corpus.ACCOUNT} was filed on Friday by the depot."
BRAVO_DOC = SourceDocument(
    source="bravo-note", title="Depot note", text=BRAVO_TEXT, origin="tests/privacy"
)
QUESTIONS = (
    "What is Marta Keller's work e-mail?",
    "What is the home address of Marta Keller?",
    "What card number did Finance refund the registration fee to?",
    "Where did Priya Shah's laptop connect from?",
)
#: Inputs that carry a planted value: a caller must not confirm a guess through them.
GUESSES = (corpus.EMAIL, corpus.PHONE, corpus.IBAN)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _raw(value: Any) -> list[str]:
    """The planted values ``value`` holds, whatever its shape."""
    text = _text(value)
    return [v for v in VALUES if v in text]


def _masks(value: Any) -> bool:
    return any(f"[{label}]" in _text(value) for label in PII_TYPES.values())


def _settings(data_dir: Path) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "extraction": {"chunk_chars": 400},
            "api": {"rate_per_minute": 100_000, "burst": 10_000},
        }
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("redaction") / "data"

    async def build() -> None:
        async with await Threadline.open(_settings(path)) as tl:
            await tl.ingest(corpus.DOCUMENTS, tenant="acme")
            await tl.ingest([BRAVO_DOC], tenant="bravo")

    asyncio.run(build())
    return path


# ---------------------------------------------------------------------------- in process


async def test_stored_text_keeps_the_values_and_redaction_masks_them(data_dir: Path) -> None:
    async with await Threadline.open(_settings(data_dir)) as tl:
        docs = await tl.browse(ACME).documents(limit=10)
        assert set(VALUES) <= {v for d in docs for v in VALUES if v in d.text}
        shown = await redactor_for(tl, ACME)
        masked = shown.scrub(docs)
        assert not _raw(masked)
        for doc, seen in zip(docs, masked, strict=True):
            # Masks keep lengths: every offset into the text still holds.
            assert len(seen.text) == len(doc.text)
            for value in VALUES:
                at = doc.text.find(value)
                if at >= 0:
                    assert seen.text[at : at + len(value)].startswith("[")
        assert await redactor_for(tl, ACME, pii=True) is RAW
        assert RAW.scrub(docs) == docs


async def test_masking_reveals_nothing_across_tenants(data_dir: Path) -> None:
    """bravo's text holds acme's account number without context: it is not masked for
    bravo (masking it would tell bravo that some other scope holds it as personal data),
    and bravo's masks hold none of acme's values."""
    async with await Threadline.open(_settings(data_dir)) as tl:
        bravo = await redactor_for(tl, BRAVO)
        (doc,) = await tl.browse(BRAVO).documents(limit=10)
        assert bravo.scrub(doc).text == BRAVO_TEXT
        assert await tl.graph.pii_values(BRAVO, tl.settings.privacy.redacted) == []
        acme = await redactor_for(tl, ACME)
        assert corpus.ACCOUNT not in acme.text(BRAVO_TEXT)
        # bravo cannot find acme's data through its own reads either.
        hits = await tl.retrieve(corpus.ACCOUNT, BRAVO, k=10)
        sources = await tl.browse(BRAVO).sources(hits.evidence)
        assert {s.document.tenant for s in sources} <= {"bravo"}


async def test_extractive_answers_keep_offsets_when_masked(data_dir: Path) -> None:
    async with await Threadline.open(_settings(data_dir)) as tl:
        shown = await redactor_for(tl, ACME)
        masked_any = False
        for question in QUESTIONS:
            answer = await tl.ask(question, ACME, llm=False)
            seen = shown.scrub(answer)
            assert not _raw(seen), (question, _raw(seen))
            assert len(seen.answer) == len(answer.answer)
            for claim, shown_claim in zip(answer.claims, seen.claims, strict=True):
                assert len(shown_claim.text) == len(claim.text)
                for span, shown_span in zip(claim.spans, shown_claim.spans, strict=True):
                    assert (shown_span.start, shown_span.end) == (span.start, span.end)
                    assert len(shown_span.text) == len(span.text)
                    masked_any |= shown_span.text != span.text
            # The answer was validated on the stored text: verdicts are the same.
            assert [c.verdict for c in seen.claims] == [c.verdict for c in answer.claims]
        assert masked_any, "no answer cited a span holding a planted value"


async def test_agent_tools_and_mcp_mask_without_pii(data_dir: Path) -> None:
    async with await Threadline.open(_settings(data_dir)) as tl:
        names = [e.name for e in await tl.browse(ACME).entities(limit=30)]
        calls: list[tuple[str, dict[str, Any]]] = []
        for question in (*QUESTIONS, *GUESSES):
            calls += [("ask", {"question": question}), ("search", {"query": question, "k": 10})]
        for name in ["Marta Keller", "Priya Shah", *GUESSES, *names[:6]]:
            calls += [("entity", {"name": name}), ("facts", {"name": name})]
            calls.append(("neighborhood", {"name": name, "depth": 2}))
        calls += [("paths", {"source": "Marta Keller", "target": "Daniel Ortiz"})]
        calls += [("communities", {"limit": 10})]
        box = ThreadlineToolbox(tl, ACME)
        raw_box = ThreadlineToolbox(tl, ACME, pii=True)
        shown = []
        unmasked = []
        for name, args in calls:
            result = await box.call_json(name, args)
            assert not _raw(result), (name, args, _raw(result))
            shown.append(result)
            unmasked.append(await raw_box.call_json(name, args))
        assert any(_masks(r) for r in shown)
        assert set(VALUES) - {corpus.ACCOUNT} <= set(_raw(unmasked))
        # Claims quoted from masked results still validate against the stored text.
        asked = await box.call("ask", {"question": QUESTIONS[0]})
        claims = list(getattr(asked, "claims", ()))
        assert claims
        checked = await box.validate(claims)
        assert [c.verdict for c in checked] == [c.verdict for c in claims]
        assert not _raw(checked)
        # MCP serves the same toolbox's results.
        server = build_server(box)
        for name, args in calls[:6]:
            result = await server.call_tool(name, args)
            assert not _raw(str(result)), (name, _raw(str(result)))


async def test_a_value_written_with_other_separators_is_masked_too(data_dir: Path) -> None:
    spaced = " ".join(corpus.ACCOUNT[i : i + 4] for i in range(0, len(corpus.ACCOUNT), 4))
    dotted = corpus.PHONE.replace("(", "").replace(") ", ".").replace("-", ".")
    compact = corpus.CARD.replace(" ", "")
    async with await Threadline.open(_settings(data_dir)) as tl:
        shown = await redactor_for(tl, ACME)
        for text in (spaced, dotted, compact, corpus.IBAN.replace(" ", "").lower()):
            masked = shown.text(f"Paid from {text} on Friday.")
            assert text not in masked, masked
            assert len(masked) == len(f"Paid from {text} on Friday.")
        assert shown.text("Invoice 2024-11 was paid.") == "Invoice 2024-11 was paid."


def _wrong(value: str) -> str:
    """``value`` with its last digit changed: a guess of the same shape that is wrong."""
    at = max(i for i, ch in enumerate(value) if ch.isdigit())
    return value[:at] + str((int(value[at]) + 1) % 10) + value[at + 1 :]


async def test_a_right_guess_and_a_wrong_one_come_back_alike(data_dir: Path) -> None:
    """Masking a guess only when the corpus holds it would confirm it: what a caller
    without ``pii`` sends is masked by shape, so a right and a wrong guess of the same
    shape give the same echo and the same results."""
    async with await Threadline.open(_settings(data_dir)) as tl:
        box = ThreadlineToolbox(tl, ACME)
        for value in (corpus.ACCOUNT, corpus.PASSPORT, corpus.ITIN, corpus.EMAIL):
            seen = []
            for guess in (value, _wrong(value) if value != corpus.EMAIL else "z" + value[1:]):
                found = await box.call_json("search", {"query": f"who uses {guess}", "k": 5})
                asked = await box.call_json("ask", {"question": f"Who uses {guess}?"})
                looked = await box.call_json("entity", {"name": guess})
                seen.append(
                    (
                        found["query"],
                        [h["chunk_id"] for h in found["chunks"]],
                        asked["question"],
                        asked["answer"],
                        looked.get("error", "").replace(guess, ""),
                    )
                )
                assert guess not in json.dumps(found) + json.dumps(asked)
            right, wrong = seen
            assert right[1:] == wrong[1:], value
            assert len(right[0]) == len(wrong[0])


async def test_llamaindex_retriever_and_query_engine_mask_without_pii(data_dir: Path) -> None:
    from llama_index.core.schema import QueryBundle

    from engine.llamaindex import ThreadlineQueryEngine, ThreadlineRetriever

    async with await Threadline.open(_settings(data_dir)) as tl:
        shown: list[Any] = []
        unmasked: list[Any] = []
        for question in QUESTIONS:
            bundle = QueryBundle(question)
            for pii, into in ((False, shown), (True, unmasked)):
                retriever = ThreadlineRetriever(tl, access=ACME, k=8, pii=pii)
                nodes = await retriever.aretrieve(bundle)
                into += [(n.node.get_content(), n.node.metadata) for n in nodes]
                engine = ThreadlineQueryEngine(tl, access=ACME, pii=pii)
                response = await engine.aquery(bundle)
                into.append((response.response, response.metadata))
                into += [(n.node.get_content(), n.node.metadata) for n in response.source_nodes]
        assert not _raw(shown), _raw(shown)
        assert _masks(shown)
        assert len(set(_raw(unmasked))) >= 3


async def test_notebook_tables_mask_by_default(data_dir: Path) -> None:
    async with await Threadline.open(_settings(data_dir)) as tl:
        hood = await tl.browse(ACME).neighborhood("Marta Keller", depth=2)
        answers = [await tl.ask(q, ACME, llm=False) for q in QUESTIONS]
        shown = await redactor_for(tl, ACME)
        tables = [to_dataframe(o).to_json() for o in (hood, *answers)]
        tables += [to_dataframe(o, redactor=shown).to_json() for o in (hood, *answers)]
        assert not [_raw(t) for t in tables if _raw(t)]
        assert any(_masks(t) for t in tables)
        opened = [to_dataframe(o, redactor=RAW).to_json() for o in (hood, *answers)]
        assert any(_raw(t) for t in opened)


def test_streamed_text_is_masked_a_line_at_a_time() -> None:
    from engine.redaction import Redactor, detector_for

    stream = StreamMasker(Redactor(detector=detector_for()))
    pieces = [
        stream.feed(p) for p in ("Write to marta.", "keller@northwind", "-logistics.com\nor ")
    ]
    pieces += [stream.feed("call (415) 555-"), stream.feed("0132"), stream.flush()]
    text = "".join(pieces)
    assert corpus.EMAIL not in text
    assert corpus.PHONE not in text
    assert text.startswith("Write to [EMAIL]")
    assert len(text) == len(f"Write to {corpus.EMAIL}\nor call {corpus.PHONE}")


def test_log_lines_are_masked() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(PiiFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("engine.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("question %s", f"who owns {corpus.EMAIL}?", extra={"text": corpus.IBAN})
        try:
            raise ValueError(f"bad card {corpus.CARD}")
        except ValueError:
            logger.exception("failed for %s", corpus.PHONE)
    finally:
        logger.removeHandler(handler)
    lines = buffer.getvalue()
    assert not _raw(lines), lines
    assert "[EMAIL]" in lines
    assert "[CARD]" in lines


# ---------------------------------------------------------------------------- CLI


def _cli(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_reads_mask_unless_asked(data_dir: Path) -> None:
    scope = ["--tenant", "acme"]
    commands = [
        ["documents", "--json"],
        ["documents"],
        ["entities", "--json", "--limit", "200"],
        ["entities", "--search", "@", "--json"],
        ["neighbors", "Marta Keller", "--depth", "2", "--json"],
        ["neighbors", "Marta Keller"],
        ["communities", "--json"],
        ["ask", QUESTIONS[0], "--json"],
        ["ask", QUESTIONS[1]],
        ["ask", f"Who has the e-mail {corpus.EMAIL}?", "--json"],
    ]
    masked = [_cli(data_dir, *c, *scope) for c in commands]
    for command, output in zip(commands, masked, strict=True):
        assert not _raw(output), (command, _raw(output))
    assert any(_masks(o) for o in masked)
    # The operator (no --tenant: every tenant) is masked too unless it asks.
    assert not _raw(_cli(data_dir, "neighbors", "Marta Keller", "--json"))
    opened = _cli(
        data_dir, "neighbors", "Marta Keller", "--depth", "2", "--json", "--permission", "pii"
    )
    asked = _cli(data_dir, "ask", QUESTIONS[1], "--json", "--permission", "pii", *scope)
    assert _raw(opened + asked)
    result = CliRunner().invoke(
        cli, ["documents", "--permission", "all", "--data-dir", str(data_dir)]
    )
    assert result.exit_code != 0
    assert "--permission takes pii" in result.output


def test_cli_verify_masks_claims_and_results(data_dir: Path, tmp_path: Path) -> None:
    text = corpus.HR_MEMO.text
    start = text.index(corpus.EMAIL)
    item = {
        "id": "guess",
        "claims": [
            {
                "text": f"Her work e-mail will be {corpus.EMAIL}.",
                "citations": [
                    {
                        "source": corpus.HR_MEMO.source,
                        "start": start,
                        "end": start + len(corpus.EMAIL),
                    }
                ],
            }
        ],
    }
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(item) + "\n")
    masked = _cli(data_dir, "verify", str(path), "--json", "--tenant", "acme")
    assert not _raw(masked), masked
    opened = _cli(
        data_dir, "verify", str(path), "--json", "--tenant", "acme", "--permission", "pii"
    )
    assert json.loads(opened)["claims"][0]["citations_valid"] is True


# ---------------------------------------------------------------------------- HTTP


@dataclass
class Api:
    base: str
    keys: dict[str, str]
    log: io.StringIO

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=300)


@pytest.fixture(scope="module")
def api(data_dir: Path) -> Iterator[Api]:
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            "reader": {"tenant": "acme"},
            "pii": {"tenant": "acme", "permissions": ["pii"]},
            "bravo": {"tenant": "bravo"},
            "admin": {"tenant": None, "admin": True},
        },
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(PiiFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with running_api(_settings(data_dir)) as base:
            yield Api(base, keys, buffer)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _sse(body: str) -> list[tuple[str, Any]]:
    events = []
    name = ""
    for line in body.splitlines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line.removeprefix("data:").strip())))
    return events


def _walk(api: Api, key: str) -> list[tuple[str, str]]:
    """Every read over HTTP as ``key``: (what, response body)."""
    seen: list[tuple[str, str]] = []
    with api.client(key) as http:

        def get(path: str, **params: Any) -> None:
            response = http.get(path, params=params)
            assert response.status_code in {200, 404}, (path, response.text)
            seen.append((path, response.text))

        def post(path: str, body: Any) -> httpx.Response:
            response = http.post(path, json=body)
            assert response.status_code in {200, 201}, (path, response.text)
            seen.append((path, response.text))
            return response

        get("/v1/documents", limit=100)
        for doc in http.get("/v1/documents").json()["documents"]:
            get(f"/v1/documents/{doc['id']}")
        get("/v1/entities", limit=500)
        for q in ("@", "Marta", corpus.EMAIL, "northwind-logistics", *GUESSES):
            get("/v1/entities", q=q, limit=100)
        for entity in http.get("/v1/entities", params={"limit": 40}).json()["entities"]:
            get(f"/v1/entities/{entity['id']}", mentions=100, facts=100)
            get(f"/v1/entities/{entity['id']}/neighborhood", depth=2)
        get("/v1/entities/Marta Keller/neighborhood", depth=2)
        get("/v1/paths", source="Marta Keller", target="Daniel Ortiz")
        get("/v1/communities")
        for question in (*QUESTIONS, *GUESSES):
            post("/v1/search", {"query": question, "k": 10})
            post("/v1/ask", {"question": question})
            streamed = http.post("/v1/ask", json={"question": question, "stream": True})
            assert streamed.status_code == 200, streamed.text
            events = _sse(streamed.text)
            assert [e for e, _ in events][-1] == "done", events
            seen.append(("/v1/ask stream", streamed.text))
        text = corpus.HR_MEMO.text
        start = text.index(corpus.EMAIL)
        post(
            "/v1/verify",
            {
                "id": "guess",
                "answer": corpus.EMAIL,
                "claims": [
                    {
                        "text": f"Her work e-mail will be {corpus.EMAIL}.",
                        "citations": [
                            {
                                "source": corpus.HR_MEMO.source,
                                "start": start,
                                "end": start + len(corpus.EMAIL),
                            }
                        ],
                    }
                ],
            },
        )
        post(
            "/v1/feedback",
            {
                "question": f"Who uses {corpus.EMAIL}?",
                "answer": f"Marta Keller, {corpus.PHONE}",
                "rating": 1,
                "comment": f"Wrong: her IBAN is {corpus.IBAN} and she lives at {corpus.ADDRESS}",
            },
        )
        get("/v1/usage")
        get("/v1/quotas")
    return seen


def test_http_reads_without_pii_hold_no_raw_value(api: Api) -> None:
    seen = _walk(api, "reader")
    leaks = [(what, _raw(body)) for what, body in seen if _raw(body)]
    assert not leaks, leaks
    assert any(_masks(body) for _, body in seen)
    # Masks keep offsets: a document's text is as long as stored, with masks where the
    # values sit.
    with api.client("reader") as http:
        docs = http.get("/v1/documents").json()["documents"]
        memo = next(d for d in docs if d["source"] == corpus.HR_MEMO.source)
        body = http.get(f"/v1/documents/{memo['id']}").json()
    at = corpus.HR_MEMO.text.index(corpus.EMAIL)
    assert len(body["text"]) == len(corpus.HR_MEMO.text)
    assert body["text"][at : at + len(corpus.EMAIL)] == mask_value(corpus.EMAIL, "EMAIL_ADDRESS")


def test_http_reads_with_pii_hold_the_values(api: Api) -> None:
    for key in ("pii", "admin"):
        with api.client(key) as http:
            docs = http.get("/v1/documents").json()["documents"]
            texts = "".join(http.get(f"/v1/documents/{d['id']}").text for d in docs)
            hits = http.post("/v1/search", json={"query": QUESTIONS[0], "k": 10}).text
        assert set(VALUES) <= set(_raw(texts)), key
        assert corpus.EMAIL in hits


def test_http_bravo_sees_its_own_text_and_no_acme_value(api: Api) -> None:
    seen = _walk(api, "bravo")
    bodies = "".join(body for _, body in seen)
    assert BRAVO_TEXT in bodies  # its own text, unmasked: nothing tells it acme holds it
    assert not [v for v in VALUES if v != corpus.ACCOUNT and v in bodies]


def test_nothing_at_rest_holds_a_raw_value(api: Api, data_dir: Path) -> None:
    """After the walks: logs, audit log, usage and feedback files, caches: nothing but the
    stores that hold the documents holds a planted value."""
    assert not _raw(api.log.getvalue()), _raw(api.log.getvalue())
    assert '"route"' in api.log.getvalue()  # the request log was captured
    stores = ("graph.sqlite", "journal.sqlite", "vectors")
    checked = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(data_dir).as_posix()
        if relative.startswith(stores):
            continue
        raw = path.read_bytes()
        held = [v for v in VALUES if v.encode() in raw]
        assert not held, (relative, held)
        checked.append(relative)
    assert {"audit.log", "feedback.sqlite", "usage.sqlite", "keys.sqlite"} <= set(checked)
