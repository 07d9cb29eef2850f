"""Subject requests over the real HTTP API: a person (a name and an e-mail address) is
planted in documents of two tenants, a feedback comment, a cached answer and an audited
question. The export finds exactly the planted occurrences; a tenant key can neither
export nor erase; bad input gets a clear error; the erase leaves the subject nowhere (no
read path, no file in the data dir), other documents untouched and the audit log
verifying, with the erase itself audited without the subject's value.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.audit import read_records, verify
from engine.settings import Settings
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.privacy

NAME = "Marisol Quintero"
EMAIL = "marisol.quintero@example.org"
#: Strings no byte of the data dir and no response may hold after the erase.
RAW = ("quintero", "marisol")
DOCUMENTS = {
    "acme": {
        "hr-note": "Marisol Quintero joined the Lisbon office in March. Write to Marisol "
        "Quintero at marisol.quintero@example.org about onboarding.",
        "project-log": "The Atlas project was led by Marisol Quintero. The team shipped the "
        "Atlas release in May.",
        "mailing-list": "Send the minutes to MARISOL.QUINTERO@example.org before Friday. The "
        "Atlas budget was approved.",
        "control": "The Lisbon office hosts the Atlas team. Budgets are reviewed every quarter.",
    },
    "globex": {"globex-memo": "Globex hired Marisol Quintero as an advisor in Porto."},
}
QUESTION = "What did Marisol Quintero lead?"
COMMENT = "The answer should name Marisol Quintero directly."


def _planted(pattern: str) -> set[tuple[str, int, int]]:
    """(source, start, end) of every planted occurrence, ignoring case."""
    return {
        (source, m.start(), m.end())
        for docs in DOCUMENTS.values()
        for source, text in docs.items()
        for m in re.finditer(pattern, text, re.IGNORECASE)
    }


@dataclass
class Api:
    base: str
    data_dir: Path
    secrets: dict[str, str]
    stack: contextlib.ExitStack
    sources: dict[str, str] = field(default_factory=dict)  # document id -> source

    def client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.secrets[key]}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=300)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("subjects") / "data"
    secrets = create_keys(
        data_dir / "keys.sqlite",
        {
            "admin": {"tenant": None, "admin": True, "name": "ops"},
            "acme": {"tenant": "acme"},
            "globex": {"tenant": "globex"},
        },
    )
    config = Settings.model_validate(
        {"data_dir": data_dir, "api": {"rate_per_minute": 100_000, "burst": 10_000}}
    )
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(running_api(config))
        running = Api(base=base, data_dir=data_dir, secrets=secrets, stack=stack)
        for tenant, docs in DOCUMENTS.items():
            with running.client(tenant) as client:
                body = [{"id": s, "title": s.title(), "text": t} for s, t in docs.items()]
                job = client.post("/v1/documents", json={"documents": body}).json()
                assert wait_job(client, job["id"])["status"] == "succeeded"
        with running.client("acme") as client:
            asked = client.post("/v1/ask", json={"question": QUESTION})
            assert asked.status_code == 200, asked.text
            rated = client.post(
                "/v1/feedback",
                json={
                    "question": "Who led the Atlas project?",
                    "answer": "The team.",
                    "rating": 2,
                    "comment": COMMENT,
                },
            )
            assert rated.status_code == 201, rated.text
        with running.client("admin") as admin:
            listed = admin.get("/v1/documents", params={"limit": 1000}).json()["documents"]
        running.sources = {d["id"]: d["source"] for d in listed}
        yield running


def _export(api: Api, subject: str) -> dict[str, Any]:
    with api.client("admin") as admin:
        response = admin.post("/v1/subjects/export", json={"subject": subject})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _text_hits(api: Api, report: dict[str, Any]) -> set[tuple[str, int, int]]:
    return {
        (api.sources[o["document_id"]], o["start"], o["end"])
        for o in report["occurrences"]
        if o["kind"] == "document" and o["field"] == "text"
    }


def test_export_finds_every_planted_occurrence_of_a_name(api: Api) -> None:
    report = _export(api, "marisol quintero")
    assert [t.casefold() for t in report["terms"]] == [NAME.casefold()]
    assert {api.sources[d] for d in report["documents"]} == {
        "hr-note",
        "project-log",
        "globex-memo",
    }
    assert _text_hits(api, report) == _planted(r"marisol\s+quintero")
    chunks = {
        (api.sources[o["document_id"]], o["start"], o["end"])
        for o in report["occurrences"]
        if o["kind"] == "chunk"
    }
    assert chunks == _planted(r"marisol\s+quintero")
    kinds = {(o["kind"], o["field"]) for o in report["occurrences"]}
    assert ("entity", "name") in kinds
    assert ("feedback", "comment") in kinds
    assert ("cache", "question") in kinds
    audited = [o for o in report["occurrences"] if o["kind"] == "audit"]
    assert {(o["field"], o["match"]) for o in audited} == {("question_sha256", "question hash")}
    for hit in report["occurrences"]:
        if hit["kind"] in {"document", "chunk", "feedback"}:
            assert NAME.casefold() in hit["excerpt"].casefold().replace("\n", " "), hit


def test_export_finds_every_planted_occurrence_of_an_email(api: Api) -> None:
    report = _export(api, EMAIL.upper())
    assert {api.sources[d] for d in report["documents"]} == {"hr-note", "mailing-list"}
    assert _text_hits(api, report) == _planted(re.escape(EMAIL))
    assert {o["kind"] for o in report["occurrences"]} <= {"document", "chunk", "entity", "fact"}


def test_a_tenant_key_can_neither_export_nor_erase(api: Api) -> None:
    with api.client("acme") as acme:
        for path in ("/v1/subjects/export", "/v1/subjects/erase"):
            refused = acme.post(path, json={"subject": NAME})
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "forbidden"
    assert len(_export(api, NAME)["documents"]) == 3  # nothing was erased


@pytest.mark.parametrize(
    ("subject", "status", "says"),
    [
        ("   ", 400, "name the subject"),
        ("Jo", 400, "too short"),
        ("someone@", 400, "not an e-mail address"),
        ("nobody@nowhere.example", 404, "nothing mentions"),
        ("Theodosia Wrenfield", 404, "nothing mentions"),
        ("acme", 400, "never erased"),  # a tenant: who did what is never redacted
    ],
)
def test_bad_subjects_get_a_clear_error_and_change_nothing(
    api: Api, subject: str, status: int, says: str
) -> None:
    with api.client("admin") as admin:
        before = admin.get("/v1/documents", params={"limit": 1000}).json()
        response = admin.post("/v1/subjects/erase", json={"subject": subject})
        after = admin.get("/v1/documents", params={"limit": 1000}).json()
    assert response.status_code == status, response.text
    assert says in response.json()["message"]
    assert after == before
    assert verify(api.data_dir / "audit.log") > 0


def test_erasing_a_key_id_is_refused_and_keeps_the_audit_attribution(api: Api) -> None:
    log = api.data_dir / "audit.log"
    before = read_records(log)
    key_id = next(r.fields["key_id"] for r in before if r.fields.get("tenant") == "acme")
    with api.client("admin") as admin:
        response = admin.post("/v1/subjects/erase", json={"subject": key_id})
    assert response.status_code == 400, response.text
    assert "never erased" in response.json()["message"]
    after = read_records(log)
    assert [r.fields for r in after[: len(before)]] == [r.fields for r in before]
    assert verify(log) == len(after)


def test_an_erase_of_many_documents_needs_confirming(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.subjects.CONFIRM_OVER", 2)  # three documents name her
    with api.client("admin") as admin:
        before = admin.get("/v1/documents", params={"limit": 1000}).json()
        response = admin.post("/v1/subjects/erase", json={"subject": NAME})
        assert response.status_code == 400, response.text
        assert "3 documents mention" in response.json()["message"]
        assert "--yes" in response.json()["message"]
        assert admin.get("/v1/documents", params={"limit": 1000}).json() == before


def _walk(client: httpx.Client) -> dict[str, str]:
    """Every read route's response text."""
    seen = {"documents": client.get("/v1/documents", params={"limit": 1000}).text}
    for doc in json.loads(seen["documents"])["documents"]:
        seen[doc["id"]] = client.get(f"/v1/documents/{doc['id']}").text
    for text in ("quintero", "marisol", "example.org", ""):
        seen[f"entities {text}"] = client.get("/v1/entities", params={"q": text, "limit": 500}).text
    for question in ("Who led the Atlas project?", "Who joined the Lisbon office?"):
        seen[f"ask {question}"] = client.post("/v1/ask", json={"question": question}).text
        seen[f"search {question}"] = client.post("/v1/search", json={"query": question}).text
    return seen


def test_erase_leaves_the_subject_nowhere(api: Api) -> None:
    with api.client("admin") as admin:
        before = {d["source"]: d for d in admin.get("/v1/documents").json()["documents"]}
        by_name = admin.post("/v1/subjects/erase", json={"subject": NAME})
        assert by_name.status_code == 200, by_name.text
        assert by_name.json()["documents"] == 3
        assert by_name.json()["feedback"] == 1
        assert by_name.json()["audit_records"] >= 1
        by_email = admin.post("/v1/subjects/erase", json={"subject": EMAIL, "delete": True})
        assert by_email.status_code == 200, by_email.text
        assert len(by_email.json()["deleted"]) == 2
        after = {d["source"]: d for d in admin.get("/v1/documents").json()["documents"]}
    # Other documents untouched; redacted ones are new versions of the same source.
    assert set(after) == {"control", "project-log", "globex-memo"}
    assert after["control"] == before["control"]
    for source in ("project-log", "globex-memo"):
        assert after[source]["id"] != before[source]["id"]
        assert after[source]["version"] == before[source]["version"] + 1
    with api.client("admin") as admin:
        doc = admin.get(f"/v1/documents/{after['project-log']['id']}").json()
    original = DOCUMENTS["acme"]["project-log"]
    assert len(doc["text"]) == len(original)
    assert doc["text"].replace("[PERSON]********", NAME) == original
    for subject in (NAME, EMAIL):
        assert _export(api, subject)["occurrences"] == []
    for key in ("admin", "acme", "globex"):
        with api.client(key) as client:
            for what, text in _walk(client).items():
                assert not [r for r in RAW if r in text.casefold()], f"{key} {what}: {text}"
    records = read_records(api.data_dir / "audit.log")
    # The refused attempts of the test before are audited too (intent, failed outcome).
    erases = [r.fields for r in records if r.fields["action"] == "subject.erase"][-4:]
    assert [(e["phase"], e.get("status")) for e in erases] == [
        ("intent", None),
        ("outcome", "ok"),
        ("intent", None),
        ("outcome", "ok"),
    ]
    assert all(len(e["subject_sha256"]) == 64 for e in erases)
    assert verify(api.data_dir / "audit.log") == len(records)

    api.stack.close()  # the server stops: every file is flushed
    for path in sorted(p for p in api.data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes().lower()
        for value in RAW:
            assert value.encode() not in raw, f"{path.relative_to(api.data_dir)} holds {value!r}"
    assert verify(api.data_dir / "audit.log") == len(records)
