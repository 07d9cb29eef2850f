"""What the two Qdrant vector indexes share, written once.

Both :mod:`graph.backends.qdrant_edge_index` (Qdrant Edge, embedded) and
:mod:`graph.backends.qdrant_client_index` (``qdrant-client``: a server, or local mode) store a
chunk as one point with the same named vectors and the same payload, in one partition per
tenant (a shard, or a collection). Qdrant computes the sparse vectors' IDF over one
partition, so a tenant's keyword scores and rankings depend on its own documents only, and
no other tenant's writes can move them. This module holds:

- :func:`partition_key`, the stable, file- and collection-name-safe key of a tenant's
  partition, and :func:`merge_hits`, how reads over several partitions (admin access) are
  put together;
- the vector and payload field names, and a point's payload and vectors built from a
  :class:`~graph.protocols.VectorPoint`;
- the access filter as a neutral list of :class:`FieldMatch` conditions, which each backend
  turns into its own client's filter type;
- search hits and stored sentence vectors decoded from a point's payload;
- :class:`QdrantErrors`, the one place where what either driver raises becomes a
  :class:`~graph.errors.StoreUnavailableError` (the index cannot be reached or opened) or a
  :class:`~graph.errors.StoreError` (anything else).

It imports neither driver: the embedded index must not pay for importing ``qdrant-client``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from graph.errors import StoreError, StoreUnavailableError, ThreadlineError
from graph.ids import ChunkId, DocumentId
from graph.models import Access
from graph.protocols import SentenceVector, VectorHit, VectorPoint

__all__ = [
    "HIT_FIELDS",
    "KEYWORD_FIELDS",
    "SENTENCES",
    "SPARSE",
    "VECTOR",
    "FieldMatch",
    "QdrantErrors",
    "document_match",
    "merge_hits",
    "partition_key",
    "point_payload",
    "point_vectors",
    "read_matches",
    "stored_hit",
    "stored_sentences",
    "tenant_of",
]

VECTOR = "chunk"
SPARSE = "bm25"
SENTENCES = "sentences"  # multivector: the chunk's stored sentence vectors

_CHUNK_ID = "chunk_id"
_DOCUMENT_ID = "document_id"
_TENANT = "tenant"
_GROUPS = "groups"
_SENTENCE_SPANS = "sentence_spans"

KEYWORD_FIELDS = (_TENANT, _GROUPS, _DOCUMENT_ID)
"""Payload fields every filter uses; servers and Edge index them as keywords."""

HIT_FIELDS = [_CHUNK_ID, _DOCUMENT_ID]
"""Payload fields a search reads back."""


# ---------------------------------------------------------------------- partitions


def partition_key(tenant: str) -> str:
    """The key of ``tenant``'s partition: 32 hex digits of its SHA-256, safe in any name."""
    return hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:32]


def merge_hits(found: Iterable[Sequence[VectorHit]], limit: int) -> list[VectorHit]:
    """The best ``limit`` hits of several partitions' searches, best first.

    Ties keep the partitions' order, so the merge is deterministic. Each partition scores
    keywords with its own statistics: only admin access reads more than one.
    """
    hits = [hit for part in found for hit in part]
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]


def tenant_of(payload: Mapping[str, Any] | None) -> str:
    """The tenant a stored point belongs to (empty when the payload has none)."""
    return str((payload or {}).get(_TENANT, ""))


# ---------------------------------------------------------------------- points


def point_payload(point: VectorPoint, *, sentences: bool) -> dict[str, Any]:
    """The payload stored with ``point``; ``sentences`` keeps its sentence spans."""
    payload: dict[str, Any] = {
        _CHUNK_ID: point.chunk_id,
        _DOCUMENT_ID: point.document_id,
        _TENANT: point.tenant,
        _GROUPS: list(point.groups),
    }
    if sentences and point.sentences:
        payload[_SENTENCE_SPANS] = [[s.start, s.end] for s in point.sentences]
    return payload


def point_vectors(
    point: VectorPoint,
    *,
    sentences: bool,
    sparse: Callable[[list[int], list[float]], object],
) -> dict[str, Any]:
    """The named vectors of ``point``; ``sparse`` builds the client's sparse vector type."""
    vectors: dict[str, Any] = {VECTOR: list(point.vector)}
    if point.sparse is not None and point.sparse.indices:
        vectors[SPARSE] = sparse(list(point.sparse.indices), list(point.sparse.values))
    if sentences and point.sentences:
        vectors[SENTENCES] = [list(s.vector) for s in point.sentences]
    return vectors


def stored_hit(payload: Mapping[str, Any] | None, score: float) -> VectorHit:
    """A search hit from a point's :data:`HIT_FIELDS` payload."""
    fields = payload or {}
    return VectorHit(
        chunk_id=fields[_CHUNK_ID], document_id=fields[_DOCUMENT_ID], score=float(score)
    )


def stored_sentences(
    records: Iterable[tuple[Mapping[str, Any] | None, object]], access: Access
) -> dict[ChunkId, list[SentenceVector]]:
    """Sentence vectors of the readable records, given as ``(payload, vectors)`` pairs.

    A record whose stored vectors and spans disagree in number (or that has none) is left
    out: its sentences are embedded again at query time.
    """
    found: dict[ChunkId, list[SentenceVector]] = {}
    for payload, vectors in records:
        fields = payload or {}
        if not access.can_read(fields.get(_TENANT, ""), fields.get(_GROUPS, [])):
            continue
        stored = vectors.get(SENTENCES) if isinstance(vectors, Mapping) else None
        spans = fields.get(_SENTENCE_SPANS) or []
        if isinstance(stored, list) and stored and len(stored) == len(spans):
            found[ChunkId(fields[_CHUNK_ID])] = [
                SentenceVector(start=a, end=b, vector=tuple(v))
                for (a, b), v in zip(spans, stored, strict=True)
            ]
    return found


# ---------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class FieldMatch:
    """Payload field ``key`` holds one of ``values`` (for a list field: any of its items)."""

    key: str
    values: tuple[str, ...]


def read_matches(
    access: Access, document_ids: Sequence[DocumentId] | None = None
) -> list[FieldMatch]:
    """Conditions a point must all meet to be seen by ``access`` (none: every point).

    ``document_ids`` further restricts the points to those documents.
    """
    matches: list[FieldMatch] = []
    if not access.is_admin:
        matches.append(FieldMatch(_TENANT, (access.tenant or "",)))
        matches.append(FieldMatch(_GROUPS, tuple(access.readable_groups())))
    if document_ids is not None:
        matches.append(document_match(document_ids))
    return matches


def document_match(document_ids: Sequence[DocumentId]) -> FieldMatch:
    """The condition that selects every point of these documents."""
    return FieldMatch(_DOCUMENT_ID, tuple(str(d) for d in document_ids))


# ---------------------------------------------------------------------- errors

_Kind = Literal["unreachable", "rejected"]

# HTTP statuses and gRPC codes that mean the server (or a proxy in front of it) cannot
# serve now, or turned the API key away; every other answer is a plain failure.
_STATUS_KINDS: dict[int, _Kind] = {
    502: "unreachable",
    503: "unreachable",
    504: "unreachable",
    401: "rejected",
    403: "rejected",
}
_GRPC_KINDS: dict[str, _Kind] = {
    "UNAVAILABLE": "unreachable",
    "DEADLINE_EXCEEDED": "unreachable",
    "UNAUTHENTICATED": "rejected",
    "PERMISSION_DENIED": "rejected",
}
_CHAIN_LIMIT = 16


@dataclass(frozen=True, slots=True)
class QdrantErrors:
    """Maps what a Qdrant driver raises to Threadline's errors, naming the index.

    Use one per index and wrap every driver call::

        with self._errors("search"):
            response = await client.query_points(...)

    Connection refused, timeouts, an unreachable or overloaded server (HTTP 502/503/504,
    gRPC ``UNAVAILABLE``/``DEADLINE_EXCEEDED``), a directory another process holds, and a
    rejected API key become :class:`StoreUnavailableError`; anything else the driver raises
    becomes :class:`StoreError`. Threadline's own errors pass through unchanged.

    Attributes:
        where: the server URL or the index directory, named in every message.
        remote: whether ``where`` is a server URL rather than a directory.
    """

    where: str
    remote: bool = False

    @contextmanager
    def __call__(self, action: str, *, opening: bool = False) -> Iterator[None]:
        """Translate driver errors raised inside the block.

        Args:
            action: what the block does (``"search"``, ``"upsert"``), named in the message.
            opening: the block opens the index, so any failure leaves it unusable and is
                reported as unavailable. Qdrant Edge raises plain ``Exception`` for every
                failure, so a failed open cannot be told apart any other way.
        """
        try:
            yield
        except ThreadlineError:
            raise
        # Neither driver has an exception root: Qdrant Edge raises ``Exception`` itself,
        # local mode ``ValueError`` and ``RuntimeError``, servers httpx and gRPC errors.
        except Exception as exc:
            raise self.translate(exc, action, opening=opening) from exc

    def translate(self, exc: BaseException, action: str, *, opening: bool = False) -> StoreError:
        """The Threadline error for ``exc``, raised by the driver while doing ``action``."""
        reason = _reason(exc)
        kind = _classify(exc)
        if kind == "rejected":
            return StoreUnavailableError(
                f"Qdrant at {self.where} refused the credentials ({action}): {reason}; "
                "check THREADLINE_VECTOR__API_KEY"
            )
        if kind == "unreachable" and self.remote:
            return StoreUnavailableError(
                f"cannot reach Qdrant at {self.where} ({action}): {reason}; check that the "
                "server is running and that THREADLINE_VECTOR__URL points at it"
            )
        if opening:
            hint = (
                "check the server's log and THREADLINE_VECTOR__URL"
                if self.remote
                else "Another Threadline process may be using this directory; stop it or use "
                "another one"
            )
            return StoreUnavailableError(
                f"cannot open the Qdrant index at {self.where}: {reason}. {hint}"
            )
        if kind == "unreachable":
            return StoreUnavailableError(
                f"the Qdrant index at {self.where} is not usable ({action}): {reason}; check "
                "that its directory exists, is writable and has free space"
            )
        return StoreError(f"Qdrant {action} at {self.where} failed: {reason}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, following the wrapped ``source`` of qdrant-client."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(link))
        yield link
        source = getattr(link, "source", None)
        if isinstance(source, BaseException):
            link = source
        elif link.__cause__ is not None:
            link = link.__cause__
        else:
            link = None if link.__suppress_context__ else link.__context__


def _reason(exc: BaseException) -> str:
    """What the driver said, and the root cause when that says something else.

    e.g. ``ConnectError: All connection attempts failed (ConnectionRefusedError: ...)``.
    """
    said = [
        _said(link)
        for link in _chain(exc)
        # qdrant-client's ResponseHandlingException only wraps ``source``, message and all.
        if not isinstance(getattr(link, "source", None), BaseException) and _said(link)
    ]
    if not said:
        return type(exc).__name__
    first, root = said[0], said[-1]
    return first if root == first else f"{first} ({root})"


def _said(link: BaseException) -> str:
    text = str(link).strip().rstrip(".")  # messages go on after it
    if not text or type(link) is Exception:  # Qdrant Edge raises Exception for everything
        return text
    return f"{type(link).__name__}: {text}"


def _classify(exc: BaseException) -> _Kind | None:
    for link in _chain(exc):
        if isinstance(link, OSError):
            # Refused, reset, timed out, no route, name not resolved, directory locked.
            return "unreachable"
        kind = _client_kind(link)
        if kind is not None:
            return kind
    return None


def _client_kind(link: BaseException) -> _Kind | None:
    """How a qdrant-client, httpx or gRPC error reads (None when it is none of those)."""
    if "qdrant_client" not in sys.modules:
        # Nothing imported qdrant-client, so none of its errors can be raised; importing
        # it here would cost the embedded index a second on its first error.
        return None
    # Already loaded with qdrant-client (see above), so importing them here costs nothing.
    import grpc  # type: ignore[import-untyped]  # noqa: PLC0415 - grpcio ships no type stubs
    import httpx  # noqa: PLC0415 - see above
    from qdrant_client.http.exceptions import UnexpectedResponse  # noqa: PLC0415 - see above

    # Timeouts, refused or dropped connections, a proxy that cannot reach the server.
    down = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
    if isinstance(link, down):
        return "unreachable"
    if isinstance(link, UnexpectedResponse) and link.status_code is not None:
        return _STATUS_KINDS.get(link.status_code)
    if isinstance(link, grpc.RpcError) and callable(code := getattr(link, "code", None)):
        return _GRPC_KINDS.get(getattr(code(), "name", ""))
    return None
