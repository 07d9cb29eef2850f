"""Hybrid retrieval: dense vectors, BM25 keywords and personalized PageRank over the graph.

The graph signal follows HippoRAG: the question's phrases are linked to entities, and a
random walk that restarts at those entities (and, weakly, at the chunks the text
retrievers found) spreads over the entity-chunk graph (mentions) and the entity-entity
graph (facts). Chunks where the walk lingers are the ones connected to the question's
entities, directly or through a fact. The three rankings are fused by weighted
reciprocal rank; every result keeps the signals that found it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
from opentelemetry import trace
from rapidfuzz import fuzz

from agents.executor import PlanExecutor
from agents.parsing import cached_parser
from agents.plan import Plan, Planner, PlanTrace
from agents.planner import RulePlanner, plan_from_parse
from agents.question import QuestionAnalysis, analysis_of
from agents.reading import PageReader, capitalised_runs, top_kinds
from extractors import Bm25Encoder, Embedder, SpacyEntityExtractor, tokenize
from graph import (
    Access,
    ChunkId,
    DocumentId,
    Entity,
    EntityId,
    GraphStore,
    Relation,
    RelationId,
    VectorHit,
    VectorIndex,
    normalize_name,
    personalized_pagerank,
)
from graph.provenance import Evidence, LinkedEntity, Signal

__all__ = ["HybridRetriever", "Mode", "Retrieval", "RetrievalWeights"]

_TRACER = trace.get_tracer("threadline.agents")
T = TypeVar("T")

#: ``threadline``: planned multi-hop retrieval (falls back to single shot); ``single``: the
#: single-shot hybrid retrieval; ``dense``: the vector-only baseline.
Mode = Literal["threadline", "single", "dense"]

#: Phrase labels that never name an entity worth linking.
_UNLINKABLE = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"})


@dataclass(frozen=True, slots=True)
class RetrievalWeights:
    """Knobs of the fusion; the defaults are the ones the benchmarks use."""

    dense: float = 1.0
    sparse: float = 0.3
    graph: float = 2.5
    rrf_k: int = 5
    candidates: int = 30
    damping: float = 0.5
    chunk_seed: float = 0.05
    per_entity_chunks: int = 60
    neighbor_facts: int = 25
    scored_facts: int = 4
    bridge: float = 3.0
    bridge_facts: int = 3
    bridge_threshold: float = 0.3
    hop: float = 2.0
    hop_beam: int = 3
    hop_sources: int = 4
    hop_sentences: int = 3
    plan: float = 4.0


@dataclass(slots=True)
class Retrieval:
    """The outcome of one retrieval call."""

    question: QuestionAnalysis
    evidence: list[Evidence]
    linked: list[LinkedEntity]
    chunk_entities: dict[ChunkId, list[EntityId]] = field(default_factory=dict)
    facts: dict[RelationId, tuple[EntityId, str, EntityId]] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    plan: PlanTrace | None = None


class HybridRetriever:
    """Retrieves evidence chunks for a question (``mode="dense"`` is the vector-only baseline)."""

    def __init__(
        self,
        *,
        graph: GraphStore,
        vectors: VectorIndex,
        embedder: Embedder,
        extractor: SpacyEntityExtractor,
        sparse: Bm25Encoder,
        weights: RetrievalWeights | None = None,
        planner: Planner | None = None,
    ) -> None:
        self._graph = graph
        self._vectors = vectors
        self._embedder = embedder
        self._extractor = extractor
        self._sparse = sparse
        self.weights = weights or RetrievalWeights()
        self.pages = PageReader(graph=graph, vectors=vectors, embedder=embedder)
        self.planner = planner
        self.executor = PlanExecutor(graph=graph, vectors=vectors, pages=self.pages)

    async def retrieve(
        self, question: str, access: Access, *, k: int = 5, mode: Mode = "threadline"
    ) -> Retrieval:
        """The ``k`` best chunks for ``question`` that ``access`` may read."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        wall = time.time_ns()

        def lap(name: str) -> None:
            # Each stage is also a trace span (a child of the caller's current span).
            nonlocal clock, wall
            now, now_wall = time.perf_counter(), time.time_ns()
            timings[name] = round((now - clock) * 1000, 2)
            _TRACER.start_span(f"threadline.retrieve.{name}", start_time=wall).end(
                end_time=now_wall
            )
            clock, wall = now, now_wall

        w = self.weights
        depth = max(k, w.candidates)
        if mode == "dense":
            (analysis, _), matrix = await asyncio.gather(
                self._understand(question, mode), self._embedder.embed([question])
            )
            lap("parse_embed")
            dense = await self._vectors.search(matrix[0], access, limit=depth)
            lap("dense")
            evidence = [
                Evidence(
                    chunk_id=h.chunk_id,
                    document_id=h.document_id,
                    score=h.score,
                    signals={"dense": Signal(rank=i, score=h.score)},
                )
                for i, h in enumerate(dense[:k], 1)
            ]
            return Retrieval(question=analysis, evidence=evidence, linked=[], timings_ms=timings)
        # What needs only the question's text runs side by side: its parse (then the exact
        # lookup of its names), its embedding (then the dense search), the keyword search.
        (analysis, plan, phrases, exact), (matrix, dense), sparse = await asyncio.gather(
            self._understood(question, mode, access, timings),
            self._searched(question, access, depth, timings),
            self._timed(
                self._vectors.search_sparse(
                    self._sparse.encode_query(question), access, limit=depth
                ),
                timings,
                "sparse",
            ),
        )
        timings["parse_embed"] = max(timings["parse"], timings["embed"])
        clock, wall = time.perf_counter(), time.time_ns()
        pool = [h.chunk_id for h in dense[:10]] + [h.chunk_id for h in sparse[:10]]
        pool_mentions = await self._graph.chunk_mentions(list(dict.fromkeys(pool)), access)
        pool_entities = {m.entity_id for m in pool_mentions}
        linked = await self._link(phrases, exact, access, pool_entities)
        lap("link")
        # The plan (or, for a question it cannot decompose, the reading hop) needs only the
        # linked entities: it runs while the graph walks.
        decomposed = plan is not None and plan.decomposed
        complete = plan is not None and plan.complete
        walked, hops, trace = await asyncio.gather(
            self._walk(linked, matrix[0], dense, sparse, access, bridges=not complete),
            _nothing_list() if decomposed else self._hop(linked, matrix[0], access),
            (
                self.executor.run(plan, access, question_vector=matrix[0], linked=linked)
                if plan is not None and decomposed
                else _nothing()
            ),
        )
        graph_scores, explain, facts, chunk_entities = walked
        for m in pool_mentions:
            chunk_entities.setdefault(m.span.chunk_id, [])
            if m.entity_id not in chunk_entities[m.span.chunk_id]:
                chunk_entities[m.span.chunk_id].append(m.entity_id)
        lap("graph")
        evidence = self._fuse(
            dense=dense, sparse=sparse, graph_scores=graph_scores, explain=explain,
            linked=linked, hops=hops, planned=_plan_evidence(trace), k=k,
            # A plan is trusted as far as it accounts for the question's words.
            plan_weight=self.weights.plan / (1 + len(plan.uncovered) if plan else 1),
        )  # fmt: skip
        unknown = [e.chunk_id for e in evidence if not e.document_id]
        if unknown:
            # Chunks found only through the graph: look up their documents.
            owner = {c.id: c.document_id for c in await self._graph.chunks(unknown, access)}
            evidence = [
                e if e.document_id else e.model_copy(update={"document_id": owner[e.chunk_id]})
                for e in evidence
                if e.document_id or e.chunk_id in owner
            ]
        lap("fuse")
        if plan is not None and trace is None:
            trace = PlanTrace(plan=plan, steps=())
        return Retrieval(
            question=analysis,
            evidence=evidence,
            linked=linked,
            chunk_entities=chunk_entities,
            facts=facts,
            timings_ms=timings,
            plan=trace,
        )

    async def _understand(self, question: str, mode: Mode) -> tuple[QuestionAnalysis, Plan | None]:
        """The question's analysis and (in threadline mode) its plan; the model-free
        planner reads the same parse."""
        planner = self.planner if mode == "threadline" else None
        # The parse is shared with the answerer and the answer check (one parse a question).
        parsing = asyncio.to_thread(cached_parser(self._extractor), question.strip())
        if planner is None or isinstance(planner, RulePlanner):
            doc = await parsing
            plan = plan_from_parse(doc) if planner is not None else None
            return analysis_of(doc, self._extractor), plan
        doc, plan = await asyncio.gather(parsing, planner.plan(question))
        return analysis_of(doc, self._extractor), plan

    # ------------------------------------------------------------------ linking

    async def _understood(
        self, question: str, mode: Mode, access: Access, timings: dict[str, float]
    ) -> tuple[QuestionAnalysis, Plan | None, list[tuple[str, str]], dict[str, list[Entity]]]:
        """The question's analysis and plan, its phrases worth linking and the entities
        named exactly by them."""
        analysis, plan = await self._timed(self._understand(question, mode), timings, "parse")
        phrases = _linkable(analysis)
        exact = await self._timed(
            self._graph.match_entities([p for p, _ in phrases], access), timings, "match"
        )
        return analysis, plan, phrases, exact

    async def _searched(
        self, question: str, access: Access, depth: int, timings: dict[str, float]
    ) -> tuple[np.ndarray, list[VectorHit]]:
        """The question's vector and the dense search's hits."""
        matrix = await self._timed(self._embedder.embed([question]), timings, "embed")
        return matrix, await self._timed(
            self._vectors.search(matrix[0], access, limit=depth), timings, "dense"
        )

    @staticmethod
    async def _timed(work: Awaitable[T], timings: dict[str, float], name: str) -> T:
        """``work``'s result, its milliseconds in ``timings[name]`` and a trace span
        (stages that run side by side are timed each on its own)."""
        started, wall = time.perf_counter(), time.time_ns()
        result = await work
        timings[name] = round((time.perf_counter() - started) * 1000, 2)
        _TRACER.start_span(f"threadline.retrieve.{name}", start_time=wall).end()
        return result

    async def _link(
        self,
        phrases: list[tuple[str, str]],
        exact: dict[str, list[Entity]],
        access: Access,
        pool: set[EntityId],
    ) -> list[LinkedEntity]:
        linked: dict[EntityId, LinkedEntity] = {}
        covered: set[str] = set()
        for phrase, label in phrases:
            if label == "NGRAM" and any(phrase in c for c in covered):
                continue  # part of a longer name already linked
            for ent in top_kinds(exact.get(phrase, [])):
                method = "exact" if normalize_name(ent.name) == normalize_name(phrase) else "alias"
                score = {"NOUN": 0.5, "NGRAM": 0.8}.get(label, 1.0)
                _keep(linked, LinkedEntity(
                    mention=phrase, entity_id=ent.id, name=ent.name, type=ent.type,
                    method=method, score=score,
                ))  # fmt: skip
                covered.add(phrase)
        names = [p for p, label in phrases if p not in covered and label not in {"NOUN", "NGRAM"}]
        if names and pool:
            candidates = await self._graph.entities(sorted(pool), access)
            await self._fuzzy(names, candidates, linked)
        return sorted(linked.values(), key=lambda e: -e.score)

    async def _fuzzy(
        self, names: list[str], candidates: list[Entity], linked: dict[EntityId, LinkedEntity]
    ) -> None:
        """Spelling-close names first; the rest by name-embedding similarity."""
        left = []
        for phrase in names:
            key = normalize_name(phrase)
            best = max(
                ((fuzz.ratio(key, normalize_name(c.name)), c) for c in candidates),
                key=lambda t: t[0],
                default=(0.0, None),
            )
            if best[1] is not None and best[0] >= 88:
                ent = best[1]
                _keep(linked, LinkedEntity(
                    mention=phrase, entity_id=ent.id, name=ent.name, type=ent.type,
                    method="fuzzy", score=round(best[0] / 100, 3),
                ))  # fmt: skip
            else:
                left.append(phrase)
        if not left:
            return
        # Only names sharing a word with a phrase are worth embedding (keeps this fast).
        words = {t for phrase in left for t in tokenize(phrase)}
        candidates = [c for c in candidates if words & set(tokenize(c.name))][:64]
        if not candidates:
            return
        matrix = await self._embedder.embed([*left, *(c.name for c in candidates)])
        phrase_vecs, cand_vecs = matrix[: len(left)], matrix[len(left) :]
        sims = phrase_vecs @ cand_vecs.T
        for i, phrase in enumerate(left):
            j = int(np.argmax(sims[i]))
            if sims[i, j] >= 0.85:
                ent = candidates[j]
                _keep(linked, LinkedEntity(
                    mention=phrase, entity_id=ent.id, name=ent.name, type=ent.type,
                    method="embedding", score=round(float(sims[i, j]) * 0.8, 3),
                ))  # fmt: skip

    # ------------------------------------------------------------------ graph walk

    async def _fact_relevance(
        self, facts: list[Relation], question_vector: np.ndarray, access: Access
    ) -> dict[RelationId, float]:
        """Cosine similarity of the strongest facts, read as phrases, to the question.

        Embedding is the costly step of a query; the strongest few facts carry the bridge
        signal, and the reading hop covers what they miss.
        """
        facts = facts[: self.weights.scored_facts]
        if not facts:
            return {}
        ids = list({e for r in facts for e in (r.subject_id, r.object_id)})
        names = {e.id: e.name for e in await self._graph.entities(ids, access)}
        texts = [_fact_text(r, names) for r in facts]
        sims = (await self._embedder.embed(texts)) @ question_vector
        return {r.id: max(0.0, float(sim)) for r, sim in zip(facts, sims, strict=True)}

    async def _walk(
        self,
        linked: list[LinkedEntity],
        question_vector: np.ndarray,
        dense: list[VectorHit],
        sparse: list[VectorHit],
        access: Access,
        *,
        bridges: bool = True,
    ) -> tuple[
        dict[ChunkId, float],
        dict[ChunkId, tuple[set[str], set[RelationId]]],
        dict[RelationId, tuple[EntityId, str, EntityId]],
        dict[ChunkId, list[EntityId]],
    ]:
        w = self.weights
        names = {e.entity_id: e.name for e in linked}
        seeds = [e.entity_id for e in linked]
        facts = await self._graph.relations(seeds, access, limit=w.neighbor_facts) if seeds else []
        fact_map = {r.id: (r.subject_id, r.predicate, r.object_id) for r in facts}
        neighbours = {e for r in facts for e in (r.subject_id, r.object_id)} - set(seeds)
        # Facts that read like the question seed bridge entities, unless a plan follows
        # the question's relations to its bridges itself (scored while the edges are read).
        edges_raw, relevance = await asyncio.gather(
            self._graph.mention_edges(
                [*seeds, *sorted(neighbours)], access, per_entity=w.per_entity_chunks
            ),
            self._fact_relevance(facts, question_vector, access) if bridges else _no_relevance(),
        )
        chunk_entities: dict[ChunkId, list[EntityId]] = defaultdict(list)
        degree: dict[EntityId, int] = defaultdict(int)
        for eid, cid, _ in edges_raw:
            chunk_entities[cid].append(eid)
            degree[eid] += 1
        edges: list[tuple[str, str, float]] = [
            (eid, cid, 1.0 + math.log(n)) for eid, cid, n in edges_raw
        ]
        for r in facts:
            weight = r.confidence * (1.0 if r.kind != "cooccurrence" else 0.5)
            edges.append((r.subject_id, r.object_id, weight * (0.2 + relevance.get(r.id, 0.0))))
        seed_weights = self._seeds(linked, facts, relevance, degree, dense, sparse)
        ranks = personalized_pagerank(edges, seed_weights, damping=w.damping)
        chunk_ids = {cid for _, cid, _ in edges_raw} | {h.chunk_id for h in (*dense, *sparse)}
        scores = {c: ranks.get(c, 0.0) for c in chunk_ids if ranks.get(c, 0.0) > 0}
        explain: dict[ChunkId, tuple[set[str], set[RelationId]]] = {}
        for cid, ents in chunk_entities.items():
            via = {names[e] for e in ents if e in names}
            rels = {rid for rid, (s, _, o) in fact_map.items() if s in ents or o in ents}
            explain[cid] = (via, rels)
        return scores, explain, fact_map, dict(chunk_entities)

    def _seeds(
        self,
        linked: list[LinkedEntity],
        facts: list[Relation],
        relevance: dict[RelationId, float],
        degree: dict[EntityId, int],
        dense: list[VectorHit],
        sparse: list[VectorHit],
    ) -> dict[str, float]:
        """Restart weights of the walk: linked entities, bridge entities, found chunks."""
        w = self.weights
        seed_weights: dict[str, float] = {}
        for ent in linked:
            # Rare entities say more about the question than hubs (node specificity).
            seed_weights[ent.entity_id] = ent.score / math.log(2 + degree.get(ent.entity_id, 0))
        total = sum(seed_weights.values()) or 1.0
        # Facts that read like the question point at the bridge entity of a multi-hop
        # question ("the author of Brand" → "Henrik Ibsen —write→ Brand"): seed their
        # other end, as HippoRAG 2 seeds the entities of query-matching triples.
        linked_ids = {e.entity_id for e in linked}
        for r in sorted(facts, key=lambda f: -relevance.get(f.id, 0.0))[: w.bridge_facts]:
            score = relevance.get(r.id, 0.0)
            if score < w.bridge_threshold:
                break
            for end in (r.subject_id, r.object_id):
                if end not in linked_ids:
                    bonus = total * w.bridge * score / math.log(2 + degree.get(end, 0))
                    seed_weights[end] = seed_weights.get(end, 0.0) + bonus
        for hits in (dense[:10], sparse[:10]):
            for rank, hit in enumerate(hits, 1):
                seed_weights[hit.chunk_id] = seed_weights.get(hit.chunk_id, 0.0) + (
                    w.chunk_seed * total / (rank + 1)
                )
        return seed_weights

    # ------------------------------------------------------------------ reading hop

    async def _hop(
        self, linked: list[LinkedEntity], question_vector: np.ndarray, access: Access
    ) -> list[_Hop]:
        """One reading hop for what the graph's facts miss (IRCoT without a model).

        Read the question entities' own pages (documents titled with their name), take the
        entities named in the sentences that read most like the question (the bridge
        candidates: "Lothair II was the son of ... Ermengarde of Tours" for "When did
        Lothair II's mother die?"), keep the best few, and return *their* own pages.
        """
        w = self.weights
        sources = [e for e in linked if e.score >= 0.8][: w.hop_sources]
        homes = await self.pages.homes([(e.entity_id, e.name) for e in sources], access)
        if not homes:
            return []
        owner_of = {homes[e.entity_id].id: e.name for e in sources if e.entity_id in homes}
        named = await self.pages.named(
            list(homes.values()), access,
            sentences=w.hop_sentences, exclude={e.entity_id for e in sources},
        )  # fmt: skip
        if not named:
            return []
        similarity = await self.pages.similarity(
            [(n.chunk, n.start, n.end) for n in named], question_vector, access
        )
        best: dict[EntityId, tuple[float, str]] = {}
        for n in named:
            score = similarity[(n.chunk.id, n.start)]
            if n.entity_id not in best or score > best[n.entity_id][0]:
                best[n.entity_id] = (score, owner_of[n.chunk.id])
        ranked = sorted(
            ((score, eid, owner) for eid, (score, owner) in best.items()),
            key=lambda t: (-t[0], t[1]),
        )
        names = {e.id: e for e in await self._graph.entities([t[1] for t in ranked], access)}
        beam = [t for t in ranked if t[1] in names][: w.hop_beam * 3]
        targets = await self.pages.homes([(eid, names[eid].name) for _, eid, _ in beam], access)
        hops: list[_Hop] = []
        for score, eid, owner in beam:
            chunk = targets.get(eid)
            if chunk is None or any(h.chunk_id == chunk.id for h in hops):
                continue
            hops.append(_Hop(chunk.id, chunk.document_id, float(score), owner, names[eid].name))
            if len(hops) >= w.hop_beam:
                break
        return hops

    # ------------------------------------------------------------------ fusion

    def _fuse(
        self,
        *,
        dense: list[VectorHit],
        sparse: list[VectorHit],
        graph_scores: dict[ChunkId, float],
        explain: dict[ChunkId, tuple[set[str], set[RelationId]]],
        linked: list[LinkedEntity],
        hops: Sequence[_Hop] = (),
        planned: Sequence[tuple[ChunkId, str, tuple[str, ...]]] = (),
        k: int,
        plan_weight: float,
    ) -> list[Evidence]:
        w = self.weights
        documents: dict[ChunkId, DocumentId] = {}
        signals: dict[ChunkId, dict[str, Signal]] = defaultdict(dict)
        fused: dict[ChunkId, float] = defaultdict(float)
        for name, hits, weight in (("dense", dense, w.dense), ("sparse", sparse, w.sparse)):
            for rank, hit in enumerate(hits, 1):
                documents[hit.chunk_id] = hit.document_id
                signals[hit.chunk_id][name] = Signal(rank=rank, score=round(hit.score, 5))
                fused[hit.chunk_id] += weight / (w.rrf_k + rank)
        if linked:
            ordered = sorted(graph_scores.items(), key=lambda kv: -kv[1])[: w.candidates * 2]
            for rank, (cid, score) in enumerate(ordered, 1):
                via, rels = explain.get(cid, (set(), set()))
                signals[cid]["graph"] = Signal(
                    rank=rank,
                    score=round(score, 6),
                    entities=tuple(sorted(via)),
                    relations=tuple(sorted(rels))[:10],
                )
                fused[cid] += w.graph / (w.rrf_k + rank)
        for rank, hop in enumerate(hops, 1):
            documents[hop.chunk_id] = hop.document_id
            signals[hop.chunk_id]["hop"] = Signal(
                rank=rank, score=round(hop.score, 5), entities=(hop.source, hop.target)
            )
            fused[hop.chunk_id] += w.hop / (w.rrf_k + rank)
        for rank, (cid, _, names) in enumerate(planned, 1):
            signals[cid]["plan"] = Signal(rank=rank, score=round(1 / rank, 5), entities=names)
            fused[cid] += plan_weight / (w.rrf_k + rank)
        best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [
            Evidence(
                chunk_id=cid,
                document_id=documents.get(cid, DocumentId("")),
                score=round(score, 6),
                signals=dict(signals[cid]),
            )
            for cid, score in best
        ]


def _linkable(analysis: QuestionAnalysis) -> list[tuple[str, str]]:
    """The question's phrases worth linking, with their labels."""
    # Common nouns ("country", "city") name hubs, not the question's subject; only
    # multi-word noun phrases ("real estate") are worth linking.
    phrases = [
        (p, label)
        for p, label in analysis.phrases
        if label not in _UNLINKABLE and (label != "NOUN" or " " in p)
    ]
    # Titles the parser splits ("the song Changed It") still match as word runs.
    known = {p for p, _ in phrases}
    phrases += [(g, "NGRAM") for g in capitalised_runs(analysis.text) if g not in known]
    return phrases


def _fact_text(fact: Relation, names: dict[EntityId, str]) -> str:
    subject, obj = names.get(fact.subject_id, ""), names.get(fact.object_id, "")
    if fact.kind == "cooccurrence":
        return f"{subject} and {obj}"
    return f"{subject} {fact.predicate.replace('_', ' ')} {obj}"


@dataclass(frozen=True, slots=True)
class _Hop:
    """A page reached by reading: the bridge entity's own page."""

    chunk_id: ChunkId
    document_id: DocumentId
    score: float
    source: str  # the question entity whose page named the bridge
    target: str  # the bridge entity


def _keep(linked: dict[EntityId, LinkedEntity], candidate: LinkedEntity) -> None:
    current = linked.get(candidate.entity_id)
    if current is None or candidate.score > current.score:
        linked[candidate.entity_id] = candidate


async def _nothing() -> None:
    return None


async def _no_relevance() -> dict[RelationId, float]:
    return {}


async def _nothing_list() -> list[_Hop]:
    return []


def _plan_evidence(trace: PlanTrace | None) -> list[tuple[ChunkId, str, tuple[str, ...]]]:
    """The pages a plan reached, in rank order: every anchor's and every step's best
    binding's page first, then the rest of each beam.

    Each item is (chunk id, the step that reached it, the entity whose page it is).
    """
    if trace is None:
        return []
    tiers: dict[int, list[tuple[ChunkId, str, tuple[str, ...]]]] = defaultdict(list)
    for step in trace.steps:
        for rank, binding in enumerate(step.output):
            if binding.home:
                tiers[rank].append((ChunkId(binding.home), step.id, (binding.name,)))
        if step.note.startswith("relaxed") or "chunks that mention" in step.note:
            # No page of its own: the chunks that mention the subject were read instead.
            names = tuple(b.name for b in step.output[:1])
            read = [c for c in step.evidence if c.startswith("chk_")]
            tiers[1] += [(ChunkId(c), step.id, names) for c in read]
    ordered: list[tuple[ChunkId, str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for rank in sorted(tiers):
        for item in tiers[rank]:
            if item[0] not in seen:
                seen.add(item[0])
                ordered.append(item)
    return ordered
