"""Building communities and their cited summaries, and keeping them up to date.

:class:`CommunityBuilder` rebuilds the communities of every stale scope a caller may
read (lazily, on read, and after ingest when asked): it reads the scope's entity graph,
runs hierarchical Leiden in a worker thread (:func:`graph.communities.detect_communities`,
seeded with the scope's previous partition), and summarises each community without a
model: its key entities by centrality (each cited to a span naming it), its strongest facts
(cited to their evidence) and a few representative sentences, chosen by maximal marginal
relevance over the embedder's vectors so they cover the community without repeating each
other. After a write, a community whose members and passages are unchanged keeps its
summary, so only what the write touched is summarised again. Only the scope's own reads
are made (:meth:`CommunityScope.access`), so nothing
from another scope can enter a community.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from extractors import Embedder, split_sentences
from graph import Chunk, ChunkId, EntityId, GraphStore, Mention, RelationId, Span
from graph.communities import Community, CommunityScope, detect_communities

__all__ = ["CommunityBuilder", "RefreshReport", "mmr"]

logger = logging.getLogger(__name__)

#: Key entities a summary names, facts it states, sentences it quotes.
KEY_ENTITIES = 5
KEY_FACTS = 4
SENTENCES = 3
#: Candidate sentences embedded per community; chunks read per key entity.
CANDIDATES = 8
CHUNKS_PER_ENTITY = 3
MAX_SENTENCE_CHARS = 400


@dataclass
class RefreshReport:
    """What a refresh rebuilt: scopes, communities (``reused``: how many kept the summary
    they had, their members and passages unchanged), and seconds spent per stage."""

    scopes: int = 0
    communities: int = 0
    reused: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def mmr(vectors: np.ndarray, relevance: np.ndarray, k: int, *, weight: float = 0.7) -> list[int]:
    """Indices of ``k`` rows chosen by maximal marginal relevance: each next row maximises
    ``weight * relevance - (1 - weight) * (highest cosine to a row already chosen)``.
    Rows are unit vectors."""
    chosen: list[int] = []
    left = list(range(len(vectors)))
    while left and len(chosen) < k:
        if chosen:
            redundancy = (vectors[left] @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(left))
        scores = weight * relevance[left] - (1 - weight) * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return chosen


@dataclass
class _Draft:
    community: Community
    facts: tuple[RelationId, ...] = ()
    mentions: tuple[Mention, ...] = ()
    candidates: list[tuple[float, Span]] = field(default_factory=list)


class CommunityBuilder:
    """Rebuilds stale communities of the scopes a caller reads, one scope at a time."""

    def __init__(self, *, graph: GraphStore, embedder: Embedder) -> None:
        self._graph = graph
        self._embedder = embedder
        self._running: dict[str, asyncio.Task[None]] = {}

    async def refresh(self, scopes: Sequence[CommunityScope]) -> RefreshReport:
        """Rebuild the stale ones of ``scopes`` (from :meth:`GraphStore.community_scopes`).

        One rebuild runs per scope at a time; a reader that arrives meanwhile waits for it.
        A rebuild is shielded from its reader: when the reader gives up (a request timeout),
        the rebuild still completes and is stored for the next read.
        """
        report = RefreshReport()
        for scope in scopes:
            if not scope.stale:
                continue
            task = self._running.get(scope.key)
            if task is None:
                task = asyncio.create_task(self._rebuild_if_stale(scope, report))
                self._running[scope.key] = task
                task.add_done_callback(functools.partial(self._forget, scope.key))
            await asyncio.shield(task)
        return report

    def _forget(self, key: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(key, None)

    async def _rebuild_if_stale(self, scope: CommunityScope, report: RefreshReport) -> None:
        # Another process, or a write since the scopes were read, may have changed it.
        current = {s.key: s for s in await self._graph.community_scopes(scope.access())}
        now = current.get(scope.key)
        if now is None or not now.stale:
            return
        report.communities += len(await self.rebuild(now, report))
        report.scopes += 1

    async def rebuild(
        self, scope: CommunityScope, report: RefreshReport | None = None
    ) -> list[Community]:
        """Detect, summarise and store one scope's communities."""
        report = report or RefreshReport()
        started = time.perf_counter()
        graph = await self._graph.entity_graph(scope)
        previous = [
            c
            for c in await self._graph.communities(scope.access())
            if c.tenant == scope.tenant and c.groups == scope.groups
        ]
        read = time.perf_counter()
        found = await asyncio.to_thread(detect_communities, scope, graph, previous=previous)
        detected = time.perf_counter()
        # A community with the same members spanning the same passages keeps its summary:
        # only what a write changed is summarised again.
        kept = {(c.id, c.documents, c.passages): c for c in previous}
        fresh = [c for c in found if (c.id, c.documents, c.passages) not in kept]
        written = {c.id: c for c in await self.summarise(scope, fresh)}
        summarised = [
            written.get(c.id) or _summary_of(kept[(c.id, c.documents, c.passages)], c)
            for c in found
        ]
        report.reused += len(found) - len(fresh)
        done = time.perf_counter()
        await self._graph.put_communities(scope, summarised)
        stored = time.perf_counter()
        for stage, seconds in (
            ("read", read - started),
            ("detect", detected - read),
            ("summarise", done - detected),
            ("store", stored - done),
        ):
            report.seconds[stage] += seconds
        logger.info("rebuilt %s communities of a scope in %.2fs", len(summarised), stored - started)
        return summarised

    async def summarise(self, scope: CommunityScope, found: Sequence[Community]) -> list[Community]:
        """Each community with its key facts, key-entity mentions, representative
        sentences and centroid vector, read as the scope itself."""
        drafts = [await self._draft(scope, c) for c in found]
        texts = [span.text for d in drafts for _, span in d.candidates]
        # A sentence is often a candidate of a community and of its parent: embed it once.
        unique = list(dict.fromkeys(texts))
        row = {t: i for i, t in enumerate(unique)}
        vectors = np.zeros((0, 0))
        if unique:
            vectors = (await self._embedder.embed(unique))[[row[t] for t in texts]]
        out = []
        at = 0
        for d in drafts:
            n = len(d.candidates)
            out.append(_finished(d, vectors[at : at + n] if n else np.zeros((0, 0))))
            at += n
        return out

    async def _draft(self, scope: CommunityScope, community: Community) -> _Draft:
        access = scope.access()
        members = set(community.entity_ids)
        key = list(community.entity_ids[:KEY_ENTITIES])
        rels = await self._graph.relations(key, access, limit=KEY_FACTS * 10)
        inside = [r for r in rels if r.subject_id in members and r.object_id in members]
        # Stated facts before mere co-occurrence; the store's order (strongest first) within.
        inside.sort(key=lambda r: r.kind == "cooccurrence")
        edges = await self._graph.mention_edges(key, access, per_entity=CHUNKS_PER_ENTITY)
        chunk_ids = list(dict.fromkeys(c for _, c, _ in edges))
        chunks = {c.id: c for c in await self._graph.chunks(chunk_ids, access)}
        mentions = [
            m for m in await self._graph.chunk_mentions(chunk_ids, access) if m.entity_id in members
        ]
        first: dict[EntityId, Mention] = {}
        for m in mentions:
            first.setdefault(m.entity_id, m)
        rank = {e: i for i, e in enumerate(community.entity_ids)}
        return _Draft(
            community=community,
            facts=tuple(r.id for r in inside[:KEY_FACTS]),
            mentions=tuple(first[e] for e in key if e in first),
            candidates=_candidates(chunk_ids, chunks, mentions, rank),
        )


def _candidates(
    order: Sequence[ChunkId],
    chunks: dict[ChunkId, Chunk],
    mentions: Sequence[Mention],
    rank: dict[EntityId, int],
) -> list[tuple[float, Span]]:
    """Sentences naming members, scored by how many (central) members they name."""
    by_chunk: dict[ChunkId, list[Mention]] = defaultdict(list)
    for m in mentions:
        by_chunk[m.span.chunk_id].append(m)
    scored: list[tuple[float, int, Span]] = []
    for cid in order:
        chunk = chunks.get(cid)
        if chunk is None:
            continue
        for a, b in split_sentences(chunk.text):
            start, end = chunk.start + a, chunk.start + b
            named = {m.entity_id for m in by_chunk[cid] if start <= m.span.start < end}
            if not named:
                continue
            stop = min(b, a + MAX_SENTENCE_CHARS)
            score = sum(1.0 / (1 + rank[e]) for e in named) + 0.25 * len(named)
            span = Span(
                chunk_id=cid,
                document_id=chunk.document_id,
                start=start,
                end=chunk.start + stop,
                text=chunk.text[a:stop],
            )
            scored.append((score, len(scored), span))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(s, span) for s, _, span in scored[:CANDIDATES]]


def _finished(draft: _Draft, vectors: np.ndarray) -> Community:
    sentences: tuple[Span, ...] = ()
    centroid: tuple[float, ...] = ()
    if len(draft.candidates):
        weights = np.array([s for s, _ in draft.candidates], dtype=np.float32)
        mean = (vectors * weights[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            mean = mean / norm
            centroid = tuple(round(float(x), 5) for x in mean)
            relevance = vectors @ mean
            picked = mmr(vectors, relevance, SENTENCES)
            sentences = tuple(draft.candidates[i][1] for i in picked)
    return draft.community.model_copy(
        update={
            "facts": draft.facts,
            "mentions": draft.mentions,
            "sentences": sentences,
            "vector": centroid,
        }
    )


def _summary_of(old: Community, new: Community) -> Community:
    """``new`` (its parent may differ) with the summary ``old`` had."""
    return new.model_copy(
        update={
            "facts": old.facts,
            "mentions": old.mentions,
            "sentences": old.sentences,
            "vector": old.vector,
        }
    )
