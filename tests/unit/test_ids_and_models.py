from __future__ import annotations

import pytest
from pydantic import ValidationError

from graph import (
    PUBLIC_GROUP,
    Access,
    Chunk,
    Span,
    chunk_id,
    document_id,
    entity_id,
    entity_scope,
    normalize_name,
    relation_id,
)


def test_ids_are_content_hashes() -> None:
    doc = document_id("acme", "src-1", "abc")
    assert doc == document_id("acme", "src-1", "abc")
    assert doc != document_id("other", "src-1", "abc")
    assert doc != document_id("acme", "src-1", "abd")
    assert chunk_id(doc, 0, 10) != chunk_id(doc, 0, 11)
    pub = entity_scope("acme", ["*"])
    assert entity_id("Barack  Obama", "PERSON", scope=pub) == entity_id(
        "barack obama", "PERSON", scope=pub
    )
    assert entity_id("Paris", "GPE", scope=pub) != entity_id("Paris", "PERSON", scope=pub)
    a, b = entity_id("A", "ORG", scope=pub), entity_id("B", "ORG", scope=pub)
    # One name in two tenants, or in two access lists of one tenant, is two entities.
    assert entity_id("Paris", "GPE", scope=pub) != entity_id(
        "Paris", "GPE", scope=entity_scope("globex", ["*"])
    )
    assert entity_id("Paris", "GPE", scope=entity_scope("acme", ["g1"])) != entity_id(
        "Paris", "GPE", scope=entity_scope("acme", ["g2"])
    )
    assert entity_scope("acme", ["b", "a"]) == entity_scope("acme", ["a", "b"])
    assert entity_scope("acme", ["a,b"]) != entity_scope("acme", ["a", "b"])
    assert relation_id(a, "owns", b) != relation_id(b, "owns", a)


def test_normalize_name_folds_case_space_and_quotes() -> None:
    assert normalize_name("  Lothair\u2019s   Court ") == "lothair's court"


def test_span_and_chunk_reject_mismatched_lengths() -> None:
    doc = document_id("t", "s", "h")
    with pytest.raises(ValidationError):
        Span(chunk_id=chunk_id(doc, 0, 3), document_id=doc, start=0, end=3, text="ab")
    with pytest.raises(ValidationError):
        Chunk(id=chunk_id(doc, 0, 3), document_id=doc, index=0, start=0, end=3, text="abcd")


def test_models_are_frozen_and_strict() -> None:
    access = Access(tenant="acme", groups=frozenset({"legal"}))
    with pytest.raises(ValidationError):
        access.tenant = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Access(tenant="acme", unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Access(tenant="has space")
    with pytest.raises(ValidationError):
        Access(tenant="acme", groups=frozenset({"*"}))


def test_access_rules() -> None:
    legal = Access(tenant="acme", groups=frozenset({"legal"}))
    assert legal.can_read("acme", [PUBLIC_GROUP])
    assert legal.can_read("acme", ["legal", "hr"])
    assert not legal.can_read("acme", ["hr"])
    assert not legal.can_read("other", [PUBLIC_GROUP])
    assert Access.admin().can_read("anyone", ["hr"])
    assert legal.readable_groups() == [PUBLIC_GROUP, "legal"]
