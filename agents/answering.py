"""Extractive answers: the answer is picked from retrieved sentences and graph facts.

No model is needed. Candidates are the entities mentioned in the retrieved chunks whose
type fits the question ("who" → a person, "when" → a date, "which country" → a place),
scored by how relevant their sentence is to the question, how high their chunk ranked,
and whether a graph fact links them to an entity of the question. The answer's claims
are the answer sentence (with the facts stated in it) and the bridging facts that
connect the question's entities to it, each with its exact source span.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agents.answerer import NOT_FOUND, Draft
from agents.plan import Binding, PlanTrace
from agents.question import QuestionAnalysis
from agents.retrieval import Retrieval
from extractors import split_sentences, tokenize
from graph import (
    Access,
    Chunk,
    ChunkId,
    Document,
    DocumentId,
    Entity,
    EntityId,
    GraphStore,
    Mention,
    Relation,
    normalize_name,
)
from graph.provenance import Claim, DocumentRef, FactRef, SpanRef

__all__ = ["ExtractiveAnswerer"]


@dataclass(frozen=True, slots=True)
class _Sentence:
    chunk: Chunk
    start: int  # document offsets
    end: int
    text: str
    relevance: float
    prior: float


class ExtractiveAnswerer:
    """Chooses an answer and builds its provenance chains from retrieved evidence."""

    def __init__(self, *, graph: GraphStore) -> None:
        self._graph = graph

    async def stream(self, retrieval: Retrieval, access: Access) -> AsyncIterator[str | Draft]:
        """The :class:`Draft` (nothing is streamed before it: the answer is picked whole)."""
        yield await self.answer(retrieval, access)

    async def answer(self, retrieval: Retrieval, access: Access) -> Draft:
        """Draft an answer with claims (call the validator before showing it)."""
        if retrieval.plan is not None and _complete(retrieval.plan):
            planned = await self._from_plan(retrieval.plan, access)
            if planned is not None:
                return planned
        chunk_ids = [e.chunk_id for e in retrieval.evidence]
        chunks = {c.id: c for c in await self._graph.chunks(chunk_ids, access)}
        if not chunks:
            return Draft(answer=NOT_FOUND, claims=())
        docs = {
            d.id: d
            for d in await self._graph.documents(
                access, ids=list({c.document_id for c in chunks.values()}), limit=len(chunks)
            )
        }
        mentions = await self._graph.chunk_mentions(list(chunks), access)
        entities = {
            e.id: e
            for e in await self._graph.entities(list({m.entity_id for m in mentions}), access)
        }
        sentences = self._sentences(retrieval, chunks)
        question = retrieval.question
        linked = {e.entity_id for e in retrieval.linked}
        best = self._best_candidate(question, linked, sentences, mentions, entities, retrieval)
        if best is None:
            sentence = max(sentences, key=lambda s: (s.relevance * s.prior, -s.start))
            claim = _claim(sentence.text, sentence, docs, facts=())
            return Draft(answer=sentence.text, claims=(claim,))
        mention, sentence = best
        stated = await self._stated_facts(mention.entity_id, sentence, access, entities)
        claims = [_claim(sentence.text, sentence, docs, facts=stated)]
        claims += await self._bridges(retrieval, mention, sentence, access, entities, docs)
        return Draft(answer=mention.span.text, claims=tuple(claims))

    async def _from_plan(self, trace: PlanTrace, access: Access) -> Draft | None:
        """The executed plan's answer, with one claim per hop: the sentence each step read
        its binding from, with the facts stated in it."""
        answer = trace.answer
        if answer is None:
            return None
        # The answer's own sentence is the main claim; the hops that led to it follow.
        path = [b for b in reversed(_path(trace)) if b.chunk_id and b.sentence]
        if not path:
            return None
        chunks = {
            c.id: c
            for c in await self._graph.chunks([ChunkId(b.chunk_id or "") for b in path], access)
        }
        docs = {
            d.id: d
            for d in await self._graph.documents(
                access, ids=list({c.document_id for c in chunks.values()}), limit=len(chunks) or 1
            )
        }
        claims: list[Claim] = []
        names: dict[EntityId, Entity] = {}
        for binding in path:
            chunk = chunks.get(ChunkId(binding.chunk_id or ""))
            if chunk is None or chunk.document_id not in docs or binding.sentence is None:
                continue
            start, end = binding.sentence
            text = chunk.text[start - chunk.start : end - chunk.start]
            sentence = _Sentence(chunk, start, end, text, 1.0, 1.0)
            stated: list[tuple[Relation, Entity | None, Entity | None]] = []
            if binding.entity_id:
                stated = await self._stated_facts(
                    EntityId(binding.entity_id), sentence, access, names
                )
            claim = _claim(text, sentence, docs, facts=stated)
            if all(c.spans != claim.spans for c in claims):
                claims.append(claim)
        if not claims:
            return None
        return Draft(answer=answer.name, claims=tuple(claims))

    # ------------------------------------------------------------------ scoring

    def _sentences(self, retrieval: Retrieval, chunks: dict[ChunkId, Chunk]) -> list[_Sentence]:
        keywords = set(retrieval.question.keywords)
        linked_names = [normalize_name(e.mention) for e in retrieval.linked]
        out = []
        for rank, ev in enumerate(retrieval.evidence, 1):
            chunk = chunks.get(ev.chunk_id)
            if chunk is None:
                continue
            for start, end in split_sentences(chunk.text):
                text = chunk.text[start:end]
                tokens = set(tokenize(text))
                overlap = len(keywords & tokens) / (len(keywords) or 1)
                named = sum(1 for n in linked_names if n and n in normalize_name(text))
                out.append(
                    _Sentence(
                        chunk=chunk,
                        start=chunk.start + start,
                        end=chunk.start + end,
                        text=text,
                        relevance=overlap + 0.5 * named,
                        prior=1.0 / math.sqrt(rank),
                    )
                )
        return out

    def _best_candidate(
        self,
        question: QuestionAnalysis,
        linked: set[EntityId],
        sentences: list[_Sentence],
        mentions: list[Mention],
        entities: dict[EntityId, Entity],
        retrieval: Retrieval,
    ) -> tuple[Mention, _Sentence] | None:
        asked = normalize_name(question.text)
        bridged = {
            end
            for subject, _, obj in retrieval.facts.values()
            for end in (subject, obj)
            if subject in linked or obj in linked
        }
        scores: dict[EntityId, float] = defaultdict(float)
        where: dict[EntityId, tuple[float, Mention, _Sentence]] = {}
        for m in mentions:
            ent = entities.get(m.entity_id)
            if ent is None or m.entity_id in linked or normalize_name(ent.name) in asked:
                continue
            if question.answer_types and ent.type not in question.answer_types:
                continue
            sentence = next(
                (
                    s
                    for s in sentences
                    if s.chunk.id == m.span.chunk_id and s.start <= m.span.start < s.end
                ),
                None,
            )
            if sentence is None:
                continue
            value = sentence.prior * (0.2 + sentence.relevance)
            if m.entity_id in bridged:
                value *= 1.5
            scores[m.entity_id] += value
            if m.entity_id not in where or value > where[m.entity_id][0]:
                where[m.entity_id] = (value, m, sentence)
        if not scores:
            return None
        winner = max(scores, key=lambda e: (scores[e], e))
        _, mention, sentence = where[winner]
        return mention, sentence

    # ------------------------------------------------------------------ provenance

    async def _stated_facts(
        self, entity: EntityId, sentence: _Sentence, access: Access, names: dict[EntityId, Entity]
    ) -> list[tuple[Relation, Entity | None, Entity | None]]:
        related = await self._graph.relations([entity], access, limit=200)
        stated = [
            r
            for r in related
            if r.kind != "cooccurrence"
            and any(
                e.chunk_id == sentence.chunk.id
                and e.start < sentence.end
                and sentence.start < e.end
                for e in r.evidence
            )
        ]
        stated = stated[:3]
        missing = [e for r in stated for e in (r.subject_id, r.object_id) if e not in names]
        for ent in await self._graph.entities(list(dict.fromkeys(missing)), access):
            names[ent.id] = ent
        return [(r, names.get(r.subject_id), names.get(r.object_id)) for r in stated]

    async def _bridges(
        self,
        retrieval: Retrieval,
        answer: Mention,
        sentence: _Sentence,
        access: Access,
        names: dict[EntityId, Entity],
        docs: dict[DocumentId, Document],
    ) -> list[Claim]:
        """Facts that connect the question's entities to the answer's chunk."""
        in_answer_chunk = set(retrieval.chunk_entities.get(sentence.chunk.id, ())) | {
            answer.entity_id
        }
        claims: list[Claim] = []
        for linked in retrieval.linked:
            if linked.entity_id in in_answer_chunk:
                continue
            links = [
                rid
                for rid, (s, _, o) in retrieval.facts.items()
                if (s == linked.entity_id and o in in_answer_chunk)
                or (o == linked.entity_id and s in in_answer_chunk)
            ]
            facts = await self._graph.facts(links[:3], access)
            facts.sort(key=lambda r: (r.kind == "cooccurrence", -r.confidence))
            for fact in facts[:1]:
                span = fact.evidence[0]
                doc = docs.get(span.document_id) or next(
                    iter(await self._graph.documents(access, ids=[span.document_id])), None
                )
                if doc is None:
                    continue
                docs[doc.id] = doc
                missing = [e for e in (fact.subject_id, fact.object_id) if e not in names]
                for ent in await self._graph.entities(missing, access):
                    names[ent.id] = ent
                claims.append(
                    Claim(
                        text=span.text,
                        facts=(
                            FactRef.of(fact, names.get(fact.subject_id), names.get(fact.object_id)),
                        ),
                        spans=(SpanRef.of(doc, span.chunk_id, span.start, span.end, span.text),),
                        documents=(DocumentRef.of(doc),),
                    )
                )
        return claims


def _claim(
    text: str,
    sentence: _Sentence,
    docs: dict[DocumentId, Document],
    *,
    facts: list[tuple[Relation, Entity | None, Entity | None]] | tuple[()] = (),
) -> Claim:
    doc = docs[sentence.chunk.document_id]
    return Claim(
        text=text,
        facts=tuple(FactRef.of(r, s, o) for r, s, o in facts),
        spans=(SpanRef.of(doc, sentence.chunk.id, sentence.start, sentence.end, sentence.text),),
        documents=(DocumentRef.of(doc),),
    )


def _complete(trace: PlanTrace) -> bool:
    """Whether the plan covers the question and every step produced something."""
    return trace.plan.complete and bool(trace.steps) and all(s.output for s in trace.steps)


def _path(trace: PlanTrace) -> list[Binding]:
    """The best binding of each step the answer depends on, in execution order."""
    steps = {s.id: s for s in trace.plan.steps}
    wanted: set[str] = set()
    todo = [trace.plan.steps[-1].id]
    while todo:
        sid = todo.pop()
        if sid in wanted or sid not in steps:
            continue
        wanted.add(sid)
        todo += [*steps[sid].depends_on, *steps[sid].operands]
    return [s.output[0] for s in trace.steps if s.id in wanted and s.output and s.kind != "answer"]
