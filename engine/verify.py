"""Verify anything: answers written elsewhere, checked against the stored text and graph.

An item names claims and what each cites — a document (by the source id it was ingested
with, or by document id) with character offsets into its text, and optionally graph facts
by relation id. Under the caller's :class:`~graph.Access` each citation becomes the spans of
every chunk its range overlaps (a citation across a chunk boundary is one span per chunk)
plus the document at its current version; the claims then go through the same
:class:`~agents.ProvenanceValidator` and :class:`~agents.AnswerChecker` as Threadline's own
answers. A citation of a document the caller cannot read is ``unsupported`` with a reason
that is the same whether the document is missing or belongs to someone else.

Input (one item; the CLI reads one per line, the API takes one or a list)::

    {"id": "c1", "question": "optional", "answer": "optional",
     "claims": [{"text": "...", "citations": [{"source": "memo-7", "start": 12, "end": 80}],
                 "facts": ["rel_..."]}]}

Output: ``{"id": "c1", "answer_verdict": "supported", "claims": [{"verdict": ...,
"reason": ..., "citations_valid": true}]}``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from agents import AnswerCheck, AnswerChecker, ProvenanceValidator
from graph import (
    Access,
    Chunk,
    Document,
    DocumentId,
    GraphStore,
    InputError,
    Relation,
    RelationId,
)
from graph.provenance import Claim, DocumentRef, FactRef, SpanRef, Verdict

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_CITATIONS",
    "MAX_CITATION_CHARS",
    "MAX_CLAIMS",
    "MAX_CLAIM_CHARS",
    "MAX_FACTS",
    "MAX_FILE_LINES",
    "MAX_ITEMS",
    "MAX_QUESTION_CHARS",
    "CitationIn",
    "ClaimIn",
    "ClaimVerdict",
    "Verifier",
    "VerifyItem",
    "VerifyResult",
]

#: Items per call (one API request).
MAX_ITEMS = 100
#: Lines per file ``threadline verify`` reads.
MAX_FILE_LINES = 10_000
#: Claims per item.
MAX_CLAIMS = 50
#: Characters per claim.
MAX_CLAIM_CHARS = 2_000
#: Citations per claim.
MAX_CITATIONS = 20
#: Characters one citation may cover (``end - start``).
MAX_CITATION_CHARS = 20_000
#: Graph facts per claim.
MAX_FACTS = 20
#: Characters of the question.
MAX_QUESTION_CHARS = 2_000
#: Characters of the answer.
MAX_ANSWER_CHARS = 5_000

#: The one reason for a document that is missing, deleted, another tenant's or in a group
#: the caller lacks: which of these it is must not be learnable.
_UNREADABLE = "the cited document does not exist or may not be read"


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CitationIn(_In):
    """A range of a document's text: ``text[start:end]``, the document named by the source
    id it was ingested with or by its document id (one of the two)."""

    source: str | None = Field(
        default=None, min_length=1, max_length=2000, description="the source id at ingest"
    )
    document: str | None = Field(
        default=None, min_length=1, max_length=200, description="a document id (doc_...)"
    )
    start: int = Field(ge=0, description="offset of the first character in the document text")
    end: int = Field(ge=1, description="offset just past the last character")

    @model_validator(mode="after")
    def _one_document_and_a_range(self) -> CitationIn:
        if (self.source is None) == (self.document is None):
            raise ValueError('a citation names its document by "source" or by "document" (one)')
        if self.end <= self.start:
            raise ValueError(f"a citation's end ({self.end}) must be after its start")
        if self.end - self.start > MAX_CITATION_CHARS:
            raise ValueError(
                f"a citation covers at most {MAX_CITATION_CHARS:,} characters; "
                "cite the sentences that state the claim"
            )
        return self


class ClaimIn(_In):
    """One statement and what it cites."""

    text: str = Field(min_length=1, max_length=MAX_CLAIM_CHARS)
    citations: list[CitationIn] = Field(default_factory=list, max_length=MAX_CITATIONS)
    facts: list[str] = Field(
        default_factory=list,
        max_length=MAX_FACTS,
        description="relation ids (rel_...) of graph facts the claim cites",
    )


class VerifyItem(_In):
    """An answer to verify: its claims with citations, and optionally the question and the
    answer line (checked against the claims that come out supported)."""

    id: str | None = Field(default=None, max_length=200, description="echoed in the result")
    question: str | None = Field(default=None, max_length=MAX_QUESTION_CHARS)
    answer: str | None = Field(default=None, max_length=MAX_ANSWER_CHARS)
    claims: list[ClaimIn] = Field(max_length=MAX_CLAIMS)


class ClaimVerdict(_In):
    """A claim's verdict: whether its citations hold, and whether its text follows."""

    verdict: Verdict
    reason: str
    citations_valid: bool = Field(
        description="every cited range and fact exists, may be read and matches the stored "
        "text; the verdict says whether the claim follows from it"
    )


class VerifyResult(_In):
    """An item's verdicts, claims in the order given."""

    id: str | None
    answer_verdict: Verdict | None = Field(
        description="whether the answer follows from the supported claims (null: no answer)"
    )
    claims: list[ClaimVerdict]
    _documents: tuple[DocumentId, ...] = PrivateAttr(default=())

    @property
    def cited_documents(self) -> tuple[DocumentId, ...]:
        """Ids of the readable documents the citations resolved to (for the audit log; not
        part of the output)."""
        return self._documents

    @classmethod
    def of(
        cls,
        item: VerifyItem,
        check: AnswerCheck,
        claims: Sequence[Claim],
        unresolved: Collection[int],
    ) -> VerifyResult:
        """The result of one item from its validated claims and answer check."""
        result = cls(
            id=item.id,
            answer_verdict=check.verdict,
            claims=[_verdict(c, i in unresolved) for i, c in enumerate(claims)],
        )
        result._documents = tuple(sorted({d.document_id for c in claims for d in c.documents}))
        return result


class Verifier:
    """Checks items against the graph under one access, with Threadline's own validator."""

    def __init__(
        self, *, graph: GraphStore, validator: ProvenanceValidator, checker: AnswerChecker
    ) -> None:
        self._graph = graph
        self._validator = validator
        self._checker = checker

    async def verify(self, items: Sequence[VerifyItem], access: Access) -> list[VerifyResult]:
        """Each item's verdicts, in order (at most :data:`MAX_ITEMS` items per call)."""
        if len(items) > MAX_ITEMS:
            raise InputError(f"verify at most {MAX_ITEMS} items at a time; split the input")
        lookup = await _Lookup.load(self._graph, items, access)
        results = []
        for item in items:
            claims: list[Claim] = []
            problems: dict[int, str] = {}
            for index, given in enumerate(item.claims):
                claim, problem = lookup.claim(given)
                claims.append(claim)
                if problem is not None:
                    problems[index] = problem
            validated = await self._validator.validate(claims, access, problems=problems)
            check = self._checker.check(item.question, item.answer, validated)
            results.append(VerifyResult.of(item, check, validated, problems))
        return results


def _verdict(claim: Claim, unresolved: bool) -> ClaimVerdict:
    """The output of one validated claim. A citation that did not resolve is invalid;
    otherwise the validator's own finding stands (before it reports one: the spans were
    cut from the stored text and the facts read from the graph, so they hold when the
    claim cites anything at all)."""
    if unresolved:
        valid = False
    elif claim.citations_valid is not None:
        valid = claim.citations_valid
    else:
        valid = bool(claim.spans or claim.facts)
    return ClaimVerdict(verdict=claim.verdict, reason=claim.reason, citations_valid=valid)


@dataclass
class _Lookup:
    """Every document, chunk and fact the items cite that ``access`` may read, each read
    from the store once for the whole call."""

    by_source: dict[str, list[Document]]
    by_id: dict[DocumentId, Document]
    chunks: dict[DocumentId, list[Chunk]]
    facts: dict[str, FactRef]

    @classmethod
    async def load(cls, graph: GraphStore, items: Sequence[VerifyItem], access: Access) -> _Lookup:
        citations = [c for i in items for claim in i.claims for c in claim.citations]
        by_source: dict[str, list[Document]] = {}
        for source in dict.fromkeys(c.source for c in citations if c.source is not None):
            # Two are enough to tell "one document" from "ambiguous".
            by_source[source] = await graph.documents(access, source=source, limit=2)
        ids = list(dict.fromkeys(DocumentId(c.document) for c in citations if c.document))
        by_id = (
            {d.id: d for d in await graph.documents(access, ids=ids, limit=len(ids))} if ids else {}
        )
        lookup = cls(by_source, by_id, {}, {})
        ranges = [
            (doc.id, c.start, c.end)
            for c in citations
            if (doc := lookup.document(c)[0]) is not None
        ]
        for chunk in await graph.chunks_overlapping(ranges, access) if ranges else []:
            lookup.chunks.setdefault(chunk.document_id, []).append(chunk)
        fact_ids = list(
            dict.fromkeys(RelationId(f) for i in items for c in i.claims for f in c.facts)
        )
        lookup.facts = await _fact_refs(graph, fact_ids, access) if fact_ids else {}
        return lookup

    def document(self, citation: CitationIn) -> tuple[Document | None, str | None]:
        """The cited document, or why there is none."""
        if citation.document is not None:
            doc = self.by_id.get(DocumentId(citation.document))
            return (doc, None) if doc is not None else (None, _UNREADABLE)
        found = self.by_source.get(citation.source or "", [])
        if not found:
            return None, _UNREADABLE
        if len(found) > 1:
            return None, (
                "more than one document you can read has this source id; "
                'cite by "document" id instead'
            )
        return found[0], None

    def claim(self, given: ClaimIn) -> tuple[Claim, str | None]:
        """The claim with its provenance chain, and the first citation problem if any."""
        spans: list[SpanRef] = []
        docs: dict[DocumentId, DocumentRef] = {}
        problems: list[str] = []
        for number, citation in enumerate(given.citations, 1):
            doc, problem = self.document(citation)
            if doc is None:
                problems.append(f"citation {number}: {problem}")
                continue
            cut, problem = _spans(doc, self.chunks.get(doc.id, []), citation)
            if problem is not None:
                problems.append(f"citation {number}: {problem}")
                continue
            spans += cut
            docs.setdefault(doc.id, DocumentRef.of(doc))
        facts = []
        for fact_id in given.facts:
            ref = self.facts.get(fact_id)
            if ref is None:
                problems.append(f"fact {fact_id} is not in the graph for this reader")
            else:
                facts.append(ref)
        claim = Claim(
            text=given.text,
            facts=tuple(facts),
            spans=tuple(spans),
            documents=tuple(docs.values()),
        )
        return claim, (problems[0] if problems else None)


def _spans(
    doc: Document, chunks: Sequence[Chunk], citation: CitationIn
) -> tuple[list[SpanRef], str | None]:
    """``doc.text[start:end]`` as one span per chunk it overlaps (a character in two
    overlapping chunks goes to the first), or why it cannot be cited."""
    start, end = citation.start, citation.end
    if end > len(doc.text):
        return [], (
            f"offsets {start}:{end} lie outside the document, whose text has "
            f"{len(doc.text):,} characters"
        )
    spans: list[SpanRef] = []
    uncovered: list[tuple[int, int]] = []
    at = start
    for chunk in sorted(chunks, key=lambda c: (c.start, c.index)):
        lo, hi = max(at, chunk.start), min(end, chunk.end)
        if lo >= hi:
            continue
        if lo > at:
            uncovered.append((at, lo))
        spans.append(SpanRef.of(doc, chunk.id, lo, hi, doc.text[lo:hi]))
        at = hi
    if at < end:
        uncovered.append((at, end))
    # Whitespace between chunks is in no chunk; any other text the index does not hold
    # cannot be checked.
    for lo, hi in uncovered:
        if doc.text[lo:hi].strip():
            return [], f"offsets {lo}:{hi} hold text that is in no indexed chunk"
    if not spans:
        return [], f"offsets {start}:{end} hold only whitespace"
    return spans, None


async def _fact_refs(
    graph: GraphStore, ids: Sequence[RelationId], access: Access
) -> dict[str, FactRef]:
    """Readable facts by id, with their ends named as the caller may read them."""
    facts: list[Relation] = await graph.facts(ids, access)
    ends = list(dict.fromkeys(e for f in facts for e in (f.subject_id, f.object_id)))
    named = {e.id: e for e in await graph.entities(ends, access)} if ends else {}
    return {f.id: FactRef.of(f, named.get(f.subject_id), named.get(f.object_id)) for f in facts}
