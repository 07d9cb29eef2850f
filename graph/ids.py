"""Content-hash identifiers.

Every id is a short SHA-256 prefix over the fields that make the thing what it is, so the
same content always gets the same id in every store and re-ingesting it is a no-op.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from collections.abc import Iterable
from typing import NewType

__all__ = [
    "ChunkId",
    "DocumentId",
    "EntityId",
    "RelationId",
    "chunk_id",
    "content_hash",
    "document_id",
    "entity_id",
    "entity_scope",
    "normalize_name",
    "point_uuid",
    "relation_id",
    "title_key",
]

DocumentId = NewType("DocumentId", str)
ChunkId = NewType("ChunkId", str)
EntityId = NewType("EntityId", str)
RelationId = NewType("RelationId", str)

_SEP = "\x1f"  # unit separator: cannot occur in a normalised name or predicate
# Tenants and group names hold no whitespace, and these separators count as whitespace.
_TENANT_SEP, _GROUP_SEP = "\x1d", "\x1e"


def _digest(*parts: str, size: int = 16) -> str:
    return hashlib.sha256(_SEP.join(parts).encode("utf-8")).hexdigest()[:size]


def content_hash(text: str, key: bytes | None = None) -> str:
    """Hex digest of a document's text: HMAC-SHA256 under the deployment's ``key`` (so a
    reader who sees a document with a value masked cannot test guesses of the value
    against its id), or plain SHA-256 without one (stores written before keys)."""
    if key is not None:
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_name(name: str) -> str:
    """Canonical comparison key of an entity name: NFKC, case-folded, single-spaced."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return " ".join(folded.replace("\u2019", "'").split())


def title_key(title: str) -> str:
    """Comparison key of a page title or a name: "Brand (play)" and "brand" agree."""
    bare = re.sub(r"\s*\([^)]*\)\s*$", "", title)
    return normalize_name(bare) or normalize_name(title)


def document_id(tenant: str, source: str, text_hash: str) -> DocumentId:
    """Id of one version of a document: tenant + source id + content hash."""
    return DocumentId("doc_" + _digest(tenant, source, text_hash))


def chunk_id(doc: DocumentId, start: int, end: int) -> ChunkId:
    """Id of a chunk: its document and its character span."""
    return ChunkId("chk_" + _digest(doc, str(start), str(end)))


def entity_scope(tenant: str, groups: Iterable[str]) -> str:
    """The scope an entity lives in: a document's tenant and its stored access list.

    Every name, alias, mention and fact an entity node collects comes from documents of
    exactly this scope, so whoever can read the node can read all of it.
    """
    return tenant + _TENANT_SEP + _GROUP_SEP.join(sorted(set(groups)))


def entity_id(name: str, entity_type: str, *, scope: str) -> EntityId:
    """Id of an entity: its scope (see :func:`entity_scope`), canonical name and type."""
    return EntityId("ent_" + _digest(scope, normalize_name(name), entity_type))


def relation_id(subject: EntityId, predicate: str, obj: EntityId) -> RelationId:
    """Id of a fact: subject + predicate + object."""
    return RelationId("rel_" + _digest(subject, predicate, obj))


def point_uuid(key: str) -> str:
    """Stable UUID for a vector point (Qdrant accepts only integers and UUIDs as ids)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "threadline:" + key))
