"""Keyword statistics are each tenant's own, over real HTTP.

Tenant acme searches; tenant bravo then ingests many documents full of acme's query words
(the attack that reads acme's term counts off the scores); acme's ``/v1/search`` answers
must come back byte for byte as before: the same ids, in the same order, with the same
score and the same signals. Today's IDF-by-partition design makes each tenant's sparse
scores depend on that tenant's documents only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from engine.settings import Settings
from tests.servers import create_keys, running_api

pytestmark = pytest.mark.security

ACME = [
    {
        "id": "acme-harbour-1",
        "title": "harbour report",
        "text": "The lattice reactors at the northern harbour were inspected in March. "
        "Inspectors found the cooling pumps worn and the turbine housings sound.",
    },
    {
        "id": "acme-harbour-2",
        "title": "pump memo",
        "text": "Cooling pumps for the lattice reactors arrive next quarter. The harbour "
        "crew will fit them during the spring shutdown.",
    },
    {
        "id": "acme-other",
        "title": "canteen note",
        "text": "The canteen menu changes on Mondays and the coffee machine was repaired.",
    },
]
QUERIES = (
    "lattice reactors cooling pumps",
    "harbour inspection turbine",
    "spring shutdown crew",
)
MODES = ("threadline", "single", "dense")
WORDS = "lattice reactor cooling pump harbour inspection turbine spring shutdown crew"


@dataclass
class Api:
    base: str
    keys: dict[str, str]

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)


def _ingest(client: httpx.Client, documents: list[dict[str, str]]) -> None:
    response = client.post("/v1/documents", json={"documents": documents})
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = client.get(f"/v1/jobs/{job['id']}").json()
        if state["status"] in {"succeeded", "failed"}:
            assert state["status"] == "succeeded", state
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job['id']} did not finish")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("statistics") / "data"
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    keys = create_keys(
        data_dir / "keys.sqlite", {"acme": {"tenant": "acme"}, "bravo": {"tenant": "bravo"}}
    )
    with running_api(config) as base:
        yield Api(base=base, keys=keys)


def _searches(api: Api) -> dict[tuple[str, str], bytes]:
    """acme's raw ``/v1/search`` answers for every query and mode."""
    found: dict[tuple[str, str], bytes] = {}
    with api.client("acme") as client:
        for query in QUERIES:
            for mode in MODES:
                response = client.post("/v1/search", json={"query": query, "mode": mode})
                assert response.status_code == 200, response.text
                found[query, mode] = response.content
    return found


def _sparse_scores(answer: bytes) -> list[Any]:
    hits = httpx.Response(200, content=answer).json()["hits"]
    return [h["signals"].get("sparse", {}).get("score") for h in hits]


def test_another_tenants_documents_never_move_a_tenants_search(api: Api) -> None:
    with api.client("acme") as acme:
        _ingest(acme, ACME)
    before = _searches(api)
    # The searches find acme's memos by their words, with keyword scores to protect.
    acme_documents = {
        h["document_id"]
        for answer in before.values()
        for h in httpx.Response(200, content=answer).json()["hits"]
    }
    assert len(acme_documents) >= 2
    assert any(score is not None for score in _sparse_scores(before[QUERIES[0], "threadline"]))
    flood = [
        {"id": f"bravo-{n}", "title": f"bravo {n}", "text": f"{WORDS} " * (1 + n % 4)}
        for n in range(30)
    ]
    with api.client("bravo") as bravo:
        _ingest(bravo, flood)
        seen = bravo.post("/v1/search", json={"query": QUERIES[0], "k": 50}).json()["hits"]
        assert seen, "bravo's documents are searchable"
        assert not acme_documents & {h["document_id"] for h in seen}
    after = _searches(api)
    for key, answer in before.items():
        assert after[key] == answer, f"acme's search {key} moved after bravo's ingest"
