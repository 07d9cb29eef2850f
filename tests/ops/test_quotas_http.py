"""Quotas and the usage ledger over real HTTP, with the suite's llama.cpp server writing
answers: a key over its token quota is refused (429 ``quota_exceeded`` with when it
resets) while another key of its tenant is not, until the tenant's quota is spent; the
usage report adds up to the tokens the model server reported; a cached answer is never
served to a key whose access differs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from engine import Settings, Threadline
from engine.local_model import LOCAL_MODEL_ALIAS, LocalModelServer
from engine.settings import ApiSettings, ModelSettings
from tests.servers import create_keys, running_app

pytestmark = [pytest.mark.ops, pytest.mark.api, pytest.mark.llm]

QUESTIONS = (
    "Who published the Journal of Mathematical Physics?",
    "What does the Journal of Psychotherapy Integration publish?",
    "Who founded the American Psychological Association?",
    "When was the Journal of Mathematical Physics first published?",
)


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory,
    llm_server: LocalModelServer,
    sample_records: list[dict[str, str]],
) -> Iterator[tuple[httpx.Client, dict[str, str], FastAPI]]:
    """The API on a data dir holding the same passages for tenants acme and beta, with
    the model writing answers (no support judge: every model call is a synthesis)."""
    root = tmp_path_factory.mktemp("ops_http")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in sample_records[:12]), "utf-8")
    config = Settings(
        data_dir=root / "data",
        model=ModelSettings(
            base_url=llm_server.base_url, model=LOCAL_MODEL_ALIAS, timeout_s=1800, entailment=False
        ),
        # Generous: on a machine shared with other jobs a 135M model can take minutes.
        api=ApiSettings(request_timeout_s=1800),
    )

    async def ingest() -> None:
        async with await Threadline.open(config) as tl:
            for tenant in ("acme", "beta"):
                await tl.ingest(tl.read([corpus]), tenant=tenant)

    asyncio.run(ingest())
    keys = create_keys(
        config.data_dir / "keys.sqlite",
        {
            "admin": {"tenant": None, "admin": True},
            "a1": {"tenant": "acme"},
            "a2": {"tenant": "acme"},
            "red": {"tenant": "acme", "groups": ("red",)},
            "b1": {"tenant": "beta"},
        },
    )
    with running_app(config) as (url, app), httpx.Client(base_url=url, timeout=1800) as http:
        yield http, keys, app


def _as(keys: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[name]}"}


def _key_id(secret: str) -> str:
    return secret.split("_")[1]


def _ask(http: httpx.Client, keys: dict[str, str], who: str, question: str, **body: Any) -> Any:
    return http.post("/v1/ask", headers=_as(keys, who), json={"question": question, **body})


def _ask_model(http: httpx.Client, keys: dict[str, str], who: str, question: str) -> Any:
    """A model-written answer from one evidence chunk (the shortest prompt that still
    calls the model)."""
    return _ask(http, keys, who, question, llm=True, k=1)


def test_a_key_over_its_token_quota_is_refused_and_its_siblings_are_not(
    api: tuple[httpx.Client, dict[str, str], FastAPI],
) -> None:
    http, keys, _ = api
    set_a1 = http.put(
        f"/v1/quotas/key/{_key_id(keys['a1'])}",
        headers=_as(keys, "admin"),
        json={"tokens_per_day": 1},
    )
    assert set_a1.status_code == 200, set_a1.text
    assert http.put("/v1/quotas/key/x", headers=_as(keys, "a1"), json={}).status_code == 403

    first = _ask_model(http, keys, "a1", QUESTIONS[0])
    assert first.status_code == 200, first.text  # under the quota when the call starts
    refused = _ask_model(http, keys, "a1", QUESTIONS[1])
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "quota_exceeded"
    assert "this key" in refused.json()["message"]
    assert "resets at" in refused.json()["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 86_400
    streamed = _ask(http, keys, "a1", QUESTIONS[1], llm=True, stream=True)
    assert streamed.status_code == 429
    assert streamed.json()["error"] == "quota_exceeded"

    sibling = _ask_model(http, keys, "a2", QUESTIONS[1])
    assert sibling.status_code == 200, sibling.text

    # Spend the tenant's quota: what acme used so far becomes its limit for the day.
    report = http.get("/v1/usage", headers=_as(keys, "a2"), params={"by": ["tenant"]}).json()
    assert [r["tenant"] for r in report["rows"]] == ["acme"]
    spent = report["total_tokens"]
    assert spent > 0
    set_acme = http.put(
        "/v1/quotas/tenant/acme", headers=_as(keys, "admin"), json={"tokens_per_day": spent}
    )
    assert set_acme.status_code == 200
    over = _ask_model(http, keys, "a2", QUESTIONS[2])
    assert over.status_code == 429, over.text
    assert "tenant acme" in over.json()["message"]
    # An extractive answer spends no tokens; another tenant's quota is untouched.
    assert _ask(http, keys, "a2", QUESTIONS[2]).status_code == 200
    beta = http.get("/v1/quotas", headers=_as(keys, "b1")).json()["quotas"]
    assert beta[1]["name"] == "beta"
    assert beta[1]["limits"]["tokens_per_day"] is None

    mine = http.get("/v1/quotas", headers=_as(keys, "a2")).json()["quotas"]
    assert [q["scope"] for q in mine] == ["key", "tenant"]
    assert mine[1]["limits"]["tokens_per_day"] == spent
    assert mine[1]["tokens_today"] >= spent


def test_the_usage_report_adds_up_to_the_tokens_the_model_server_reported(
    api: tuple[httpx.Client, dict[str, str], FastAPI],
) -> None:
    http, keys, app = api
    model = app.state.service.tl.model  # its usage sums the usage field of every reply

    def beta_rows() -> list[dict[str, Any]]:
        reply = http.get("/v1/usage", headers=_as(keys, "b1"), params={"by": ["purpose"]})
        assert reply.status_code == 200, reply.text
        return list(reply.json()["rows"])

    def spent(rows: list[dict[str, Any]], field: str) -> int:
        return sum(int(r[field]) for r in rows)

    rows_before, before = beta_rows(), model.usage.total_tokens
    reply = _ask_model(http, keys, "b1", QUESTIONS[0])
    assert reply.status_code == 200, reply.text
    rows, reported = beta_rows(), model.usage.total_tokens - before
    assert reported > 0
    assert spent(rows, "total_tokens") - spent(rows_before, "total_tokens") == reported
    assert spent(rows, "asks") - spent(rows_before, "asks") == 1
    assert {r["purpose"] for r in rows} == {"ask", "synthesis"}
    everything = http.get("/v1/usage", headers=_as(keys, "admin"), params={"by": ["tenant"]})
    total = everything.json()["total_tokens"]
    assert total == model.usage.total_tokens
    assert {r["tenant"] for r in everything.json()["rows"]} >= {"beta"}

    # A tenant's key sees its own tenant only.
    other = http.get("/v1/usage", headers=_as(keys, "b1"), params={"tenant": "acme"})
    assert other.status_code == 403
    # Prometheus carries the same tokens by tenant.
    metrics = http.get("/metrics").text
    by_tenant = _tokens_by_tenant(metrics)
    assert by_tenant["beta"] == spent(rows, "total_tokens")
    assert sum(by_tenant.values()) == total
    # Rows hold counts and ids only: no question text anywhere in the report.
    assert all(q not in json.dumps(everything.json()) for q in QUESTIONS)


def test_a_cached_answer_is_never_served_to_a_key_with_other_groups(
    api: tuple[httpx.Client, dict[str, str], FastAPI],
) -> None:
    http, keys, _ = api
    question = QUESTIONS[3]
    first = _ask(http, keys, "a2", question).json()
    again = _ask(http, keys, "a2", question).json()
    assert "cache" not in first["timings_ms"]
    assert "cache" in again["timings_ms"]
    assert again["answer"] == first["answer"]
    red = _ask(http, keys, "red", question).json()
    assert "cache" not in red["timings_ms"]
    assert "cache" not in _ask(http, keys, "b1", question).json()["timings_ms"]
    unknown = http.put("/v1/quotas/key/nokey", headers=_as(keys, "admin"), json={})
    assert unknown.status_code == 404
    metrics = http.get("/metrics").text
    assert 'threadline_cache_lookups_total{cache="answer",result="hit"}' in metrics
    assert 'threadline_cache_hit_ratio{cache="answer"}' in metrics
    assert 'threadline_asks_total{cache="hit",tenant="acme"}' in metrics


def _tokens_by_tenant(exposition: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in exposition.splitlines():
        if line.startswith("threadline_model_tokens_total{"):
            labels, value = line.rsplit(" ", 1)
            tenant = labels.split('tenant="')[1].split('"')[0]
            found[tenant] = found.get(tenant, 0) + int(float(value))
    return found
