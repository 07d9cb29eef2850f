"""``POST /v1/verify`` over real HTTP: claims written elsewhere, checked against the stored
text and graph.

One server for the module with a memo chunked small (so one citation can cross a chunk
boundary), ingested through the API. The tests assert what verification itself promises —
citations resolve to the right text under the key's access, problems come back per claim,
shapes and limits — not the finer verdicts of the entailment rules, except for one case
marked below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from engine.settings import Settings
from engine.verify import MAX_CLAIM_CHARS, MAX_ITEMS
from extractors import SentenceChunker
from graph import DocumentId
from tests.servers import create_keys, running_api, wait_job

pytestmark = pytest.mark.api

SENTENCES = [
    "Acme Corporation acquired Globex Industries in March 2024.",
    "The purchase price was forty million dollars.",
    "Ada Morgan, the chief executive of Acme Corporation, announced the deal in Paris.",
    "Globex Industries builds welding robots in Dayton, Ohio.",
    "Revenue at Globex Industries rose five percent in the following quarter.",
]
MEMO = " ".join(SENTENCES)
CHUNK_CHARS = 200


@dataclass
class Corpus:
    base: str
    data_dir: Path
    keys: dict[str, str]
    document_id: str

    def client(self, key: str | None = "acme") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def verify(self, body: Any, key: str = "acme") -> httpx.Response:
        with self.client(key) as client:
            return client.post("/v1/verify", json=body)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    data_dir = tmp_path_factory.mktemp("verify") / "data"
    config = Settings.model_validate(
        {
            "data_dir": data_dir,
            "extraction": {"chunk_chars": CHUNK_CHARS},
            "api": {"rate_per_minute": 100_000, "burst": 10_000},
        }
    )
    keys = create_keys(data_dir / "keys.sqlite", {"acme": {"tenant": "acme"}})
    with running_api(config) as base:
        running = Corpus(base, data_dir, keys, "")
        with running.client() as client:
            job = client.post(
                "/v1/documents",
                json={"documents": [{"id": "acme-memo", "title": "deal memo", "text": MEMO}]},
            )
            assert job.status_code == 202, job.text
            assert wait_job(client, job.json()["id"])["status"] == "succeeded"
            docs = client.get("/v1/documents").json()["documents"]
        running.document_id = next(d["id"] for d in docs if d["source"] == "acme-memo")
        yield running


def _at(sentence: int) -> tuple[int, int]:
    start = MEMO.index(SENTENCES[sentence])
    return start, start + len(SENTENCES[sentence])


def _claim(text: str, start: int, end: int, **cited: str) -> dict[str, Any]:
    citation = {**(cited or {"source": "acme-memo"}), "start": start, "end": end}
    return {"text": text, "citations": [citation]}


def _only(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_verbatim_claim_at_the_right_offsets_is_supported(corpus: Corpus) -> None:
    start, end = _at(0)
    result = _only(
        corpus.verify(
            {
                "id": "c1",
                "question": "Who acquired Globex Industries?",
                "answer": "Acme Corporation",
                "claims": [_claim(SENTENCES[0], start, end)],
            }
        )
    )
    assert result["id"] == "c1"
    assert result["answer_verdict"] == "supported"
    [claim] = result["claims"]
    assert claim["verdict"] == "supported", claim
    assert claim["citations_valid"] is True
    assert set(claim) == {"verdict", "reason", "citations_valid"}
    assert claim["reason"]


def test_a_citation_by_document_id_reads_the_same_text(corpus: Corpus) -> None:
    start, end = _at(3)
    result = _only(
        corpus.verify(
            {
                "id": "by-id",
                "claims": [_claim(SENTENCES[3], start, end, document=corpus.document_id)],
            }
        )
    )
    assert result["answer_verdict"] is None  # no answer given, nothing to check
    [claim] = result["claims"]
    assert (claim["verdict"], claim["citations_valid"]) == ("supported", True), claim


def test_wrong_offsets(corpus: Corpus) -> None:
    start, _ = _at(0)
    past_the_end = _claim(SENTENCES[0], start, len(MEMO) + 40)
    other_sentence = _claim(SENTENCES[0], *_at(1))
    result = _only(corpus.verify({"id": "wrong", "claims": [past_the_end, other_sentence]}))
    outside, elsewhere = result["claims"]
    assert outside["verdict"] == "unsupported"
    assert outside["citations_valid"] is False
    assert "outside the document" in outside["reason"]
    # In range but not the text that states it: the citation is real, the claim does not
    # follow from it.
    assert elsewhere["verdict"] != "supported", elsewhere


def test_a_citation_across_a_chunk_boundary(corpus: Corpus) -> None:
    chunks = SentenceChunker(max_chars=CHUNK_CHARS).chunk(DocumentId("doc_memo"), MEMO)
    assert len(chunks) >= 2
    boundary = chunks[0].end
    before = next(i for i, s in enumerate(SENTENCES) if _at(i)[1] == boundary)
    start, end = _at(before)[0], _at(before + 1)[1]
    assert start < boundary < chunks[1].start < end  # the range crosses into chunk 2
    result = _only(
        corpus.verify(
            {
                "id": "across",
                "claims": [
                    _claim(SENTENCES[before], start, end),
                    _claim(SENTENCES[before + 1], start, end),
                ],
            }
        )
    )
    for claim in result["claims"]:
        assert (claim["verdict"], claim["citations_valid"]) == ("supported", True), claim


def test_unknown_documents_are_unsupported_claims_not_errors(corpus: Corpus) -> None:
    start, end = _at(0)
    result = _only(
        corpus.verify(
            {
                "id": "mixed",
                "claims": [
                    _claim(SENTENCES[0], start, end, source="no-such-memo"),
                    _claim(SENTENCES[0], start, end, document="doc_0000000000000000"),
                    _claim(SENTENCES[0], start, end),
                ],
            }
        )
    )
    by_source, by_id, fine = result["claims"]
    for missing in (by_source, by_id):
        assert missing["verdict"] == "unsupported"
        assert missing["citations_valid"] is False
        assert "no-such-memo" not in missing["reason"]
    assert by_source["reason"] == by_id["reason"]
    assert fine["verdict"] == "supported"


def test_graph_facts_are_cited_by_relation_id(corpus: Corpus) -> None:
    with corpus.client() as client:
        found = client.get("/v1/entities", params={"q": "Globex"}).json()["entities"]
        facts = [
            fact
            for entity in found
            for fact in client.get(f"/v1/entities/{entity['id']}").json()["facts"]
        ]
    assert facts
    fact = facts[0]
    span = fact["evidence"][0]
    cited = _claim(span["text"], span["start"], span["end"], document=span["document_id"])
    unknown = {**cited, "facts": ["rel_0000000000000000"]}
    result = _only(
        corpus.verify({"id": "facts", "claims": [{**cited, "facts": [fact["id"]]}, unknown]})
    )
    stated, missing = result["claims"]
    assert stated["citations_valid"] is True, stated
    assert (missing["verdict"], missing["citations_valid"]) == ("unsupported", False)
    assert "rel_0000000000000000" in missing["reason"]


def test_one_object_or_a_list(corpus: Corpus) -> None:
    start, end = _at(0)
    item = {"id": "one", "claims": [_claim(SENTENCES[0], start, end)]}
    single = corpus.verify(item)
    assert isinstance(_only(single), dict)
    items = [{**item, "id": f"n{i}"} for i in range(3)] + [{"claims": []}]
    listed = _only(corpus.verify(items))
    assert isinstance(listed, list)
    assert [r["id"] for r in listed] == ["n0", "n1", "n2", None]
    assert listed[0]["claims"] == _only(single)["claims"]
    assert listed[3] == {"id": None, "answer_verdict": None, "claims": []}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"id": "x"}, "claims"),
        ({"claims": [{"text": "x", "citations": [{"start": 0, "end": 5}]}]}, "citations"),
        (
            {
                "claims": [
                    {
                        "text": "x",
                        "citations": [{"source": "a", "document": "b", "start": 0, "end": 5}],
                    }
                ]
            },
            "citations",
        ),
        ({"claims": [{"text": "x", "citations": [{"source": "a", "start": 9, "end": 3}]}]}, "end"),
        ({"claims": [{"text": "x" * (MAX_CLAIM_CHARS + 1)}]}, "text"),
        ({"claims": [], "colour": "red"}, "colour"),
        ([{"claims": []}] * (MAX_ITEMS + 1), f"at most {MAX_ITEMS} items"),
        ([], "at least 1 item"),
    ],
)
def test_malformed_items_are_422(corpus: Corpus, body: Any, where: str) -> None:
    response = corpus.verify(body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "invalid_request"
    assert where in json.dumps(error["detail"]), error


def test_a_key_is_required(corpus: Corpus) -> None:
    with corpus.client(None) as client:
        response = client.post("/v1/verify", json={"claims": []})
    assert response.status_code == 401


def test_verification_is_audited_as_a_read(corpus: Corpus) -> None:
    start, end = _at(0)
    _only(corpus.verify({"id": "audited", "claims": [_claim(SENTENCES[0], start, end)]}))
    records = [
        json.loads(line) for line in (corpus.data_dir / "audit.log").read_text().splitlines()
    ]
    verified = [r for r in records if r["action"] == "verify"]
    assert verified
    assert verified[-1]["cited_documents"] == [corpus.document_id]
    assert verified[-1]["key_id"]
    assert SENTENCES[0] not in json.dumps(verified)  # ids and counts, never text


def test_fuzzed_bodies_never_5xx(corpus: Corpus) -> None:
    """Schema-driven bodies for the endpoint: answers or 4xx in the error shape, never 5xx."""
    schema = schemathesis.openapi.from_url(f"{corpus.base}/openapi.json")
    [operation] = [
        result.ok() for result in schema.get_all_operations() if result.ok().path == "/v1/verify"
    ]
    failures: list[str] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {corpus.keys['acme']}"})
        if response.status_code >= 500:
            failures.append(response.text[:300])
        elif response.status_code >= 400:
            assert set(response.json()) == {"error", "message", "detail"}, response.text

    check()
    assert not failures, failures


def test_a_negated_claim_is_not_supported(corpus: Corpus) -> None:
    """Depends on the entailment rules of the validator: "did not acquire" cites text that
    says "acquired", so the claim must not come back supported. (The rest of this module
    holds whatever those rules decide.)"""
    start, end = _at(0)
    negated = "Acme Corporation did not acquire Globex Industries in March 2024."
    result = _only(corpus.verify({"id": "negated", "claims": [_claim(negated, start, end)]}))
    [claim] = result["claims"]
    assert claim["citations_valid"] is True
    assert claim["verdict"] != "supported", claim
