"""Extractive answers: the answer is picked from retrieved sentences and graph facts.

No model is needed. Candidates are the entities mentioned in the retrieved chunks whose
type fits the question ("who" → a person, "when" → a date, "which country" → a place),
scored by how relevant their sentence is to the question, how high their chunk ranked,
and whether a graph fact links them to an entity of the question. The answer's claims
are the answer sentence (with the facts stated in it) and the bridging facts that
connect the question's entities to it, each with its exact source span.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agents.answer_check import AnswerChecker
from agents.answerer import NOT_FOUND, Draft
from agents.choices import mentions
from agents.naming import runs_in, words
from agents.parsing import cached_parser
from agents.plan import Binding, PlanTrace
from agents.question import HEAD_TYPES, stem
from agents.retrieval import Retrieval
from agents.spans import (
    AnswerKind,
    Candidate,
    Clues,
    answer_kind,
    clues_of,
    score_candidates,
    sentence_views,
)
from extractors import Embedder, SpacyEntityExtractor, split_sentences, tokenize
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


#: labels of nouns that name a kind of entity (a band, a city), not an attribute
_ENTITY_LABELS = frozenset({"ORG", "GPE", "LOC", "FAC"})


@dataclass(frozen=True, slots=True)
class _Sentence:
    chunk: Chunk
    start: int  # document offsets
    end: int
    text: str
    relevance: float
    prior: float
    doc: tuple[Any, ...] = ()  # its parses (see ExtractiveAnswerer._parse_many)
    weight: float = 0.0  # how well it matches the question


@dataclass(frozen=True, slots=True)
class _Asked:
    """A question being answered: its parse, kind, clues, the plan's draft and the
    evidence sentences, best first."""

    doc: Any
    kind: AnswerKind
    clues: Clues
    planned: Draft | None
    sentences: list[_Sentence]
    docs: dict[DocumentId, Document]
    hops: int = 0  # of the plan, when it covers the question


class ExtractiveAnswerer:
    """Chooses an answer and builds its provenance chains from retrieved evidence."""

    #: candidates tried against the answer check before the best is drafted anyway
    tries = 4
    #: a best candidate scoring below this is not an answer ("not found")
    floor = 0.05
    #: sentences parsed and scored per question
    read = 24

    def __init__(
        self,
        *,
        graph: GraphStore,
        extractor: SpacyEntityExtractor,
        embedder: Embedder,
        checker: AnswerChecker,
    ) -> None:
        self._graph = graph
        self._embedder = embedder
        self._checker = checker
        self._parses = cached_parser(extractor)

    async def stream(self, retrieval: Retrieval, access: Access) -> AsyncIterator[str | Draft]:
        """The :class:`Draft` (nothing is streamed before it: the answer is picked whole)."""
        yield await self.answer(retrieval, access)

    async def answer(self, retrieval: Retrieval, access: Access) -> Draft:
        """Draft an answer with claims (call the validator before showing it)."""
        question = retrieval.question
        qdoc = await asyncio.to_thread(self._parse, question.text)
        kind = answer_kind(qdoc)
        plan = retrieval.plan if retrieval.plan is not None and _complete(retrieval.plan) else None
        planned = await self._from_plan(plan, access) if plan is not None else None
        chunk_ids = [e.chunk_id for e in retrieval.evidence]
        chunks = {c.id: c for c in await self._graph.chunks(chunk_ids, access)}
        docs = {
            d.id: d
            for d in await self._graph.documents(
                access, ids=list({c.document_id for c in chunks.values()}), limit=len(chunks) or 1
            )
        }
        options = self._checker.options(question.text)
        names = [*options, *(e.mention for e in retrieval.linked)]
        clues = clues_of(qdoc, names, kind.category)
        sentences = await self._scored_sentences(retrieval, chunks, clues) if chunks else []
        if not sentences:
            return planned or Draft(answer=NOT_FOUND, claims=())
        asked = _Asked(qdoc, kind, clues, planned, sentences, docs, plan.plan.hops if plan else 0)
        if kind.kind == "yes_no" or options:
            return self._compared(asked, options)
        return await self._named(asked, retrieval, access)

    def _compared(self, asked: _Asked, options: list[str]) -> Draft:
        """A yes/no or "A or B" answer: recomputed from the evidence, else the plan's."""
        decided = self._decide(asked, options, options or list(asked.clues.anchors))
        if decided is not None:
            return decided
        planned = asked.planned
        if planned is not None and (
            not options or any(mentions(words(planned.answer), o) for o in options)
        ):
            return planned  # the plan's comparison (the answer check has the last word)
        # neither stated nor denied, no option recomputed: no guess
        return Draft(answer=NOT_FOUND, claims=_distinct_claims(asked.sentences[:1], asked.docs))

    async def _named(self, asked: _Asked, retrieval: Retrieval, access: Access) -> Draft:
        """The best candidate span of the asked kind that the answer check accepts (the
        best one anyway when none does, so the caller sees why it was withheld)."""
        favoured = frozenset(
            normalize_name(n) for n in await self._favoured(retrieval, asked.planned, access)
        )
        views = [(i, doc) for i, s in enumerate(asked.sentences) for doc in s.doc]
        ranked = score_candidates(
            asked.doc,
            asked.kind,
            asked.clues,
            [doc for _, doc in views],
            [asked.sentences[i].weight for i, _ in views],
            owners=[i for i, _ in views],
            favoured=favoured,
        )
        sharing = self._checker.sharing(asked.doc.text)
        if sharing:
            return self._shared(asked, ranked, sharing)
        planned = asked.planned
        if planned is not None and asked.hops > 1:
            # A chain of hops the plan walked: the span scores cannot tell the hops apart
            # (the answer's sentence names the bridge, not the question's names).
            checked = self._checker.check(asked.doc.text, planned.answer, _assumed(planned.claims))
            if checked.verdict == "supported":
                return planned
        if planned is not None and ranked and ranked[0].key == normalize_name(planned.answer):
            draft = replace(planned, answer=_as_written(planned.answer, ranked))
            checked = self._checker.check(asked.doc.text, draft.answer, _assumed(draft.claims))
            if checked.verdict == "supported":
                return draft
            # the plan's claims leave something out: the span's own draft cites more
        good = [c for c in ranked[: self.tries] if c.score >= self.floor]
        for candidate in good:
            draft = await self._draft(candidate, asked, retrieval, access)
            checked = self._checker.check(asked.doc.text, draft.answer, _assumed(draft.claims))
            if checked.verdict == "supported":
                return draft
        if good:
            return await self._draft(good[0], asked, retrieval, access)
        best = asked.sentences[0]
        return Draft(answer=NOT_FOUND, claims=(_claim(best.text, best, asked.docs),))

    def _shared(self, asked: _Asked, ranked: list[Candidate], sharing: list[str]) -> Draft:
        """A value each of the question's names is said to have ("What occupation do A
        and B share?"): the best candidate the claims about both state, as the check
        reads it; the claims are the best sentences naming each."""
        claims = _distinct_claims(_naming_each(asked.sentences, sharing), asked.docs)
        asked_labels = HEAD_TYPES.get(asked.kind.category or "", frozenset())
        for candidate in ranked[: self.tries * 3]:
            for value in dict.fromkeys([candidate.text, *words(candidate.text)[-1:]]):
                labels = HEAD_TYPES.get(words(value)[-1] if words(value) else "", frozenset())
                if labels & _ENTITY_LABELS and not labels & asked_labels:
                    continue  # "band" is what they are, not the genre asked for
                checked = self._checker.check(asked.doc.text, value, _assumed(claims))
                if checked.verdict == "supported":
                    return Draft(answer=value, claims=claims)
        return Draft(answer=NOT_FOUND, claims=claims)

    def _parse(self, text: str) -> Any:
        return self._parses(text)

    def _decide(self, asked: _Asked, options: list[str], branches: list[str]) -> Draft | None:
        """A yes/no or "A or B" answer recomputed from each branch's best sentences and
        the plan's claims (the answer check decides; every branch is cited)."""
        chosen = _naming_each(asked.sentences, branches) + asked.sentences[:2]
        planned = asked.planned.claims if asked.planned is not None else ()
        claims = tuple(planned) + _distinct_claims(chosen, asked.docs)
        claims = tuple({c.text: c for c in claims}.values())
        answers = options or (["yes", "no"] if asked.kind.kind == "yes_no" else [])
        for option in answers:
            checked = self._checker.check(asked.doc.text, option, _assumed(claims))
            if checked.verdict == "supported":
                return Draft(answer=option, claims=claims)
        return None

    async def _favoured(
        self, retrieval: Retrieval, planned: Draft | None, access: Access
    ) -> list[str]:
        """Names a graph fact ties to the question's entities, and the plan's answer."""
        linked = {e.entity_id for e in retrieval.linked}
        bridged = list(
            dict.fromkeys(
                end
                for subject, _, obj in retrieval.facts.values()
                if subject in linked or obj in linked
                for end in (subject, obj)
                if end not in linked
            )
        )[:60]
        names = [e.name for e in await self._graph.entities(bridged, access)] if bridged else []
        if planned is not None:
            names.append(planned.answer)
        return names

    async def _draft(
        self, candidate: Candidate, asked: _Asked, retrieval: Retrieval, access: Access
    ) -> Draft:
        """The candidate's draft: its sentence, and the best sentences naming the
        question's other names (the hops that lead to it)."""
        sentences, clues, docs = asked.sentences, asked.clues, asked.docs
        sentence = sentences[candidate.sentence]
        in_chunk = await self._graph.chunk_mentions([sentence.chunk.id], access)
        here = [
            m
            for m in in_chunk
            if sentence.start <= m.span.start < sentence.end
            and normalize_name(m.span.text) == candidate.key
        ]
        stated: list[tuple[Relation, Entity | None, Entity | None]] = []
        names: dict[EntityId, Entity] = {}
        if here:
            stated = await self._stated_facts(here[0].entity_id, sentence, access, names)
        claims = [_claim(sentence.text, sentence, docs, facts=stated)]
        said = normalize_name(sentence.text)
        for anchor in clues.anchors:
            if normalize_name(anchor) in said:
                continue
            # the sentence naming it in the same chunk first (where "he" comes from), also
            # one not among the sentences read (a chunk's opening: "Karl Wilhelm
            # Rosenmund (1884-1965) was a German chemist. He was born in Berlin ...")
            naming = [s for s in sentences if mentions(words(s.text), anchor)]
            naming.sort(key=lambda s: s.chunk.id != sentence.chunk.id)
            if not naming or naming[0].chunk.id != sentence.chunk.id:
                naming = _naming_in(sentence.chunk, anchor) + naming
            other = naming[0] if naming else None
            if other is not None and all(c.text != other.text for c in claims):
                claims.append(_claim(other.text, other, docs))
                said += " " + normalize_name(other.text)
        claims += _hops(clues, sentence, sentences, claims, docs)
        if here:
            claims += await self._bridges(retrieval, here[0], sentence, access, names, docs)
        return Draft(answer=candidate.text, claims=tuple(claims))

    async def _scored_sentences(
        self, retrieval: Retrieval, chunks: dict[ChunkId, Chunk], clues: Clues
    ) -> list[_Sentence]:
        """The evidence sentences most like the question, parsed, best first."""
        raw: list[tuple[Chunk, int, int, str, float]] = []
        anchors = [words(a) for a in clues.anchors]
        for rank, ev in enumerate(retrieval.evidence, 1):
            chunk = chunks.get(ev.chunk_id)
            if chunk is None:
                continue
            for start, end in split_sentences(chunk.text):
                text = chunk.text[start:end].strip()
                if len(text) < 3:
                    continue
                raw.append(
                    (chunk, chunk.start + start, chunk.start + end, text, 1 / math.sqrt(rank))
                )
        if not raw:
            return []
        keywords = set(retrieval.question.keywords)
        lexical = []
        said = [words(r[3]) for r in raw]
        naming = [_named(anchors, w) for w in said]
        # names the question's own sentences give (the bridges of a multi-hop question)
        bridges = _bridge_names([r[3] for r, n in zip(raw, naming, strict=True) if n >= 1.0])
        bridges = [b for b in bridges if not any(runs_in(b, a) or runs_in(a, b) for a in anchors)]
        for (chunk, _, _, text, prior), its, own in zip(raw, said, naming, strict=True):
            overlap = len(keywords & set(tokenize(text))) / (len(keywords) or 1)
            named = max(
                own,
                0.5 * _named(anchors, words(chunk.text)),
                0.7 * float(any(runs_in(b, its) for b in bridges)),
            )
            lexical.append((overlap, named, prior))
        order = sorted(
            range(len(raw)), key=lambda i: -(lexical[i][0] + lexical[i][1]) * lexical[i][2]
        )[: self.read]
        texts = [retrieval.question.text] + [raw[i][3] for i in order]
        vectors = await self._embedder.embed(texts)
        sims = vectors[1:] @ vectors[0]
        docs = await asyncio.to_thread(self._parse_many, [raw[i][3] for i in order])
        out = []
        for pos, i in enumerate(order):
            chunk, start, end, text, prior = raw[i]
            overlap, named, _ = lexical[i]
            weight = (
                (0.6 * max(float(sims[pos]), 0.0) + 0.4 * overlap)
                * (0.3 + 0.7 * named)
                * (0.6 + 0.4 * prior)
            )
            out.append(
                _Sentence(chunk, start, end, text, overlap + named, prior, docs[pos], weight)
            )
        out.sort(key=lambda s: -s.weight)
        return out

    def _parse_many(self, texts: list[str]) -> list[tuple[Any, ...]]:
        """Each text's parses: without its parenthetical asides (which often break the
        parse of the sentence around them), and each aside on its own ("born 8 May 1950
        in Paris")."""
        return [tuple(self._parses(view) for view in sentence_views(t)) for t in texts]

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
        stated = stated[:6]
        missing = [e for r in stated for e in (r.subject_id, r.object_id) if e not in names]
        for ent in await self._graph.entities(list(dict.fromkeys(missing)), access):
            names[ent.id] = ent
        # A fact is cited only when the sentence names both its ends ("Bova" resolved to
        # "Joseph Bova" by the graph is not the sentence naming Joseph Bova).
        said = set(words(sentence.text))
        out = []
        for r in stated:
            ends = (names.get(r.subject_id), names.get(r.object_id))
            if all(e is not None and set(words(e.name)) <= said for e in ends):
                out.append((r, ends[0], ends[1]))
        return out[:3]

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


def _hops(
    clues: Clues,
    answer: _Sentence,
    sentences: Sequence[_Sentence],
    claims: Sequence[Claim],
    docs: dict[DocumentId, Document],
    limit: int = 3,
) -> list[Claim]:
    """Sentences that state the question's relation words the claims leave out, each
    tied to the claims by a name they share or the document they come from (the hops
    between the question's names and the answer)."""
    said = {stem(w) for c in claims for w in words(c.text)}
    names = {w for c in claims for w in _capitalised(c.text)}
    documents = {c.documents[0].document_id for c in claims if c.documents}
    out: list[Claim] = []
    for sentence in sentences:
        if len(out) >= limit or not (clues.relation - said):
            break
        if sentence is answer or sentence.chunk.document_id not in docs:
            continue
        stems = {stem(w) for w in words(sentence.text)}
        adds = (clues.relation - said) & stems
        tied = names & set(_capitalised(sentence.text)) or sentence.chunk.document_id in documents
        if adds and tied and all(c.text != sentence.text for c in [*claims, *out]):
            out.append(_claim(sentence.text, sentence, docs))
            said |= stems
            names |= set(_capitalised(sentence.text))
            documents.add(sentence.chunk.document_id)
    return out


def _naming_each(sentences: Sequence[_Sentence], names: list[str], per: int = 2) -> list[_Sentence]:
    """The best ``per`` sentences naming each of ``names`` (every branch of a
    comparison, every name a shared value is asked of)."""
    out: list[_Sentence] = []
    for name in names:
        out += [s for s in sentences if mentions(words(s.text), name)][:per]
    return out


def _naming_in(chunk: Chunk, name: str) -> list[_Sentence]:
    """The sentences of a chunk that name ``name``, in order."""
    out = []
    for start, end in split_sentences(chunk.text):
        text = chunk.text[start:end].strip()
        if mentions(words(text), name):
            out.append(_Sentence(chunk, chunk.start + start, chunk.start + end, text, 0.0, 0.0))
    return out


def _capitalised(text: str) -> list[str]:
    words = (w.lower() for w in re.findall(r"\b[A-Z][\w'\-]{2,}", text))
    return [w for w in words if tokenize(w)]


def _bridge_names(texts: Sequence[str]) -> list[list[str]]:
    """Capitalised runs of texts (name-like phrases), as word lists, most frequent first."""
    runs: dict[tuple[str, ...], int] = {}
    for text in texts:
        for run in _CAPITALISED.findall(text):
            found = tuple(words(run))
            if found and not (len(found) == 1 and len(found[0]) < 4):
                runs[found] = runs.get(found, 0) + 1
    ordered = sorted(runs, key=lambda w: -runs[w])
    return [list(w) for w in ordered[:40]]


_CAPITALISED = re.compile(
    r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'\-]+(?:\s+(?:of|de|the|von|van|and)?\s*[A-Z][\w'\-]+)*"
)


def _named(anchors: Sequence[list[str]], words: list[str]) -> float:
    """How fully a text names the question's names (1: every word of the best-named
    one; a surname alone counts half of a two-word name)."""
    if not anchors:
        return 1.0
    said = set(words)
    return max((sum(w in said for w in a) / len(a) for a in anchors if a), default=1.0)


def _assumed(claims: Sequence[Claim]) -> list[Claim]:
    """Claims quoted whole from their source, as the validator will judge them."""
    return [c.model_copy(update={"verdict": "supported"}) for c in claims]


def _distinct_claims(
    sentences: Sequence[_Sentence], docs: dict[DocumentId, Document]
) -> tuple[Claim, ...]:
    seen: set[str] = set()
    out = []
    for sentence in sentences:
        if sentence.text not in seen and sentence.chunk.document_id in docs:
            seen.add(sentence.text)
            out.append(_claim(sentence.text, sentence, docs))
    return tuple(out)


def _as_written(answer: str, ranked: Sequence[Candidate]) -> str:
    """The answer as the source writes it (the candidate span with the same name)."""
    key = normalize_name(answer)
    return next((c.text for c in ranked if c.key == key), answer)


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
