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

from agents.entailment import Entailment, Judgement
from extractors import SpacyEntityExtractor
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
        extractor: SpacyEntityExtractor,
        judge: ChatModel | None = None,
    ) -> None:
        self._graph = graph
        self._judge = judge
        self._entailment = Entailment(extractor)

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
                verdict, reason, valid = "unsupported", known, False
            else:
                cited = await self._citations(claim, facts, chunks, docs, access, allowed)
                valid = cited is None
                verdict, reason = cited or await self._verdict(claim, facts, access)
            out.append(
                claim.model_copy(
                    update={"verdict": verdict, "reason": reason, "citations_valid": valid}
                )
            )
        return out

    async def _citations(
        self,
        claim: Claim,
        facts: dict[RelationId, Relation],
        chunks: dict[ChunkId, Chunk],
        docs: dict[DocumentId, Document],
        access: Access,
        allowed: set[ChunkId] | None,
    ) -> tuple[Verdict, str] | None:
        """Why the claim's citations do not hold (None: every one does)."""
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
        return await self._check_facts(claim, facts, access)

    async def _verdict(
        self, claim: Claim, facts: dict[RelationId, Relation], access: Access
    ) -> tuple[Verdict, str]:
        """Whether the claim's text follows from citations that hold."""
        if not claim.text.strip():
            return "unsupported", "the claim is empty"
        unstated = _unstated_fact(claim)
        if unstated is not None:
            other = await self._named_instead(claim, access)
            return ("contradicted", other) if other is not None else ("unsupported", unstated)
        names = [n for f in claim.facts for n in (f.subject, f.object)]
        judged = self._entailment.judge(claim.text, [s.text for s in claim.spans], names)
        if judged.verdict != "supported":
            return await self._graph_says(claim, judged, access)
        if self._judge is not None:
            withheld = await self._entailment_model(claim)
            if withheld is not None:
                return withheld
        stated = f"; {len(claim.facts)} fact(s) exist in the graph and are stated there"
        return "supported", (
            f"the cited text states it ({len(claim.spans)} span(s) match the source exactly"
            + (stated if claim.facts else "")
            + ")"
        )

    async def _graph_says(
        self, claim: Claim, judged: Judgement, access: Access
    ) -> tuple[Verdict, str]:
        """The rules' verdict, made ``contradicted`` with the fact cited when the graph
        states, for the cited text, a fact the claim contradicts."""
        other = await self._named_instead(claim, access)
        if other is not None:
            return "contradicted", other
        if judged.verdict == "contradicted":
            fact = await self._stated_fact(claim, access)
            if fact is not None:
                return "contradicted", f"{judged.reason}; the graph states {fact}"
        return judged.verdict, judged.reason

    async def _stated_fact(self, claim: Claim, access: Access) -> str | None:
        """A graph fact stated in the cited spans whose two ends the claim names."""
        facts = list(claim.facts)
        text = normalize_name(claim.text)
        if facts:
            named = [f for f in facts if _names(text, f.subject) and _names(text, f.object)]
            if named:
                return f"{named[0].subject} —{named[0].predicate}→ {named[0].object}"
        mentions = await self._graph.chunk_mentions([s.chunk_id for s in claim.spans], access)
        ids = list(dict.fromkeys(m.entity_id for m in mentions))
        if not ids:
            return None
        related = await self._graph.relations(ids, access, limit=50)
        inside = [
            r
            for r in related
            if any(_overlaps(e.chunk_id, e.start, e.end, claim.spans) for e in r.evidence)
        ]
        if not inside:
            return None
        ends = {
            e.id: e
            for e in await self._graph.entities(
                list({i for r in inside for i in (r.subject_id, r.object_id)}), access
            )
        }
        for fact in inside:
            subject, obj = ends.get(fact.subject_id), ends.get(fact.object_id)
            if subject and obj and _names(text, subject.name) and _names(text, obj.name):
                return f"{subject.name} —{fact.predicate}→ {obj.name}"
        return None

    async def _named_instead(self, claim: Claim, access: Access) -> str | None:
        """A contradiction: the claim states a cited fact's subject and relation, but
        names another graph entity (one the cited text does not name) where the fact has
        its object."""
        text = normalize_name(claim.text)
        cited = normalize_name(" ".join(s.text for s in claim.spans))
        for ref in claim.facts:
            if normalize_name(ref.subject) not in text:
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

    async def _entailment_model(self, claim: Claim) -> tuple[Verdict, str] | None:
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
_WORD = re.compile(r"\w+")


def _names(text: str, name: str) -> bool:
    """Whether normalised ``text`` names ``name`` (whole words)."""
    key = " ".join(_WORD.findall(normalize_name(name)))
    said = " ".join(_WORD.findall(text))
    return bool(key) and f" {key} " in f" {said} "


def _unstated_fact(claim: Claim) -> str | None:
    """Why the claim does not state a fact it cites (None: it states each one's ends)."""
    text = normalize_name(claim.text)
    said = set(_WORD.findall(text))
    for ref in claim.facts:
        for end in (ref.subject, ref.object):
            words = set(_WORD.findall(normalize_name(end.split(" (")[0])))
            if not _names(text, end) and not (words and words <= said):
                return (
                    f"the claim cites {ref.subject} —{ref.predicate}→ {ref.object} "
                    f"but does not name {end}"
                )
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
