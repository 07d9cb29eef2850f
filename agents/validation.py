"""The provenance validator: every claim is checked against the graph and the source text.

A claim is ``supported`` only when every fact it cites exists in the graph with evidence
the caller may read, every span it cites matches the stored text exactly (and, when the
retrieved evidence is given, lies in it), every cited fact is stated inside one of the
cited spans, and the claim's text is grounded in those spans: either quoted from them, or
(a model's paraphrase) every name, number and date it states appears in the cited text or
facts and most of its words do. Where a model is given as ``judge``, it is also asked
whether the cited text supports the claim (prompt ``support``); it can only withhold
support, never grant it. A cited fact whose subject and predicate exist with a different
object, or a claim that states a cited fact's subject and relation but names another graph
entity (one the cited text does not name) where the fact has its object, is
``contradicted``. Anything else is ``unsupported``, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from extractors import SpacyEntityExtractor, tokenize
from extractors.chat import ChatModel, ask
from extractors.prompts import SUPPORT
from graph import (
    Access,
    Chunk,
    ChunkId,
    Document,
    DocumentId,
    GraphStore,
    LLMError,
    Relation,
    RelationId,
    normalize_name,
)
from graph.provenance import Claim, FactRef, SpanRef, Verdict

__all__ = ["ProvenanceValidator"]


class ProvenanceValidator:
    """Gives each claim a verdict and a reason, reading only what ``access`` may read."""

    def __init__(
        self,
        *,
        graph: GraphStore,
        judge: ChatModel | None = None,
        extractor: SpacyEntityExtractor | None = None,
    ) -> None:
        self._graph = graph
        self._judge = judge
        self._extractor = extractor

    @property
    def judged(self) -> bool:
        """Whether a judge model checks claims the rules let through."""
        return self._judge is not None

    async def validate(
        self,
        claims: Sequence[Claim],
        access: Access,
        *,
        evidence: Collection[ChunkId] | None = None,
        problems: Mapping[int, str] | None = None,
    ) -> list[Claim]:
        """The same claims, each with its verdict and reason.

        ``evidence``: the chunks retrieved for the question; a span elsewhere is not
        accepted (a model may cite only what it was shown). ``problems``: claims already
        known to be unsupported, by index, with the reason (e.g. a fabricated citation).
        """
        fact_ids = [f.relation_id for c in claims for f in c.facts]
        facts = {r.id: r for r in await self._graph.facts(fact_ids, access)}
        chunk_ids = [s.chunk_id for c in claims for s in c.spans]
        chunks = {c.id: c for c in await self._graph.chunks(chunk_ids, access)}
        doc_ids = [d.document_id for c in claims for d in c.documents]
        docs = {
            d.id: d
            for d in await self._graph.documents(access, ids=doc_ids, limit=len(doc_ids) or 1)
        }
        allowed = set(evidence) if evidence is not None else None
        out = []
        for index, claim in enumerate(claims):
            known = (problems or {}).get(index)
            if known:
                verdict, reason = "unsupported", known
            else:
                verdict, reason = await self._verdict(claim, facts, chunks, docs, access, allowed)
            out.append(claim.model_copy(update={"verdict": verdict, "reason": reason}))
        return out

    async def _verdict(  # noqa: PLR0911 - one return per kind of failure
        self,
        claim: Claim,
        facts: dict[RelationId, Relation],
        chunks: dict[ChunkId, Chunk],
        docs: dict[DocumentId, Document],
        access: Access,
        allowed: set[ChunkId] | None,
    ) -> tuple[Verdict, str]:
        if not claim.text.strip():
            return "unsupported", "the claim is empty"
        if not claim.spans:
            return "unsupported", "the claim cites no source text"
        outside = [
            s.chunk_id for s in claim.spans if allowed is not None and s.chunk_id not in allowed
        ]
        if outside:
            return "unsupported", f"chunk {outside[0]} was not retrieved for this question"
        problem = _check_spans(claim, chunks) or _check_documents(claim, docs)
        if problem:
            return "unsupported", problem
        fact_problem = await self._check_facts(claim, facts, access)
        if fact_problem is not None:
            return fact_problem
        missing = _ungrounded(claim)
        if missing is not None:
            other = await self._named_instead(claim, facts, access)
            if other is not None:
                return "contradicted", other
            return "unsupported", missing
        if self._judge is not None and not _quoted(claim.text, claim.spans):
            judged = await self._entailment(claim)
            if judged is not None:
                return judged
        stated = f"; {len(claim.facts)} fact(s) exist in the graph and are stated there"
        return "supported", (
            f"{len(claim.spans)} span(s) match the source exactly" + (stated if claim.facts else "")
        )

    async def _named_instead(
        self, claim: Claim, facts: dict[RelationId, Relation], access: Access
    ) -> str | None:
        """A contradiction: the claim states a cited fact's subject and relation, but
        names another graph entity (one the cited text does not name) where the fact has
        its object."""
        text = normalize_name(claim.text)
        cited = normalize_name(" ".join(s.text for s in claim.spans))
        for ref in claim.facts:
            if ref.relation_id not in facts or normalize_name(ref.subject) not in text:
                continue
            if normalize_name(ref.object) in text or not _states_predicate(claim.text, ref):
                continue
            for name in _names_in(claim.text):
                key = normalize_name(name)
                if not key or key in cited or key in normalize_name(ref.subject):
                    continue
                found = await self._graph.search_entities(name, access, limit=3)
                other = next((e for e in found if normalize_name(e.name) == key), None)
                if other is not None and other.id not in (ref.subject_id, ref.object_id):
                    return (
                        f"the graph states {ref.subject} —{ref.predicate}→ {ref.object}; "
                        f"the claim names {other.name} instead"
                    )
        return None

    async def _entailment(self, claim: Claim) -> tuple[Verdict, str] | None:
        """The judge model's verdict when it withholds support (None: it agrees)."""
        assert self._judge is not None
        cited = "\n".join(s.text for s in claim.spans)
        cited += "".join(f"\n{f.subject} — {f.predicate} → {f.object}" for f in claim.facts)
        try:
            judged, _ = await ask(
                self._judge,
                SUPPORT.messages(evidence=cited, claim=claim.text),
                SUPPORT.expect(),
                max_tokens=16,
            )
        except LLMError as exc:
            return "unsupported", f"the support check could not be made ({exc})"
        verdict = judged.verdict
        if verdict == "supported":
            return None
        if verdict == "contradicted":
            return (
                "contradicted",
                f"the model ({SUPPORT.id}) judges the cited text to contradict it",
            )
        return "unsupported", f"the model ({SUPPORT.id}) judges the cited text not to state it"

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


_WORDS = re.compile(r"[\w][\w'\-.]*")
_COVERAGE = 0.6


def _quoted(text: str, spans: Sequence[SpanRef]) -> bool:
    key = normalize_name(text)
    return any(key in normalize_name(s.text) for s in spans)


def _ungrounded(claim: Claim) -> str | None:
    """Why the claim's words are not grounded in what it cites (None: they are).

    A quote is grounded. A paraphrase is grounded when every name, number and date it
    states appears in the cited spans or fact names, and most of its words do.
    """
    if _quoted(claim.text, claim.spans):
        return None
    source_text = " ".join(s.text for s in claim.spans)
    source_text += " " + " ".join(f"{f.subject} {f.predicate} {f.object}" for f in claim.facts)
    source = set(tokenize(source_text))
    missing = [
        word
        for word in _WORDS.findall(claim.text)
        if (word[0].isupper() or any(c.isdigit() for c in word))
        and any(t not in source for t in tokenize(word))
    ]
    if missing:
        named = ", ".join(repr(m) for m in missing[:3])
        return f"the claim states {named}, which the cited text does not"
    words = tokenize(claim.text)
    if not words:
        return "the claim has no content words to check against the cited text"
    covered = sum(1 for w in words if w in source) / len(words)
    if covered < _COVERAGE:
        return f"only {covered:.0%} of the claim's words are in the cited text"
    return None


def _states_predicate(text: str, ref: FactRef) -> bool:
    """Whether the claim uses the fact's relation words (a 4-letter stem match)."""
    words = [w for w in re.split(r"[\s_]+", ref.predicate.lower()) if len(w) >= 3]
    if not words:
        return True  # "of", "is": the relation is implied by the names
    said = [w.lower() for w in _WORDS.findall(text)]
    return any(s.startswith(w[:4]) for w in words for s in said)


def _names_in(text: str) -> list[str]:
    """Runs of capitalised words (candidate entity names), longest first."""
    runs = re.findall(r"[A-Z][\w'\-.]*(?:\s+(?:of|de|the|von|van)?\s*[A-Z][\w'\-.]*)*", text)
    return sorted({r.strip() for r in runs}, key=len, reverse=True)
