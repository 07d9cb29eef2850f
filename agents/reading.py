"""Reading pages: an entity's own page, the entities its sentences name, sentence scores.

Shared by the retrieval's reading hop and the plan executor's traversals. A page is
the first chunk of a document titled with the entity's name ("Brand (play)" is Brand's
page). Sentence vectors come from the index (opening sentences are embedded at ingest);
only sentences without one are embedded at query time.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from extractors import Embedder, split_sentences
from graph import (
    Access,
    Chunk,
    ChunkId,
    Entity,
    EntityId,
    GraphStore,
    VectorIndex,
    normalize_name,
)

__all__ = ["Named", "PageReader", "capitalised_runs", "top_kinds"]

_WORDS = re.compile(r"[\w'\-&.:]+|\S")


@dataclass(frozen=True, slots=True)
class Named:
    """An entity named in a sentence of a page (offsets into the chunk's text)."""

    entity_id: EntityId
    chunk: Chunk
    start: int  # sentence
    end: int
    at: int  # where the name starts
    position: int  # the sentence's index on the page


class PageReader:
    """Finds entities' pages and reads the names in their sentences."""

    def __init__(self, *, graph: GraphStore, vectors: VectorIndex, embedder: Embedder) -> None:
        self._graph = graph
        self._vectors = vectors
        self._embedder = embedder

    async def homes(
        self,
        entities: Sequence[tuple[EntityId, str]],
        access: Access,
        *,
        query: np.ndarray | None = None,
    ) -> dict[EntityId, Chunk]:
        """Each entity's own page: the first chunk of a document titled with the name
        given (which decides between "Dark River (2017 film)" and "Dark River (1990
        film)"), else of a document about it (whose opening sentence has it as its
        subject); an entity listed twice gets the page of its last name that has one.
        When several pages fit equally well ("George Rankin (soldier)", "George
        Rankin (politician)", or two memos both about Globex), the one closest to
        ``query`` wins."""
        if not entities:
            return {}
        entities = list(entities)
        found = await self._graph.pages([name for _, name in entities], access)
        missing = list(dict.fromkeys(e for e, name in entities if name not in found))
        if missing:
            # A name the text wrote longer than the graph names it now ("Globex
            # Corporation" for "Globex"): the entity's aliases that extend a name given.
            given = {e: [_words(n) for f, n in entities if f == e] for e in missing}
            longer = [
                (ent.id, alias)
                for ent in await self._graph.entities(missing, access)
                for alias in ent.aliases
                if any(_extends(_words(alias), w) for w in given[ent.id])
            ]
            if longer:
                found.update(await self._graph.pages([a for _, a in longer], access))
                entities += longer
        # The full titles and subjects of every page that competes with another, read once.
        shared = [c.document_id for pages in found.values() if len(pages) > 1 for c in pages]
        docs = {
            d.id: d
            for d in (
                await self._graph.documents(access, ids=shared, limit=len(shared)) if shared else []
            )
        }
        homes: dict[EntityId, Chunk] = {}
        for eid, name in entities:
            pages = found.get(name)
            if not pages or (eid in homes and eid in missing):
                continue
            key = normalize_name(name)
            read = [(c, docs[c.document_id]) for c in pages if c.document_id in docs]
            titled = [c for c, doc in read if normalize_name(doc.title) == key]
            about = [c for c, doc in read if any(normalize_name(n) == key for n in doc.about)]
            exact = titled if len(titled) == 1 else (titled or about)
            if len(pages) == 1 or len(exact) == 1:
                homes[eid] = (exact or pages)[0]
                continue
            if query is not None:
                pages = await self._closest(exact or pages, query, access)
            homes[eid] = pages[0]
        return homes

    async def _closest(self, pages: list[Chunk], query: np.ndarray, access: Access) -> list[Chunk]:
        hits = await self._vectors.search(
            query.tolist(), access, limit=len(pages) * 2,
            document_ids=list({c.document_id for c in pages}),
        )  # fmt: skip
        rank = {h.chunk_id: i for i, h in enumerate(hits)}
        return sorted(pages, key=lambda c: rank.get(c.id, len(rank)))

    async def named(
        self,
        chunks: Sequence[Chunk],
        access: Access,
        *,
        sentences: int,
        exclude: set[EntityId],
    ) -> list[Named]:
        """Entities named in the first ``sentences`` sentences of each chunk.

        Names the extractor split ("Ermengarde" + "Tours") still match an entity as
        capitalised word runs of the sentence ("Ermengarde of Tours").
        """
        by_id = {c.id: c for c in chunks}
        opening = {cid: list(split_sentences(c.text))[:sentences] for cid, c in by_id.items()}
        found: list[Named] = []
        seen: set[tuple[EntityId, ChunkId, int]] = set()

        def add(entity: EntityId, chunk: Chunk, index: int, at: int) -> None:
            start, end = opening[chunk.id][index]
            if entity in exclude or (entity, chunk.id, start) in seen:
                return
            seen.add((entity, chunk.id, start))
            found.append(Named(entity, chunk, start, end, at, index))

        runs = _sentence_runs(by_id.values(), opening)
        # The two reads are independent: side by side.
        mentions, exact = await asyncio.gather(
            self._graph.chunk_mentions(list(by_id), access),
            self._graph.match_entities(list(runs), access) if runs else _no_matches(),
        )
        for m in mentions:
            chunk = by_id[m.span.chunk_id]
            at = m.span.start - chunk.start
            index = _index_of(opening[chunk.id], at)
            if index is not None:
                add(m.entity_id, chunk, index, at)
        for run, ents in exact.items():
            if ents:
                for chunk, index, at in runs[run]:
                    add(ents[0].id, chunk, index, at)
        return found

    async def similarity(
        self,
        spans: Sequence[tuple[Chunk, int, int]],
        query: np.ndarray,
        access: Access,
        *,
        embed_missing: bool = True,
    ) -> dict[tuple[ChunkId, int], float]:
        """Cosine similarity of sentences (chunk, start, end) to a query vector, keyed by
        (chunk id, start); stored sentence vectors are used where the index has them, the
        others are embedded (or, with ``embed_missing=False``, left out)."""
        if not spans:
            return {}
        stored = await self._vectors.sentences(
            list(dict.fromkeys(c.id for c, _, _ in spans)), access
        )
        vectors: dict[tuple[ChunkId, int], np.ndarray] = {}
        for cid, items in stored.items():
            for sv in items:
                vectors[(cid, sv.start)] = np.asarray(sv.vector, dtype=np.float32)
        missing = list(dict.fromkeys((c, s, e) for c, s, e in spans if (c.id, s) not in vectors))
        if missing and embed_missing:
            matrix = await self._embedder.embed([c.text[s:e] for c, s, e in missing])
            for (c, s, _), row in zip(missing, matrix, strict=True):
                vectors[(c.id, s)] = row
        return {
            (c.id, s): float(vectors[(c.id, s)] @ query)
            for c, s, _ in spans
            if (c.id, s) in vectors
        }


def _words(name: str) -> list[str]:
    return normalize_name(name).split()


def _extends(longer: list[str], name: list[str]) -> bool:
    """Whether ``longer`` holds every word of ``name``, in a run, and more."""
    n = len(name)
    return 0 < n < len(longer) and any(
        longer[i : i + n] == name for i in range(len(longer) - n + 1)
    )


def top_kinds(entities: Sequence[Entity], kinds: int = 2) -> list[Entity]:
    """The entities of the first ``kinds`` distinct names and types, in the order given.

    One name is one entity per scope (tenant and access list), so a caller who reads
    several scopes gets every node of a name it links, not only the best-supported one.
    """
    keep: set[tuple[str, str]] = set()
    out = []
    for ent in entities:
        kind = (normalize_name(ent.name), ent.type)
        if kind not in keep and len(keep) >= kinds:
            continue
        keep.add(kind)
        out.append(ent)
    return out


def capitalised_runs(text: str, longest: int = 8) -> list[str]:
    """Word runs that start and end with a capitalised word or a number, longest first.

    The text's own first word is skipped (it is capitalised by grammar, not by name).
    """
    return sorted({run for run, _ in _runs_with_offsets(text, longest)}, key=lambda g: (-len(g), g))


def _runs_with_offsets(text: str, longest: int = 8) -> Iterator[tuple[str, int]]:
    matches = list(_WORDS.finditer(text))
    words = [m.group() for m in matches]
    for i in range(1, len(words)):
        for j in range(i + 1, min(len(words), i + longest) + 1):
            run = words[i:j]
            first, last = run[0], run[-1]
            if not (first[:1].isupper() or first[:1].isdigit()):
                break
            if any(not w[:1].isalnum() for w in run):
                break
            if len(run) > 1 and (last[:1].isupper() or last[:1].isdigit()):
                yield " ".join(run), matches[i].start()


def _runs(sentence: str) -> Iterator[tuple[str, int]]:
    for run, offset in _runs_with_offsets(sentence):
        yield run.rstrip(".,;:"), offset


def _sentence_runs(
    chunks: Iterable[Chunk], opening: dict[ChunkId, list[tuple[int, int]]]
) -> dict[str, list[tuple[Chunk, int, int]]]:
    """Capitalised word runs of the given sentences: run → (chunk, sentence index, offset)."""
    runs: dict[str, list[tuple[Chunk, int, int]]] = defaultdict(list)
    for chunk in chunks:
        for index, (start, end) in enumerate(opening[chunk.id]):
            for run, offset in _runs(chunk.text[start:end]):
                runs[run].append((chunk, index, start + offset))
    return runs


async def _no_matches() -> dict[str, list[Entity]]:
    return {}


def _index_of(sentences: list[tuple[int, int]], at: int) -> int | None:
    for index, (start, end) in enumerate(sentences):
        if start <= at < end:
            return index
    return None
