"""The HTTP API over real HTTP: uvicorn on 127.0.0.1, httpx as the client.

One server for the module, with overlapping corpora for two tenants and several groups,
ingested through the API itself. Every endpoint is exercised; the isolation test walks
every read endpoint with every key and finds no id the key may not see; a schema-driven
fuzz finds no 5xx.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from engine.api import create_app
from engine.audit import verify
from engine.settings import Settings
from tests.bolt_server import free_port
from tests.documents import pdf_bytes
from tests.servers import create_keys, wait_job

pytestmark = pytest.mark.api

SPANS = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(SPANS))
trace.set_tracer_provider(_provider)

QUESTION = (
    "Who was the first president of the association which published "
    "Journal of Psychotherapy Integration?"
)


@dataclass
class Api:
    base: str
    data_dir: Path
    keys: dict[str, str]  # name -> secret
    allowed: dict[str, set[str]] = field(default_factory=dict)  # name -> readable doc ids

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)


def _records(sample: list[dict[str, str]], lo: int, hi: int) -> list[dict[str, str]]:
    return [{"id": r["id"], "title": r["title"], "text": r["text"]} for r in sample[lo:hi]]


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, sample_records: list[dict[str, str]]
) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("api") / "data"
    config = Settings.model_validate(
        {
            "data_dir": data_dir,
            "api": {"rate_per_minute": 100_000, "burst": 10_000, "max_body_bytes": 2_000_000},
            "telemetry": {"json_logs": True},
        }
    )
    keys = create_keys(
        data_dir / "keys.sqlite",
        {
            "admin": {"tenant": None, "admin": True, "name": "ops"},
            "acme": {"tenant": "acme"},
            "acme-legal": {"tenant": "acme", "groups": ("legal",)},
            "globex": {"tenant": "globex"},
            "globex-ops": {"tenant": "globex", "groups": ("ops",)},
        },
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host="127.0.0.1",
            port=free_port(),
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        assert thread.is_alive(), "the API server stopped while starting"
        time.sleep(0.1)
    running = Api(base=f"http://127.0.0.1:{server.config.port}", data_dir=data_dir, keys=keys)
    # Overlapping corpora: the same passages under both tenants, some behind groups (each
    # written by a key that holds the groups).
    plan = [
        ("acme", [], 0, 40),
        ("acme-legal", ["legal"], 30, 60),
        ("globex", [], 20, 50),
        ("globex-ops", ["ops"], 45, 70),
    ]
    for writer, groups, lo, hi in plan:
        with running.client(writer) as client:
            job = client.post(
                "/v1/documents",
                json={"documents": _records(sample_records, lo, hi), "groups": groups},
            )
            assert job.status_code == 202, job.text
            done = wait_job(client, job.json()["id"])
            assert done["status"] == "succeeded", done
    # What each key may read, from the admin view (a passage sent again with other groups
    # is a separate document in that scope; neither replaces the other).
    with running.client("admin") as admin:
        stored = admin.get("/v1/documents", params={"limit": 1000}).json()["documents"]
    for name, tenant, groups in [
        ("acme", "acme", set()),
        ("acme-legal", "acme", {"legal"}),
        ("globex", "globex", set()),
        ("globex-ops", "globex", {"ops"}),
    ]:
        running.allowed[name] = {
            d["id"]
            for d in stored
            if d["tenant"] == tenant and (not d["groups"] or set(d["groups"]) & groups)
        }
    try:
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=60)


# ---------------------------------------------------------------------------- endpoints


def test_health_metrics_and_openapi(api: Api) -> None:
    with api.client(None) as anonymous:
        assert anonymous.get("/v1/health/live").json() == {"status": "ok", "checks": {}}
        ready = anonymous.get("/v1/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"graph": "ok", "vectors": "ok"}
        schema = anonymous.get("/openapi.json").json()
        paths = set(schema["paths"])
        assert {"/v1/ask", "/v1/documents", "/v1/entities/{entity_id}/neighborhood"} <= paths
        metrics = anonymous.get("/metrics").text
        assert "threadline_http_requests_total" in metrics
        assert 'route="/v1/jobs/{job_id}"' in metrics


def test_auth_is_required_and_checked(api: Api) -> None:
    with api.client(None) as anonymous:
        missing = anonymous.get("/v1/documents")
        assert missing.status_code == 401
        assert set(missing.json()) == {"error", "message", "detail"}
        bad = anonymous.get("/v1/documents", headers={"Authorization": "Bearer tl_nope_nope"})
        assert bad.status_code == 401
        assert bad.json()["error"] == "unauthenticated"
        via_header = anonymous.get("/v1/documents", headers={"X-API-Key": api.keys["acme"]})
        assert via_header.status_code == 200
    with api.client("acme") as client:
        assert client.get("/v1/keys").status_code == 403  # not an admin key
        response = client.get("/v1/documents")
        assert response.headers["X-Request-ID"]


def test_documents_list_get_and_upload(api: Api) -> None:
    with api.client("acme-legal") as client:
        listed = client.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        assert {d["id"] for d in listed} == api.allowed["acme-legal"]
        one = client.get(f"/v1/documents/{listed[0]['id']}").json()
        assert one["text"]
        assert one["tenant"] == "acme"
        assert client.get("/v1/documents/doc_missing").status_code == 404
        files = [
            ("files", ("report.pdf", pdf_bytes(["Intro page.", "Marie Curie won two prizes."]))),
            ("files", ("notes.txt", b"Pierre Curie worked with Marie Curie in Paris.")),
        ]
        job = client.post(
            "/v1/documents/upload", files=files, data={"reader": "llamaindex", "groups": "legal"}
        )
        assert job.status_code == 202, job.text
        done = wait_job(client, job.json()["id"])
        assert done["status"] == "succeeded", done
        uploaded = [client.get(f"/v1/documents/{d}").json() for d in done["report"]["document_ids"]]
        assert {d["source"] for d in uploaded} == {"report.pdf", "notes.txt"}
        pdf = next(d for d in uploaded if d["source"] == "report.pdf")
        assert [s["page"] for s in pdf["sections"]] == ["1", "2"]
        assert pdf["groups"] == ["legal"]
        api.allowed["acme-legal"] |= set(done["report"]["document_ids"])
        # A broken upload fails as a job with a message naming the file.
        broken = client.post(
            "/v1/documents/upload",
            files=[("files", ("x.pdf", b"%PDF-1 junk"))],
            data={"groups": "legal"},
        )
        failed = wait_job(client, broken.json()["id"])
        assert failed["status"] == "failed"
        assert "x.pdf" in failed["error"]["message"]


def test_ingest_validation_and_limits(api: Api) -> None:
    with api.client("acme") as client:
        empty = client.post("/v1/documents", json={"documents": []})
        assert empty.status_code == 422
        assert empty.json()["error"] == "invalid_request"
        other = client.post(
            "/v1/documents", json={"documents": [{"id": "x", "text": "y"}], "tenant": "globex"}
        )
        assert other.status_code == 403
        huge = client.post(
            "/v1/documents", json={"documents": [{"id": "big", "text": "a" * 2_100_000}]}
        )
        assert huge.status_code == 413
        assert "MAX_BODY_BYTES" in huge.json()["message"]
        junk = client.post(
            "/v1/documents", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert junk.status_code == 422
        assert client.get("/v1/jobs/nope").status_code == 404


def test_ask_search_and_stream(api: Api) -> None:
    with api.client("acme") as client:
        answer = client.post("/v1/ask", json={"question": QUESTION, "k": 5}).json()
        assert answer["claims"]
        for claim in answer["claims"]:
            assert claim["verdict"] in {"supported", "unsupported", "contradicted"}
            for span in claim["spans"]:
                doc = client.get(f"/v1/documents/{span['document_id']}").json()
                assert doc["text"][span["start"] : span["end"]] == span["text"]
        hits = client.post("/v1/search", json={"query": QUESTION, "k": 5}).json()["hits"]
        assert 1 <= len(hits) <= 5
        assert all(h["document_id"] in api.allowed["acme"] for h in hits)
        with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as sse:
            assert sse.headers["content-type"].startswith("text/event-stream")
            events = [
                line.removeprefix("event:").strip()
                for line in sse.iter_lines()
                if line.startswith("event:")
            ]
        assert events == ["evidence", "claims", "done"]  # only validated content
        body = {"question": QUESTION, "stream": True, "stream_draft": True}
        with client.stream("POST", "/v1/ask", json=body) as sse:
            lines = list(sse.iter_lines())
        kinds = [x.removeprefix("event:").strip() for x in lines if x.startswith("event:")]
        assert kinds == ["evidence", "answer", "claims", "done"]
        drafted = json.loads(lines[lines.index("event: answer") + 1].removeprefix("data:"))
        assert drafted["unverified"] is True
        assert client.post("/v1/ask", json={"question": ""}).status_code == 422
        assert client.post("/v1/ask", json={"question": "x", "k": 0}).status_code == 422


def test_entities_neighborhood_and_paths(api: Api) -> None:
    with api.client("acme") as client:
        found = client.get("/v1/entities", params={"q": "psychotherapy"}).json()["entities"]
        assert found
        detail = client.get(f"/v1/entities/{found[0]['id']}").json()
        assert detail["entity"]["id"] == found[0]["id"]
        assert detail["mentions"]
        hood = client.get(
            f"/v1/entities/{found[0]['id']}/neighborhood", params={"depth": 2, "limit": 30}
        ).json()
        node_ids = {n["id"] for n in hood["nodes"]}
        assert found[0]["id"] in node_ids
        assert all(e["source"] in node_ids and e["target"] in node_ids for e in hood["edges"])
        if hood["edges"]:
            edge = hood["edges"][0]
            paths = client.get(
                "/v1/paths", params={"source": edge["source"], "target": edge["target"]}
            ).json()["paths"]
            assert paths
            assert len(paths[0]["facts"]) == 1
        missing = client.get("/v1/entities/ent_missing")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"
        # An entity may also be named instead of given by id.
        named = next(e for e in found if "/" not in e["name"])
        by_name = client.get(f"/v1/entities/{named['name']}")
        assert by_name.status_code == 200
        assert by_name.json()["entity"]["name"].lower() == named["name"].lower()
        assert client.get("/v1/entities", params={"limit": 0}).status_code == 422


def test_communities_list_and_detail(api: Api) -> None:
    with api.client("acme") as client:
        listed = client.get("/v1/communities", params={"level": 0, "limit": 5})
        assert listed.status_code == 200, listed.text
        found = listed.json()["communities"]
        assert 1 <= len(found) <= 5
        assert all(c["level"] == 0 and c["members"] and c["summary"] for c in found)
        cited = {s["document_id"] for c in found for line in c["summary"] for s in line["spans"]}
        assert cited <= api.allowed["acme"]
        one = client.get(f"/v1/communities/{found[0]['id']}")
        assert one.status_code == 200
        assert one.json()["id"] == found[0]["id"]
        assert client.get("/v1/communities/com_missing").status_code == 404
    with api.client("globex") as other:
        hidden = other.get(f"/v1/communities/{found[0]['id']}")
        assert hidden.status_code == 404
        assert hidden.json()["error"] == "not_found"
        mine = other.get("/v1/communities", params={"limit": 500}).json()["communities"]
        assert found[0]["id"] not in {c["id"] for c in mine}


def test_feedback_and_key_management(api: Api) -> None:
    with api.client("acme") as client:
        saved = client.post(
            "/v1/feedback", json={"question": QUESTION, "answer": "x", "rating": 4, "comment": "ok"}
        )
        assert saved.status_code == 201
        assert client.post("/v1/feedback", json={"question": "q", "rating": 9}).status_code == 422
    with api.client("admin") as admin:
        made = admin.post("/v1/keys", json={"tenant": "initech", "groups": ["a"]})
        assert made.status_code == 201
        secret, key_id = made.json()["secret"], made.json()["key"]["id"]
        assert key_id in {k["id"] for k in admin.get("/v1/keys").json()["keys"]}
        with httpx.Client(base_url=api.base, headers={"X-API-Key": secret}) as initech:
            assert initech.get("/v1/documents").json() == {"documents": []}
            assert admin.delete(f"/v1/keys/{key_id}").status_code == 200
            assert initech.get("/v1/documents").status_code == 401
        assert admin.post("/v1/keys", json={"admin": True, "tenant": "x"}).status_code == 400


def test_delete_is_tenant_scoped(api: Api) -> None:
    with api.client("acme") as acme:
        job = wait_job(
            acme,
            acme.post(
                "/v1/documents",
                json={"documents": [{"id": "tmp", "text": "Zelda Fitzgerald wrote Save Me."}]},
            ).json()["id"],
        )
        (doc_id,) = job["report"]["document_ids"]
    with api.client("globex") as globex:
        assert globex.delete(f"/v1/documents/{doc_id}").status_code == 404
    with api.client("acme") as acme:
        removed = acme.delete(f"/v1/documents/{doc_id}")
        assert removed.status_code == 200
        assert removed.json()["documents"] == 1
        assert acme.get(f"/v1/documents/{doc_id}").status_code == 404


def test_rate_and_concurrency_limits(tmp_path: Path) -> None:
    config = Settings.model_validate(
        {"data_dir": tmp_path / "data", "api": {"rate_per_minute": 60, "burst": 3}}
    )
    secret = create_keys(config.data_dir / "keys.sqlite", {"t": {"tenant": "t"}})["t"]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=free_port(), log_config=None)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.config.port}",
            headers={"Authorization": f"Bearer {secret}"},
        ) as client:
            statuses = [client.get("/v1/documents").status_code for _ in range(5)]
            assert statuses[:3] == [200, 200, 200]
            limited = client.get("/v1/documents")
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) >= 1
            assert limited.json()["error"] == "rate_limited"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_audit_log_records_and_detects_tampering(api: Api) -> None:
    path = api.data_dir / "audit.log"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    actions = {r["action"] for r in records}
    assert {"ingest", "ask", "delete", "key.create", "key.revoke"} <= actions
    asked = next(r for r in records if r["action"] == "ask")
    assert asked["key_id"]
    assert asked["cited_documents"] is not None
    assert verify(path) == len(records)
    copy = api.data_dir / "audit-copy.log"
    lines = path.read_text().splitlines()
    tampered = json.loads(lines[1])  # a field of the second record changed
    tampered["action"] = f"{tampered['action']}x"
    lines[1] = json.dumps(tampered)
    copy.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match="chain is broken"):
        verify(copy)


def test_traces_cover_the_pipeline(api: Api) -> None:
    SPANS.clear()
    with api.client("acme") as client:
        assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    names = {s.name for s in SPANS.get_finished_spans()}
    assert {"HTTP POST", "threadline.ask", "threadline.retrieve", "threadline.answer"} <= names
    assert {"threadline.validate", "threadline.retrieve.link", "threadline.retrieve.graph"} <= names
    by_name = {s.name: s for s in SPANS.get_finished_spans()}
    root = by_name["HTTP POST"]
    assert by_name["threadline.ask"].context.trace_id == root.context.trace_id


# ---------------------------------------------------------------------------- isolation


def _collect(  # noqa: C901 - one walk over every read endpoint
    client: httpx.Client, questions: list[str]
) -> dict[str, set[str]]:
    """Every document, chunk and entity id the key is shown, by any read endpoint."""
    seen: dict[str, set[str]] = {"documents": set(), "chunks": set(), "entities": set()}

    def spans(items: list[dict[str, Any]]) -> None:
        for s in items:
            seen["documents"].add(s["document_id"])
            seen["chunks"].add(s["chunk_id"])

    for d in client.get("/v1/documents", params={"limit": 1000}).json()["documents"]:
        seen["documents"].add(d["id"])
    for question in questions:
        answer = client.post("/v1/ask", json={"question": question, "k": 8}).json()
        for e in answer["evidence"]:
            seen["documents"].add(e["document_id"])
            seen["chunks"].add(e["chunk_id"])
        for c in answer["claims"]:
            spans(c["spans"])
            seen["documents"].update(d["document_id"] for d in c["documents"])
            for f in c["facts"]:
                seen["entities"].update((f["subject_id"], f["object_id"]))
        seen["entities"].update(e["entity_id"] for e in answer["entities"])
        for hit in client.post("/v1/search", json={"query": question, "k": 10}).json()["hits"]:
            seen["documents"].add(hit["document_id"])
            seen["chunks"].add(hit["chunk_id"])
    entities = client.get("/v1/entities", params={"q": "", "limit": 500}).json()["entities"]
    seen["entities"].update(e["id"] for e in entities)
    for ent in entities[:25]:
        detail = client.get(f"/v1/entities/{ent['id']}").json()
        spans(detail["mentions"])
        for fact in detail["facts"]:
            spans(fact["evidence"])
        hood = client.get(f"/v1/entities/{ent['id']}/neighborhood", params={"depth": 2}).json()
        seen["entities"].update(n["id"] for n in hood["nodes"])
        for edge in hood["edges"]:
            seen["entities"].update((edge["source"], edge["target"]))
        for node in hood["nodes"][1:4]:
            found = client.get("/v1/paths", params={"source": ent["id"], "target": node["id"]})
            for path in found.json()["paths"]:
                seen["entities"].update(e["id"] for e in path["entities"])
                for fact in path["facts"]:
                    spans(fact["evidence"])
    return seen


def test_no_key_sees_what_it_may_not(api: Api, sample_records: list[dict[str, str]]) -> None:
    questions = [QUESTION] + [r["title"] for r in sample_records[0:70:7]]
    with api.client("admin") as admin:
        # Ground truth from the admin view: every chunk's and entity's documents.
        all_docs = admin.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        assert len(all_docs) >= 100
    for name in ("acme", "acme-legal", "globex", "globex-ops"):
        allowed = api.allowed[name]
        with api.client(name) as client:
            seen = _collect(client, questions)
        assert seen["documents"], name
        assert seen["documents"] <= allowed, f"{name} saw {seen['documents'] - allowed}"
        with api.client("admin") as admin:
            for entity_id in seen["entities"]:
                mentions = admin.get(
                    f"/v1/entities/{entity_id}", params={"mentions": 500, "facts": 0}
                ).json()["mentions"]
                assert any(m["document_id"] in allowed for m in mentions), (name, entity_id)
        # Chunk ids belong to readable documents: look each one up through the owner.
        owners = _chunk_owners(api, seen["chunks"])
        assert owners <= allowed, f"{name} saw chunks of {owners - allowed}"


def _chunk_owners(api: Api, chunks: set[str]) -> set[str]:
    """Documents owning the chunks, from the stored graph (ground truth, not the API)."""
    import sqlite3

    db = sqlite3.connect(api.data_dir / "graph.sqlite")
    try:
        rows = db.execute(
            f"SELECT DISTINCT document_id FROM chunks WHERE id IN ({','.join('?' * len(chunks))})",
            sorted(chunks),
        ).fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


# ---------------------------------------------------------------------------- fuzz


def test_fuzz_never_5xx(api: Api) -> None:
    """Schema-driven cases for every operation: no 5xx, and every error has our shape."""
    schema = schemathesis.openapi.from_url(f"{api.base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    failures: list[str] = []
    for operation in operations:
        _fuzz(operation, api.keys["admin" if "/keys" in operation.path else "acme"], failures)
    assert not failures, failures


def _fuzz(operation: Any, key: str, failures: list[str]) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.path}: {response.text[:300]}")
        elif response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
            assert set(response.json()) == {"error", "message", "detail"}, response.text

    check()


def test_ask_with_llm_but_no_model_server_is_a_client_error(api: Api) -> None:
    resp = httpx.post(
        f"{api.base}/v1/ask",
        json={"question": "Who founded the company?", "llm": True},
        headers={"Authorization": f"Bearer {api.keys['acme']}"},
        timeout=60,
    )
    assert resp.status_code == 400
    assert "THREADLINE_MODEL__BASE_URL" in resp.json()["message"]
