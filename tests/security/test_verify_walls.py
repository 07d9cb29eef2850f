"""Verification behind the walls: citing a document the key may not read — another
tenant's, or one of a group the key lacks — by source id or by document id, with exact
offsets and its own sentences as the claim, gets the same ``unsupported`` as citing a
document that never existed, and nothing of the hidden document (text, title, source, id,
fact names) comes back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from engine.settings import Settings
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.security

#: source -> (tenant, groups, title, text)
MEMOS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "acme-open": (
        "acme",
        (),
        "open note",
        "Helios Partners advised Plinth Robotics on its merger in Kestrelford.",
    ),
    "acme-board": (
        "acme",
        ("board",),
        "board minutes quillon",
        "Zorblax Holdings will acquire Plinth Robotics. Ondrea Vask approved the Zorblax offer.",
    ),
    "globex-plan": (
        "globex",
        (),
        "globex plan varnhollow",
        "Brantley Oakes founded Quintrell Mining in Varnhollow. Quintrell Mining sells copper.",
    ),
}
HIDDEN = {"acme-board", "globex-plan"}  # from the plain acme key


@dataclass
class Walls:
    base: str
    keys: dict[str, str]
    ids: dict[str, str]  # source -> document id

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.keys[key]}"}, timeout=120
        )


@pytest.fixture(scope="module")
def walls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walls]:
    data_dir = tmp_path_factory.mktemp("verify-walls") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            "acme": {"tenant": "acme"},
            "acme-board": {"tenant": "acme", "groups": ("board",)},
            "admin": {"tenant": None, "admin": True},
        },
    )
    with running_api(config) as base:
        running = Walls(base, keys, {})
        with running.client("admin") as admin:
            for source, (tenant, groups, title, text) in MEMOS.items():
                job = admin.post(
                    "/v1/documents",
                    json={
                        "tenant": tenant,
                        "groups": list(groups),
                        "documents": [{"id": source, "title": title, "text": text}],
                    },
                )
                assert job.status_code == 202, job.text
                assert wait_job(admin, job.json()["id"])["status"] == "succeeded"
            docs = admin.get("/v1/documents").json()["documents"]
        running.ids = {d["source"]: d["id"] for d in docs}
        yield running


def _sentence(source: str) -> tuple[str, int, int]:
    text = MEMOS[source][3]
    end = text.index(".") + 1
    return text[:end], 0, end


def _claims(walls: Walls, source: str) -> list[dict[str, Any]]:
    """The memo's first sentence, cited exactly by source id and by document id."""
    sentence, start, end = _sentence(source)
    return [
        {"text": sentence, "citations": [{"source": source, "start": start, "end": end}]},
        {
            "text": sentence,
            "citations": [{"document": walls.ids[source], "start": start, "end": end}],
        },
    ]


def _secrets(source: str, walls: Walls) -> list[str]:
    """Strings of the hidden memo the caller did not write in its claims."""
    _, _, title, text = MEMOS[source]
    words = {w.strip(".,").casefold() for w in text.split() if w[:1].isupper()}
    return [title.casefold(), source, walls.ids[source], *sorted(words), text.casefold()]


def test_hidden_documents_are_unsupported_like_missing_ones(walls: Walls) -> None:
    missing = [
        {"text": "Nothing.", "citations": [{"source": "never-ingested", "start": 0, "end": 8}]},
        {
            "text": "Nothing.",
            "citations": [{"document": "doc_0000000000000000", "start": 0, "end": 8}],
        },
    ]
    body = [
        {"id": f"item-{n}", "claims": _claims(walls, source)}
        for n, source in enumerate(sorted(HIDDEN))
    ]
    body.append({"id": "missing", "claims": missing})
    with walls.client("acme") as client:
        response = client.post("/v1/verify", json=body)
    assert response.status_code == 200, response.text
    results = response.json()
    nowhere = {c["reason"] for c in results[-1]["claims"]}
    assert len(nowhere) == 1
    for result in results:
        for claim in result["claims"]:
            assert claim["verdict"] == "unsupported", (result["id"], claim)
            assert claim["citations_valid"] is False
            assert {claim["reason"]} == nowhere, (result["id"], claim)
    answered = response.text.casefold()
    for source in HIDDEN:
        leaked = [s for s in _secrets(source, walls) if s.casefold() in answered]
        assert not leaked, (source, leaked)


def test_the_group_that_may_read_it_gets_it_checked(walls: Walls) -> None:
    """The same citations under a key of the board group resolve: the wall, not the
    citation, made them unsupported above."""
    with walls.client("acme-board") as client:
        response = client.post(
            "/v1/verify", json={"id": "board", "claims": _claims(walls, "acme-board")}
        )
    assert response.status_code == 200, response.text
    for claim in response.json()["claims"]:
        assert (claim["verdict"], claim["citations_valid"]) == ("supported", True), claim


def test_hidden_facts_are_not_found_and_not_named(walls: Walls) -> None:
    with walls.client("acme-board") as client:
        found = client.get("/v1/entities", params={"q": "Zorblax"}).json()["entities"]
        facts = [
            f["id"]
            for entity in found
            for f in client.get(f"/v1/entities/{entity['id']}").json()["facts"]
        ]
    assert facts
    sentence, start, end = _sentence("acme-open")
    claim = {
        "text": sentence,
        "citations": [{"source": "acme-open", "start": start, "end": end}],
        "facts": facts[:5],
    }
    with walls.client("acme") as client:
        response = client.post("/v1/verify", json={"id": "facts", "claims": [claim]})
    assert response.status_code == 200, response.text
    [checked] = response.json()["claims"]
    assert (checked["verdict"], checked["citations_valid"]) == ("unsupported", False)
    answered = json.dumps(response.json()).casefold()
    for secret in ("zorblax", "ondrea", "vask", "quillon"):
        assert secret not in answered
