"""The provenance validator: every claim is checked against the graph and the source text.

A claim is ``supported`` only when every fact it cites exists in the graph with evidence
the caller may read, every span it cites matches the stored text exactly, every cited fact
is stated inside one of the cited spans, and the claim's text is grounded in those spans.
A cited fact whose subject and predicate exist with a different object is
``contradicted``. Anything else is ``unsupported``, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from graph import (
    Access,
    Chunk,
    ChunkId,
    Document,
    DocumentId,
    GraphStore,
    Relation,
    RelationId,
    normalize_name,
)
from graph.provenance import Claim, FactRef, SpanRef, Verdict

__all__ = ["ProvenanceValidator"]


class ProvenanceValidator:
    """Gives each claim a verdict and a reason, reading only what ``access`` may read."""

    def __init__(self, *, graph: GraphStore) -> None:
        self._graph = graph

    async def validate(self, claims: Sequence[Claim], access: Access) -> list[Claim]:
        """The same claims, each with its verdict and reason."""
        fact_ids = [f.relation_id for c in claims for f in c.facts]
        facts = {r.id: r for r in await self._graph.facts(fact_ids, access)}
        chunk_ids = [s.chunk_id for c in claims for s in c.spans]
        chunks = {c.id: c for c in await self._graph.chunks(chunk_ids, access)}
        doc_ids = [d.document_id for c in claims for d in c.documents]
        docs = {
            d.id: d
            for d in await self._graph.documents(access, ids=doc_ids, limit=len(doc_ids) or 1)
        }
        out = []
        for claim in claims:
            verdict, reason = await self._judge(claim, facts, chunks, docs, access)
            out.append(claim.model_copy(update={"verdict": verdict, "reason": reason}))
        return out

    async def _judge(
        self,
        claim: Claim,
        facts: dict[RelationId, Relation],
        chunks: dict[ChunkId, Chunk],
        docs: dict[DocumentId, Document],
        access: Access,
    ) -> tuple[Verdict, str]:
        if not claim.spans:
            return "unsupported", "the claim cites no source text"
        problem = _check_spans(claim, chunks) or _check_documents(claim, docs)
        if problem:
            return "unsupported", problem
        fact_problem = await self._check_facts(claim, facts, access)
        if fact_problem is not None:
            return fact_problem
        if not _grounded(claim.text, claim.spans):
            return "unsupported", "the claim's words are not found in the cited text"
        stated = f"; {len(claim.facts)} fact(s) exist in the graph and are stated there"
        return "supported", (
            f"{len(claim.spans)} span(s) match the source exactly" + (stated if claim.facts else "")
        )

    async def _check_facts(
        self, claim: Claim, facts: dict[RelationId, Relation], access: Access
    ) -> tuple[Verdict, str] | None:
        for ref in claim.facts:
            fact = facts.get(ref.relation_id)
            if fact is None:
                conflict = await self._conflict(ref, access)
                if conflict is not None:
                    return "contradicted", (
                        f"the graph states {ref.subject} —{ref.predicate}→ {conflict}, "
                        f"not {ref.object}"
                    )
                return "unsupported", f"fact {ref.relation_id} is not in the graph for this reader"
            problem = _check_fact(ref, fact, claim.spans)
            if problem:
                return "unsupported", problem
        return None

    async def _conflict(self, ref: FactRef, access: Access) -> str | None:
        """The object the graph gives for the cited subject and predicate, if another one."""
        related = await self._graph.relations(
            [ref.subject_id], access, predicates=[ref.predicate], limit=20
        )
        others = [
            r for r in related if r.subject_id == ref.subject_id and r.object_id != ref.object_id
        ]
        if not others:
            return None
        names = await self._graph.entities([others[0].object_id], access)
        return names[0].name if names else others[0].object_id


def _check_spans(claim: Claim, chunks: dict[ChunkId, Chunk]) -> str | None:
    for span in claim.spans:
        problem = _check_span(span, chunks.get(span.chunk_id))
        if problem:
            return problem
    return None


def _check_documents(claim: Claim, docs: dict[DocumentId, Document]) -> str | None:
    for ref in claim.documents:
        doc = docs.get(ref.document_id)
        if doc is None:
            return f"document {ref.document_id} does not exist or may not be read"
        if doc.version != ref.version:
            return f"document {ref.document_id} is at version {doc.version}, not {ref.version}"
    return None


def _check_fact(ref: FactRef, fact: Relation, spans: Sequence[SpanRef]) -> str | None:
    if (fact.subject_id, fact.predicate, fact.object_id) != (
        ref.subject_id,
        ref.predicate,
        ref.object_id,
    ):
        return f"fact {ref.relation_id} does not say what the claim cites"
    if not any(_overlaps(e.chunk_id, e.start, e.end, spans) for e in fact.evidence):
        return f"fact {ref.relation_id} is not stated in the cited text"
    return None


def _check_span(span: SpanRef, chunk: Chunk | None) -> str | None:
    if chunk is None:
        return f"chunk {span.chunk_id} does not exist or may not be read"
    if chunk.document_id != span.document_id:
        return f"chunk {span.chunk_id} is not part of document {span.document_id}"
    if not (chunk.start <= span.start <= span.end <= chunk.end):
        return f"span {span.start}:{span.end} lies outside chunk {span.chunk_id}"
    stored = chunk.text[span.start - chunk.start : span.end - chunk.start]
    if stored != span.text:
        return f"span {span.start}:{span.end} does not match the source text"
    return None


def _overlaps(chunk_id: str, start: int, end: int, spans: Sequence[SpanRef]) -> bool:
    return any(s.chunk_id == chunk_id and s.start < end and start < s.end for s in spans)


def _grounded(text: str, spans: Sequence[SpanRef]) -> bool:
    key = normalize_name(text)
    return any(key in normalize_name(s.text) for s in spans)
