"""The walls, walked as an attacker with several keys would: every read surface, every string.

Two tenants and two groups of one tenant ingest memos (not entity-titled pages) whose
names, acronyms and words overlap. Each key walks every read path — the HTTP API, the
agent tools (what MCP serves), the LlamaIndex retriever and the CLI with ``--tenant`` /
``--group`` — and no string that only an unreadable memo states may appear anywhere in
what comes back: ids, names, aliases, titles, text, answers, claims.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.readers import SourceDocument
from engine.settings import Settings
from engine.threadline import Threadline
from engine.tools import ThreadlineToolbox
from graph import Access
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parents[2]

#: (tenant, groups, source, title, text, strings only this memo states)
MEMOS: list[tuple[str, tuple[str, ...], str, str, str, tuple[str, ...]]] = [
    (
        "bravo",
        (),
        "bravo-memo-1",
        "memo 0041",
        "Zorblax Quantum Holdings (ZQH) will acquire Plinth Robotics, according to Ondrea "
        "Vask. Ondrea Vask chairs the Zorblax Quantum Holdings board in Kestrelford.",
        ("zorblax", "ondrea", "vask", "memo 0041"),
    ),
    (
        "acme",
        (),
        "acme-note-1",
        "weekly note 12",
        "A spokesperson for ZQH said the Plinth Robotics deal was on track. Helios Partners "
        "advised the buyer in Kestrelford.",
        ("spokesperson", "helios", "weekly note 12"),
    ),
    (
        "acme",
        ("g1",),
        "acme-note-2",
        "counsel update",
        "Helios Partners (HPX) hired Marlow Fenwick as chief counsel. Marlow Fenwick "
        "previously worked for Quintrell Mining in Aldergate.",
        ("hpx", "marlow", "fenwick", "quintrell", "aldergate", "counsel update"),
    ),
    (
        "acme",
        ("g2",),
        "acme-note-3",
        "settlement file",
        "Helios Partners, known internally as Project Quillon, settled with Brantley Oakes. "
        "Brantley Oakes lives in Varnhollow.",
        ("quillon", "brantley", "oakes", "varnhollow", "settlement file"),
    ),
]

#: Reader name -> (tenant, groups)
READERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "acme": ("acme", ()),
    "acme-g1": ("acme", ("g1",)),
    "acme-g2": ("acme", ("g2",)),
    "bravo": ("bravo", ()),
}

QUESTIONS = [
    "Who will acquire Plinth Robotics?",
    "Who did Helios Partners hire as chief counsel?",
    "Who settled with Helios Partners?",
    "What is ZQH?",
    "Where does Brantley Oakes live?",
]


def _access(reader: str) -> Access:
    tenant, groups = READERS[reader]
    return Access(tenant=tenant, groups=frozenset(groups))


def _forbidden(reader: str) -> set[str]:
    """Strings the reader's key must never see."""
    access = _access(reader)
    hidden: set[str] = set()
    for memo_tenant, memo_groups, *_, unique in MEMOS:
        if not access.can_read(memo_tenant, memo_groups or ("*",)):
            hidden |= set(unique)
    return hidden


def _leaks(reader: str, payload: Any, asked: str = "") -> list[str]:
    """Forbidden strings in ``payload``, except those the caller itself wrote in ``asked``
    (a question naming a hidden name is echoed back; that reveals nothing)."""
    text = (payload if isinstance(payload, str) else json.dumps(payload)).casefold()
    return sorted(s for s in _forbidden(reader) if s in text and s not in asked.casefold())


def _readable(reader: str) -> set[str]:
    access = _access(reader)
    return {
        source
        for memo_tenant, memo_groups, source, *_ in MEMOS
        if access.can_read(memo_tenant, memo_groups or ("*",))
    }


# ---------------------------------------------------------------------------- HTTP API


@dataclass
class Server:
    base: str
    keys: dict[str, str]
    jobs: dict[str, str]  # reader -> a job id it started

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=120
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("walls") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            **{n: {"tenant": t, "groups": g} for n, (t, g) in READERS.items()},
            "admin": {"tenant": None, "admin": True},
        },
    )
    with running_api(config) as base:
        yield _ingested(Server(base, keys, {}))


def _ingested(running: Server) -> Server:
    writers = {("acme", ()): "acme", ("acme", ("g1",)): "acme-g1", ("acme", ("g2",)): "acme-g2"}
    writers[("bravo", ())] = "bravo"
    for tenant, groups, source, title, text, _ in MEMOS:
        writer = writers[(tenant, groups)]
        with running.client("admin") as admin:
            job = admin.post(
                "/v1/documents",
                json={
                    "tenant": tenant,
                    "groups": list(groups),
                    "documents": [{"id": source, "title": title, "text": text}],
                },
            )
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            state = wait_job(admin, job_id)
            assert state["status"] == "succeeded", state
        running.jobs[writer] = job_id
    return running


def _walk_api(server: Server, reader: str) -> list[tuple[str, Any]]:
    """Every read endpoint as ``reader``: (what was asked, the JSON answered)."""
    seen: list[tuple[str, Any]] = []
    with server.client(reader) as client:

        def get(path: str, **params: Any) -> Any:
            response = client.get(path, params=params)
            assert response.status_code < 500, (path, response.text)
            seen.append((f"GET {path} {params}", response.json()))
            return response.json()

        def post(path: str, body: dict[str, Any]) -> Any:
            response = client.post(path, json=body)
            assert response.status_code < 500, (path, response.text)
            seen.append((f"POST {path} {body}", response.json()))
            return response.json()

        documents = get("/v1/documents", limit=100)["documents"]
        assert {d["source"] for d in documents} == _readable(reader)
        for doc in documents:
            get(f"/v1/documents/{doc['id']}")
        entities = get("/v1/entities", q="", limit=200)["entities"]
        for probe in ("zorblax", "zqh", "hpx", "quillon", "helios", "marlow", "oakes", "vask"):
            get("/v1/entities", q=probe)
        for entity in entities:
            get(f"/v1/entities/{entity['id']}")
            get(f"/v1/entities/{entity['id']}/neighborhood", depth=2)
        for a, b in itertools.pairwise(entities):
            get("/v1/paths", source=a["id"], target=b["id"])
        for community in get("/v1/communities", limit=500)["communities"]:
            get(f"/v1/communities/{community['id']}")
        for question in QUESTIONS:
            for mode in ("threadline", "single", "dense"):
                post("/v1/ask", {"question": question, "mode": mode, "unsupported": True})
            post("/v1/search", {"query": question, "k": 10})
        seen += _walk_jobs(server, client, reader)
    return seen


def _walk_jobs(server: Server, client: httpx.Client, reader: str) -> list[tuple[str, Any]]:
    """Every job, fetched as ``reader``: a job writing what it may not read is a 404."""
    seen = []
    for owner, job_id in server.jobs.items():
        response = client.get(f"/v1/jobs/{job_id}")
        seen.append((f"GET job of {owner}", response.json()))
        owner_tenant, owner_groups = READERS[owner]
        if not _access(reader).can_read(owner_tenant, owner_groups or ("*",)):
            assert response.status_code == 404, (reader, owner, response.text)
    return seen


@pytest.mark.parametrize("reader", sorted(READERS))
def test_api_reads_leak_no_string(server: Server, reader: str) -> None:
    for asked, answered in _walk_api(server, reader):
        leaked = _leaks(reader, answered, asked)
        assert not leaked, (asked, leaked, answered)


# ---------------------------------------------------------------------------- Python surfaces


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("walls-py") / "data"

    async def build() -> None:
        async with await Threadline.open(Settings(data_dir=path)) as tl:
            for tenant, groups, source, title, text, _ in MEMOS:
                memo = SourceDocument(source=source, title=title, text=text, origin=source)
                await tl.ingest([memo], tenant=tenant, groups=groups)

    asyncio.run(build())
    return path


@pytest.mark.parametrize("reader", sorted(READERS))
async def test_agent_tools_and_retriever_leak_no_string(data_dir: Path, reader: str) -> None:
    from engine.llamaindex import ThreadlineRetriever

    tenant, groups = READERS[reader]
    access = Access(tenant=tenant, groups=frozenset(groups))
    async with await Threadline.open(Settings(data_dir=data_dir)) as tl:
        box = ThreadlineToolbox(tl, access)
        entities = await tl.browse(access).entities(limit=100)
        calls: list[tuple[str, dict[str, Any]]] = []
        for question in QUESTIONS:
            calls += [("ask", {"question": question}), ("search", {"query": question})]
        for probe in ("Zorblax Quantum Holdings", "ZQH", "HPX", "Project Quillon", "Helios"):
            calls += [("entity", {"name": probe}), ("facts", {"name": probe})]
            calls += [("neighborhood", {"name": probe, "depth": 2})]
        for a, b in itertools.pairwise(entities):
            calls.append(("paths", {"source": a.id, "target": b.id}))
        for name, args in calls:
            result = await box.call_json(name, args)
            leaked = _leaks(reader, result, json.dumps(args))
            assert not leaked, (name, args, leaked, result)
        retriever = ThreadlineRetriever(tl, access=access, k=10)
        for question in QUESTIONS:
            nodes = await retriever.aretrieve(question)
            dumped = [{"text": n.node.get_content(), "meta": n.node.metadata} for n in nodes]
            assert not _leaks(reader, dumped, question), (question, dumped)


@pytest.mark.subprocess
@pytest.mark.parametrize("reader", sorted(READERS))
def test_cli_reads_leak_no_string(data_dir: Path, reader: str) -> None:
    tenant, groups = READERS[reader]
    scope = ["--tenant", tenant, *[a for g in groups for a in ("--group", g)]]

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "engine", *args, "--data-dir", str(data_dir), *scope],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
            check=False,
        )
        return proc.stdout + proc.stderr

    outputs = [("", run("documents", "--json")), ("", run("entities", "--json"))]
    outputs.append(("", run("stats", "--json")))
    for probe in ("ZQH", "Helios Partners"):
        outputs.append((probe, run("neighbors", probe, "--json")))
    for question in QUESTIONS[:3]:
        outputs.append((question, run("ask", question, "--json")))
    for asked, output in outputs:
        assert not _leaks(reader, output, asked), (_leaks(reader, output, asked), output)
