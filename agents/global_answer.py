"""Corpus-wide questions, answered map-reduce over communities.

"What are the main themes in these reports?", "What risks do these filings discuss?",
"Who are the key people here and how are they connected?" have no entity to start from,
or name a topic rather than a thing: top-k retrieval would return a few chunks about
whatever matched best. :func:`is_global_question` recognises them by general English
cues (a plural theme noun with a quantifier, a request for a summary or an overview, a
topic the documents "discuss"); :class:`GlobalAnswerer` answers them from the caller's
communities:

- **select**: communities ranked by relevance to the question (cosine between the
  question and the community's centroid) weighted by how many passages they span; a
  community whose parent is selected is skipped, so no part of the corpus counts twice;
- **map**: each selected community gives its most relevant cited items (representative
  sentences, then key facts' evidence) as candidate points;
- **reduce**: near-duplicate points (by embedding) merge, pooling their communities; the
  points are ordered by the passages (chunks) their communities span, most first: how
  much of the corpus supports each.

Every point is a claim quoting exact spans, for the provenance validator to check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from extractors import Embedder
from graph import Access, Document, DocumentId, GraphStore, Span
from graph.communities import Community
from graph.provenance import Claim, DocumentRef, SpanRef

__all__ = ["GlobalAnswerer", "GlobalDraft", "Point", "is_global_question"]

_PLURAL_TOPICS = (
    r"themes|topics|subjects|issues|risks|ideas|points|trends|patterns|concerns|findings|"
    r"events|people|persons|players|actors|figures|characters|organi[sz]ations|companies|"
    r"entities|places|relationships|conflicts|arguments|lessons|takeaways|messages|threads|"
    r"problems|questions|challenges|developments|groups|parties|institutions"
)
_QUANTIFIERS = (
    r"main|key|major|central|principal|common|recurring|overall|important|prominent|"
    r"dominant|biggest|top|general|primary|most discussed|most important"
)
_CORPUS = (
    r"documents?|corpus|collection|reports?|filings?|texts?|sources?|files?|records?|memos?|"
    r"articles?|papers?|notes|book|story|novel|material|archive|pages|passages|data"
)
_CUES = [
    re.compile(rf"\b(?:{_QUANTIFIERS})\s+(?:\w+\s+)?(?:{_PLURAL_TOPICS})\b"),
    re.compile(r"\b(?:summari[sz]e|summary|overview|gist|high-level|big picture)\b"),
    re.compile(
        rf"\bwhat\s+(?:is|are)\s+(?:this|these|those|the|all|our)\s+(?:{_CORPUS})\s+about\b"
    ),
    re.compile(
        rf"\bwhat\s+(?:\w+\s+)?(?:{_PLURAL_TOPICS})\s+(?:do|does|did)\s+.*\b(?:discuss|mention|"
        r"cover|raise|describe|address|identify|highlight|report)\b"
    ),
    re.compile(
        rf"\b(?:across|throughout|among)\s+(?:all\s+)?(?:the|these|those|our)\s+(?:{_CORPUS})\b"
    ),
    re.compile(r"\bhow\s+are\s+(?:they|these|those|the\s+\w+)\s+(?:connected|related|linked)\b"),
    re.compile(
        rf"\b(?:{_PLURAL_TOPICS})(?:\s+and\s+\w+)?\s+(?:are|were)\s+(?:most\s+)?"
        rf"(?:{_QUANTIFIERS}|discussed|mentioned|described)\b"
    ),
]

#: Communities a global answer draws on, points it gives at most.
MAX_COMMUNITIES = 8
MAX_POINTS = 8
#: Points closer than this (cosine) are one point.
SAME_POINT = 0.88


def is_global_question(question: str) -> bool:
    """Whether a question asks about the corpus (or a topic across it) as a whole."""
    text = " ".join(question.casefold().split())
    return any(cue.search(text) for cue in _CUES)


@dataclass
class Point:
    """One point of a global answer: a cited item and the communities it stands for."""

    span: Span
    communities: list[Community]
    relevance: float
    vector: np.ndarray = field(repr=False)

    @property
    def support(self) -> int:
        """Passages (chunks) the point's communities span, summed over its communities."""
        return sum(c.passages for c in self.communities)


@dataclass
class GlobalDraft:
    """The points of a global answer, best supported first, and the communities consulted."""

    points: list[Point]
    consulted: list[Community]


class GlobalAnswerer:
    """Answers corpus-wide questions from stored communities (no model)."""

    def __init__(
        self,
        *,
        graph: GraphStore,
        embedder: Embedder,
        max_communities: int = MAX_COMMUNITIES,
        max_points: int = MAX_POINTS,
    ) -> None:
        self._graph = graph
        self._embedder = embedder
        self.max_communities = max_communities
        self.max_points = max_points

    async def draft(
        self, question: str, communities: Sequence[Community], access: Access
    ) -> GlobalDraft:
        """Select relevant communities, map each to cited points, reduce the points."""
        vectors = await self._embedder.embed([question])
        query = vectors[0]
        chosen = select(query, communities, self.max_communities)
        spans = [(c, s) for c in chosen for s in c.sentences]
        if not spans:
            return GlobalDraft(points=[], consulted=chosen)
        embedded = await self._embedder.embed([s.text for _, s in spans])
        per_community: dict[str, list[Point]] = {}
        for (c, s), v in zip(spans, embedded, strict=True):
            point = Point(span=s, communities=[c], relevance=float(v @ query), vector=v)
            per_community.setdefault(c.id, []).append(point)
        mapped = [max(ps, key=lambda p: p.relevance) for ps in per_community.values()]
        return GlobalDraft(points=reduce_points(mapped)[: self.max_points], consulted=chosen)

    async def claims(self, draft: GlobalDraft, access: Access) -> list[Claim]:
        """Each point as a claim quoting its span, with its communities and support."""
        ids = list({p.span.document_id for p in draft.points})
        docs: dict[DocumentId, Document] = {
            d.id: d for d in await self._graph.documents(access, ids=ids, limit=len(ids) or 1)
        }
        out = []
        for p in draft.points:
            doc = docs.get(p.span.document_id)
            if doc is None:
                continue
            s = p.span
            out.append(
                Claim(
                    text=s.text,
                    spans=(SpanRef.of(doc, s.chunk_id, s.start, s.end, s.text),),
                    documents=(DocumentRef.of(doc),),
                    communities=tuple(c.id for c in p.communities),
                    support=p.support,
                )
            )
        return out


def select(query: np.ndarray, communities: Sequence[Community], limit: int) -> list[Community]:
    """The communities most relevant to the question, weighted by the documents they span;
    a community is skipped when an ancestor (or descendant) of it is already chosen."""
    scored = []
    for c in communities:
        relevance = float(np.asarray(c.vector, dtype=np.float32) @ query) if c.vector else 0.0
        scored.append((max(relevance, 0.0) + 0.1) * math.log1p(c.passages + len(c.entity_ids)))
    order = sorted(range(len(communities)), key=lambda i: (-scored[i], communities[i].id))
    parent: dict[str, str | None] = {c.id: c.parent for c in communities}
    chosen: list[Community] = []
    taken: set[str] = set()
    for i in order:
        c = communities[i]
        if not c.sentences:
            continue
        line = _lineage(c.id, parent)
        if taken & line or any(c.id in _lineage(t.id, parent) for t in chosen):
            continue
        chosen.append(c)
        taken.add(c.id)
        if len(chosen) >= limit:
            break
    return chosen


def reduce_points(points: Sequence[Point]) -> list[Point]:
    """Merge near-duplicate points (pooling their communities), most supported first."""
    merged: list[Point] = []
    for p in sorted(points, key=lambda p: -p.relevance):
        same = next((m for m in merged if float(m.vector @ p.vector) >= SAME_POINT), None)
        if same is None:
            merged.append(
                Point(
                    span=p.span,
                    communities=list(p.communities),
                    relevance=p.relevance,
                    vector=p.vector,
                )
            )
        else:
            same.communities.extend(c for c in p.communities if c not in same.communities)
    return sorted(
        merged, key=lambda p: (-p.support, -p.relevance, p.span.document_id, p.span.start)
    )


def _lineage(cid: str, parent: dict[str, str | None]) -> set[str]:
    seen = {cid}
    up = parent.get(cid)
    while up is not None and up not in seen:
        seen.add(up)
        up = parent.get(up)
    return seen
