"""Runs a plan against the stores: beam search over bridge entities, relaxation, budget.

* ``link`` resolves a mention to entities (the retrieval's linking first, then exact and
  alias names, then a name search) and finds each entity's own page.
* ``traverse`` reads the subject's page: every entity its sentences name is a candidate
  for the next binding, scored by how much the sentence reads like the question, whether
  it carries the relation's words near the name ("directed by X" for "director"), the
  candidate's type, and graph facts between subject and candidate whose predicate
  matches the relation. The best few (the beam) go on; their own pages are evidence.
* ``read`` picks a value of the expected type from the subject's page the same way
  (IRCoT's idea without a model: the step's relation words and answer type score the
  sentences).
* ``compare`` orders the branches' values (dates for "born first") or checks them for
  equality ("the same nationality"), and answers with the winning branch's name.

When a step finds nothing it is relaxed once: the question's similarity alone picks the
candidates, read from chunks that mention the subject (a vector lookup restricted to the
documents that mention it). Execution stops at the step and time budget; every step
records its input, output, evidence and time.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

from agents.plan import Binding, Plan, PlanTrace, Step, StepTrace
from agents.question import stem
from agents.reading import Named, PageReader, capitalised_runs, top_kinds
from extractors import tokenize
from graph import (
    Access,
    Chunk,
    ChunkId,
    Entity,
    EntityId,
    GraphStore,
    Relation,
    VectorIndex,
    normalize_name,
    title_key,
)
from graph.provenance import LinkedEntity

__all__ = ["ExecutorLimits", "PlanExecutor"]

_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
#: Stems of relations that end something: their date comes last in a span.
_ENDINGS = frozenset({"die", "died", "dies", "death", "end", "ended", "disso", "close"})
_MONTHS = {
    m: i
    for i, m in enumerate(
        "january february march april may june july august september october november "
        "december".split(),
        1,
    )
}


@dataclass(frozen=True, slots=True)
class ExecutorLimits:
    """Beam width and budgets of one plan execution."""

    beam: int = 3
    max_steps: int = 16
    budget_ms: float = 600.0
    sentences: int = 6  # sentences of a page read for names
    scored_sentences: int = 3  # of which the first are scored by similarity
    cue: float = 0.6
    near: float = 0.3
    type_match: float = 0.3
    fact: float = 0.5
    parent: float = 0.3


class PlanExecutor:
    """Executes plans; one instance serves many questions."""

    def __init__(
        self,
        *,
        graph: GraphStore,
        vectors: VectorIndex,
        pages: PageReader,
        limits: ExecutorLimits | None = None,
    ) -> None:
        self._graph = graph
        self._vectors = vectors
        self._pages = pages
        self.limits = limits or ExecutorLimits()

    async def run(
        self,
        plan: Plan,
        access: Access,
        *,
        question_vector: np.ndarray,
        linked: Sequence[LinkedEntity] = (),
    ) -> PlanTrace:
        """Run every step in order (the plan is a DAG listed in dependency order)."""
        started = time.perf_counter()
        run = _Run(self, plan, access, question_vector, list(linked))
        for step in plan.steps:
            elapsed = (time.perf_counter() - started) * 1000
            if len(run.traces) >= self.limits.max_steps or elapsed > self.limits.budget_ms:
                run.skip(step, f"budget reached after {elapsed:.0f} ms")
                continue
            await run.step(step)
        answer_step = plan.steps[-1] if plan.steps else None
        answer = run.outputs.get(answer_step.id, ()) if answer_step else ()
        return PlanTrace(
            plan=plan,
            steps=tuple(run.traces),
            answer=answer[0] if answer else None,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )


class _Run:
    """State of one execution: the bindings of every step so far."""

    def __init__(
        self,
        executor: PlanExecutor,
        plan: Plan,
        access: Access,
        question_vector: np.ndarray,
        linked: list[LinkedEntity],
    ) -> None:
        self.x = executor
        self.plan = plan
        self.access = access
        self.qv = question_vector
        self.linked = linked
        self.outputs: dict[str, tuple[Binding, ...]] = {}
        self.traces: list[StepTrace] = []
        self.entities: dict[EntityId, Entity] = {}
        self.chunks: dict[ChunkId, Chunk] = {}
        self.roots: dict[str, str] = {}  # step id → the link step its branch starts at
        self.anchors: set[EntityId] = set()

    def skip(self, step: Step, why: str) -> None:
        self._record(step, (), (), 0.0, why)

    def _record(
        self,
        step: Step,
        output: tuple[Binding, ...],
        evidence: tuple[str, ...],
        ms: float,
        note: str = "",
    ) -> None:
        self.outputs[step.id] = output
        self.traces.append(
            StepTrace(
                id=step.id,
                kind=step.kind,
                depends_on=step.depends_on,
                input=step.model_dump(exclude={"id", "kind", "depends_on"}, exclude_defaults=True),
                output=output,
                evidence=evidence,
                ms=round(ms, 2),
                note=note,
            )
        )

    async def step(self, step: Step) -> None:
        clock = time.perf_counter()
        if step.subject:
            self.roots[step.id] = self.roots.get(step.subject, step.subject)
        note = ""
        evidence: tuple[str, ...] = ()
        if step.kind == "link":
            self.roots[step.id] = step.id
            output = await self._link(step)
        elif step.kind in {"traverse", "read"}:
            output, evidence, note = await self._follow(step)
        elif step.kind == "compare":
            output, note = self._compare(step)
        elif step.kind == "answer":
            output = self.outputs.get(step.subject or "", ())[:1]
        elif step.kind == "path":
            output, evidence, note = await self._path(step)
        else:  # the lookup is the single shot's vector search: retrieval does it
            output = ()
            note = "done by the hybrid retrieval"
        if not evidence:
            evidence = tuple(dict.fromkeys(c for b in output if (c := b.home or b.chunk_id)))
        self._record(step, output, evidence, (time.perf_counter() - clock) * 1000, note)

    # ------------------------------------------------------------------ link

    async def _link(self, step: Step) -> tuple[Binding, ...]:
        mention = step.mention or ""
        key = normalize_name(mention)
        found: list[tuple[Entity | None, EntityId, str, float]] = []
        for e in self.linked:
            m = normalize_name(e.mention)
            if m == key or normalize_name(e.name) == key or (len(m) > 3 and m in key):
                found.append((None, e.entity_id, e.name, e.score))
        if not found:
            bare = title_key(mention)  # "Dark River (2017 Film)" is also "dark river"
            exact = await self.x._graph.match_entities([mention, bare], self.access)
            for ent in top_kinds(exact.get(mention) or exact.get(bare) or []):
                found.append((ent, ent.id, ent.name, 1.0))
        if not found:
            hits = await self.x._graph.search_entities(mention, self.access, limit=10)
            scored = sorted(
                ((fuzz.ratio(key, normalize_name(h.name)) / 100, h) for h in hits),
                key=lambda t: -t[0],
            )
            found += [(h, h.id, h.name, s) for s, h in scored[:2] if s >= 0.85]
        found.sort(key=lambda t: -t[3])
        names = {eid: name for _, eid, name, _ in found}
        types = {e.entity_id: e.type for e in self.linked}
        types.update((ent.id, ent.type) for ent, *_ in found if ent is not None)
        ranked = [
            Entity.model_construct(id=eid, name=names[eid], type=types.get(eid, ""))
            for eid in dict.fromkeys(eid for _, eid, _, _ in found)
        ]
        ids = [e.id for e in top_kinds(ranked)]
        # The page titled as the question writes the name, else as the graph names it
        # (one lookup: later names win where they have a page).
        homes = await self.x._pages.homes(
            [(eid, names[eid]) for eid in ids] + [(eid, mention) for eid in ids],
            self.access,
            query=self.qv,
        )
        if not ids:
            # No entity by that name, but maybe a page titled with it.
            pages = await self.x._graph.pages([mention], self.access)
            if pages:
                page = pages[mention][0]
                self.chunks[page.id] = page
                return (Binding(name=mention, score=0.7, home=page.id),)
        scores = {eid: s for _, eid, _, s in reversed(found)}
        out = []
        for eid in ids:
            home = homes.get(eid)
            if home is not None:
                self.chunks[home.id] = home
            self.anchors.add(eid)
            out.append(
                Binding(
                    name=names[eid],
                    score=round(scores[eid], 4),
                    entity_id=eid,
                    home=home.id if home else None,
                )
            )
        return tuple(out)

    # ------------------------------------------------------------------ traverse / read

    async def _follow(self, step: Step) -> tuple[tuple[Binding, ...], tuple[str, ...], str]:
        subjects = [b for b in self.outputs.get(step.subject or "", ()) if b.entity_id or b.home]
        if not subjects:
            return (), (), "nothing to start from"
        pages = [self.chunks[ChunkId(b.home)] for b in subjects if b.home and b.home in self.chunks]
        note = ""
        # The subjects' facts (read for a traversal whose relation has words) do not
        # depend on the candidates: read side by side.
        facts_read = step.kind == "traverse" and bool(_stems(step.relation or ""))
        candidates, subject_facts = await asyncio.gather(
            self._candidates(step, subjects, pages, relaxed=False),
            self._subject_facts(subjects) if facts_read else _no_facts(),
        )
        if not candidates and (step.kind == "traverse" or not pages):
            # The bridge must be found, and a subject without a page of its own is
            # described where it is mentioned: widen to the chunks that mention it.
            pages = await self._lookup(subjects)
            candidates = await self._candidates(step, subjects, pages, relaxed=True)
            note = "relaxed: read the chunks that mention the subject, best by the question"
        facts: list[str] = []
        if step.kind == "traverse":
            facts = self._fact_support(step, subjects, candidates, subject_facts)
        ranked = sorted(candidates.values(), key=lambda c: (-c.score, c.entity_id))
        beam = ranked[: self.x.limits.beam]
        if beam:  # a bridge's page, or the page of the answer a read step found
            # A page titled with the entity's name, or with the full name the sentence
            # writes ("Ermengarde of Tours" where the graph has "Ermengarde"); the latter
            # wins when both exist.
            homes = await self.x._pages.homes(
                [(c.entity_id, self.entities[c.entity_id].name) for c in beam]
                + [(c.entity_id, run) for c in beam if (run := _full_name(c.named))],
                self.access,
                query=self.qv,
            )
            for chunk in homes.values():
                self.chunks[chunk.id] = chunk
        else:
            homes = {}
        out = tuple(
            Binding(
                name=c.text,
                score=round(c.score, 4),
                entity_id=c.entity_id,
                chunk_id=c.named.chunk.id,
                sentence=(
                    c.named.chunk.start + c.named.start,
                    c.named.chunk.start + c.named.end,
                ),
                home=homes[c.entity_id].id if c.entity_id in homes else None,
                via=c.via,
            )
            for c in beam
        )
        if step.kind == "traverse" and out and out[0].home is None and out[0].entity_id:
            # The best bridge has no page of its own: what is said about it is in the
            # chunks that mention it.
            pages = [*pages, *await self._lookup([out[0]])]
            note = note or "the best candidate has no page: read the chunks that mention it"
        evidence = tuple(
            dict.fromkeys([*(b.home for b in out if b.home), *(p.id for p in pages), *facts])
        )
        return out, evidence, note

    async def _path(self, step: Step) -> tuple[tuple[Binding, ...], tuple[str, ...], str]:
        """Chains of facts between two steps' entities; the entities in between (with
        their pages) are the output, the facts the evidence."""
        ends = [
            next((b for b in self.outputs.get(ref or "", ()) if b.entity_id), None)
            for ref in (step.subject, step.object)
        ]
        source, target = ends
        if source is None or target is None or source.entity_id == target.entity_id:
            return (), (), "both ends must be entities"
        paths = await self.x._graph.paths(
            EntityId(source.entity_id or ""), EntityId(target.entity_id or ""), self.access,
            max_hops=3, limit=3,
        )  # fmt: skip
        inner = list(dict.fromkeys(e for p in paths for e in p.entity_ids[1:-1]))
        if not paths:
            return (), (), "no chain of facts joins them"
        named = {e.id: e for e in await self.x._graph.entities(inner, self.access)}
        homes = await self.x._pages.homes(
            [(e, named[e].name) for e in inner if e in named], self.access
        )
        for chunk in homes.values():
            self.chunks[chunk.id] = chunk
        out = tuple(
            Binding(
                name=named[e].name,
                score=round(1.0 / (1 + rank), 4),
                entity_id=e,
                home=homes[e].id if e in homes else None,
            )
            for rank, e in enumerate(inner)
            if e in named
        )
        facts = tuple(dict.fromkeys(r.id for p in paths for r in p.relations))
        return out, facts, "" if out else "the names are directly related"

    async def _lookup(self, subjects: list[Binding]) -> list[Chunk]:
        """Chunks that mention the subjects, best by the question's similarity."""
        ids = [EntityId(b.entity_id) for b in subjects if b.entity_id]
        edges = await self.x._graph.mention_edges(ids, self.access, per_entity=20)
        chunk_ids = list(dict.fromkeys(cid for _, cid, _ in edges))
        chunks = await self.x._graph.chunks(chunk_ids, self.access)
        docs = list(dict.fromkeys(c.document_id for c in chunks))
        if not docs:
            return []
        hits = await self.x._vectors.search(
            self.qv.tolist(), self.access, limit=3, document_ids=docs
        )
        wanted = {h.chunk_id for h in hits}
        found = [c for c in chunks if c.id in wanted]
        for c in found:
            self.chunks[c.id] = c
        return found

    async def _candidates(
        self, step: Step, subjects: list[Binding], pages: list[Chunk], *, relaxed: bool
    ) -> dict[EntityId, _Candidate]:
        if not pages:
            return {}
        limits = self.x.limits
        exclude = {EntityId(b.entity_id) for b in subjects if b.entity_id} | self.anchors
        named = await self.x._pages.named(
            pages, self.access, sentences=limits.sentences, exclude=exclude
        )
        if not named:
            return {}
        missing = [n.entity_id for n in named if n.entity_id not in self.entities]
        scored = [n for n in named if n.position < limits.scored_sentences]
        # The names' entities and the sentences' scores are independent reads: side by side.
        found, similarity = await asyncio.gather(
            self.x._graph.entities(list(dict.fromkeys(missing)), self.access),
            # Relaxed reads go past pages' openings, whose vectors are stored: no embedding.
            self.x._pages.similarity(
                [(n.chunk, n.start, n.end) for n in scored], self.qv, self.access,
                embed_missing=not relaxed,
            ),
        )  # fmt: skip
        for ent in found:
            self.entities[ent.id] = ent
        cues = _stems(step.relation or "")
        parent = {b.home: b for b in subjects if b.home}
        out: dict[EntityId, _Candidate] = {}
        for n in named:
            known = self.entities.get(n.entity_id)
            if known is None:
                continue
            source = parent.get(n.chunk.id)
            score = similarity.get((n.chunk.id, n.start), 0.0) + self._bonus(step, n, known, cues)
            if source is not None:
                score += limits.parent * source.score
            current = out.get(n.entity_id)
            if current is None or score > current.score:
                text = n.chunk.text[n.at : n.at + len(known.name)]
                if normalize_name(text) != normalize_name(known.name):
                    text = known.name
                via = source.name if source else None
                out[n.entity_id] = _Candidate(n.entity_id, text, score, n, via)
        return out

    def _bonus(self, step: Step, named: Named, ent: Entity, cues: set[str]) -> float:
        """What the relation's words and the expected type add to a candidate's score."""
        limits = self.x.limits
        sentence_cue, near = _cue(named, cues)
        bonus = limits.cue * sentence_cue + limits.near * near
        if step.answer_types and ent.type:
            bonus += limits.type_match if ent.type in step.answer_types else -limits.type_match
        # Within a sentence the earlier name wins a tie ("(12 October 1902 - 9 March
        # 1980)" is born-then-died), except for endings, where the later one does.
        offset = (named.at - named.start) / max(1, named.end - named.start)
        return bonus - 0.01 * (1 - offset if cues & _ENDINGS else offset)

    async def _subject_facts(self, subjects: list[Binding]) -> list[Relation]:
        """The facts of the subjects' entities (the first 100)."""
        ids = [EntityId(b.entity_id) for b in subjects if b.entity_id]
        return await self.x._graph.relations(ids, self.access, limit=100)

    def _fact_support(
        self,
        step: Step,
        subjects: list[Binding],
        candidates: dict[EntityId, _Candidate],
        facts: Sequence[Relation],
    ) -> list[str]:
        """Graph facts subject —p→ candidate whose predicate carries the relation's words
        raise the candidate; the facts are evidence of the step."""
        cues = _stems(step.relation or "")
        if not cues:
            return []
        ids = [EntityId(b.entity_id) for b in subjects if b.entity_id]
        used: list[str] = []
        for fact in facts:
            if fact.kind == "cooccurrence" or not cues & _stems(fact.predicate.replace("_", " ")):
                continue
            other = fact.object_id if fact.subject_id in ids else fact.subject_id
            if other in candidates:
                candidates[other].score += self.x.limits.fact
                used.append(fact.id)
        return used

    # ------------------------------------------------------------------ compare

    def _compare(self, step: Step) -> tuple[tuple[Binding, ...], str]:
        dates = step.op not in {"same", "different"}
        values: list[tuple[str, Binding | None]] = []
        for operand in step.operands:
            out = self.outputs.get(operand, ())
            if dates:  # the best value that reads as a date ("18 November 1960", not "18 November")
                out = tuple(b for b in out if _date_key(b.name) is not None) or out
            values.append((self.roots.get(operand, operand), out[0] if out else None))
        if any(v is None for _, v in values):
            return (), "a branch found no value to compare"
        op = step.op or "same"
        if op in {"same", "different"}:
            keys = {_value_key(v.name) for _, v in values if v is not None}
            same = len(keys) == 1
            verdict = "yes" if same == (op == "same") else "no"
            best = max((v for _, v in values if v is not None), key=lambda b: b.score)
            return (best.model_copy(update={"name": verdict}),), ""
        dated = [(_date_key(v.name), root, v) for root, v in values if v is not None]
        if any(key is None for key, _, _ in dated):
            return (), "a value is not a date or number"
        pick = min if op in {"earliest", "smallest"} else max
        _, root, value = pick(dated, key=lambda t: t[0] or (0, 0, 0))
        name = self.outputs.get(root, ())
        winner = name[0].name if name else value.name
        return (value.model_copy(update={"name": winner, "via": value.name}),), ""


async def _no_facts() -> list[Relation]:
    return []


@dataclass(slots=True)
class _Candidate:
    entity_id: EntityId
    text: str
    score: float
    named: Named
    via: str | None


def _full_name(named: Named) -> str:
    """The longest capitalised word run of the sentence that starts at the name."""
    rest = named.chunk.text[named.at : named.end]
    # (a leading word, since a text's own first word never starts a run)
    runs = [r for r in capitalised_runs("x " + rest) if rest.startswith(r)]
    return max(runs, key=len, default="").rstrip(".,;:")


def _stems(words: str) -> set[str]:
    """Crude stems of content words: "director"/"directed" → "direc"."""
    return {stem(t) for t in tokenize(words) if len(t) > 2}


def _cue(named: Named, stems: set[str]) -> tuple[float, float]:
    """(the sentence carries the relation's words, they stand close before the name)."""
    if not stems:
        return 0.0, 0.0
    sentence = named.chunk.text[named.start : named.end]
    words = tokenize(sentence)
    if not any(stem(w) in stems for w in words):
        return 0.0, 0.0
    before = tokenize(named.chunk.text[max(named.start, named.at - 40) : named.at])
    near = any(stem(w) in stems for w in before[-5:])
    return 1.0, 1.0 if near else 0.0


def _date_key(text: str) -> tuple[int, int, int] | None:
    """A sortable (year, month, day) of a date-like value ("20 March 851" → (851, 3, 20))."""
    words = text.lower().replace(",", " ").split()
    years = [int(w) for w in words if w.isdigit() and len(w) in {3, 4}]
    match = _YEAR.search(text)
    year = int(match.group(1)) if match else (years[0] if years else None)
    if year is None:
        return None
    month = next((_MONTHS[w] for w in words if w in _MONTHS), 0)
    day = next((int(w) for w in words if w.isdigit() and len(w) <= 2), 0)
    return year, month, day


def _value_key(text: str) -> str:
    """Equality key of a compared value ("American" and "America" agree)."""
    key = normalize_name(text)
    for suffix in ("ian", "an", "ese", "ish", "i"):
        if key.endswith(suffix) and len(key) > len(suffix) + 3:
            return key[: -len(suffix)]
    return key
