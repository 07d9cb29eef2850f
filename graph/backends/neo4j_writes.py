"""Write transactions of the Neo4j graph store: batched ``UNWIND $rows`` statements.

A write builds its rows here from the document graphs and runs them in the caller's managed
transaction, in slices of :data:`BATCH_ROWS`. A write that finds fewer nodes than it wrote
raises :class:`ConflictError`, which the store turns into a retry or a
:class:`~graph.errors.StoreError`.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, TypeVar

from neo4j import AsyncManagedTransaction

from graph.algorithms import restated_names
from graph.backends import neo4j_communities as communities
from graph.backends import neo4j_cypher as cypher
from graph.ids import DocumentId, EntityId, normalize_name, title_key
from graph.models import DeleteReport, DocumentGraph, Entity

__all__ = ["BATCH_ROWS", "ConflictError", "delete_tx", "insert_tx", "replace_tx"]

R = TypeVar("R")

#: Rows per ``UNWIND`` statement: large enough to amortise round trips, small enough to
#: keep each statement's memory on the server modest.
BATCH_ROWS = 2000


def _slices(rows: Sequence[R]) -> list[Sequence[R]]:
    return [rows[i : i + BATCH_ROWS] for i in range(0, len(rows), BATCH_ROWS)]


class ConflictError(Exception):
    """A write found fewer nodes than it wrote: bad input, or another writer's conflict."""


async def _count(tx: AsyncManagedTransaction, query: str, rows: Sequence[Any]) -> int:
    total = 0
    for part in _slices(rows):
        record = await (await tx.run(query, rows=list(part))).single()
        total += int(record["n"]) if record is not None else 0
    return total


async def insert_tx(tx: AsyncManagedTransaction, graphs: list[DocumentGraph]) -> None:
    """Write new documents with their chunks, entities, mentions and facts."""
    await _count(tx, cypher.create_documents(), _document_rows(graphs))
    topics = [
        {"id": g.document.id, "keys": sorted({title_key(n) for n in g.document.about})}
        for g in graphs
        if g.document.about
    ]
    await _count(tx, cypher.link_topics(), topics)
    await _count(tx, cypher.merge_entities(), _entity_rows(graphs))
    await _count(tx, cypher.create_chunks(), _chunk_rows(graphs))
    await _count(tx, cypher.link_chunks(), _chunk_links(graphs))
    mentions = _mention_rows(graphs)
    written = await _count(tx, cypher.create_mentions(), mentions)
    if written != len(mentions):
        raise ConflictError(
            f"{len(mentions) - written} mentions refer to chunks or entities that are not "
            "part of their document graph; nothing was written"
        )
    for rel_type, rows in sorted(_fact_rows(graphs).items()):
        written = await _count(tx, cypher.create_facts(rel_type), rows)
        if written != len(rows):
            raise ConflictError(
                f"{len(rows) - written} facts refer to entities that are not stored; "
                "nothing was written"
            )


def _document_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    rows = []
    for g in graphs:
        d = g.document
        touched = {e.id for e in g.entities} | {
            e for r in g.relations for e in (r.subject_id, r.object_id)
        }
        rows.append(
            {
                "id": d.id,
                "source": d.source,
                "title": d.title,
                "title_key": title_key(d.title),
                "version": d.version,
                "tenant": d.tenant,
                "groups": list(d.groups),
                "content_hash": d.content_hash,
                "ingested_at": d.ingested_at.isoformat(),
                "text": d.text,
                "sections": json.dumps([x.model_dump() for x in d.sections]),
                "about": list(d.about),
                # Where deletes start looking for the document's facts.
                "entity_ids": sorted(touched),
            }
        )
    return rows


def _entity_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    merged: dict[EntityId, Entity] = {}
    for g in graphs:
        for ent in g.entities:
            base = merged.get(ent.id)
            if base is not None:
                aliases = tuple(dict.fromkeys([*base.aliases, *ent.aliases]))
                ent = base.model_copy(update={"aliases": aliases})  # noqa: PLW2901
            merged[ent.id] = ent
    return [
        {
            "id": e.id,
            "name": e.name,
            "type": e.type,
            "aliases": list(e.aliases),
            "keys": list(dict.fromkeys(normalize_name(n) for n in (e.name, *e.aliases))),
        }
        for e in merged.values()
    ]


def _chunk_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "document_id": c.document_id,
            "index": c.index,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "tags": json.dumps([t.model_dump() for t in c.tags]),
            # Only set on chunks with personal data, which pii_values looks for.
            "pii_types": sorted({t.type for t in c.tagged("pii")}) or None,
        }
        for g in graphs
        for c in g.chunks
    ]


def _chunk_links(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    links = []
    for g in graphs:
        ordered = sorted(g.chunks, key=lambda c: c.index)
        links += [{"a": a.id, "b": b.id} for a, b in itertools.pairwise(ordered)]
    return links


def _mention_rows(graphs: list[DocumentGraph]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str, int, int]] = set()
    rows = []
    for g in graphs:
        for m in g.mentions:
            key = (m.entity_id, m.span.chunk_id, m.span.start, m.span.end)
            if key not in seen:
                seen.add(key)
                rows.append(
                    {
                        "entity_id": m.entity_id,
                        "chunk_id": m.span.chunk_id,
                        "start": m.span.start,
                        "end": m.span.end,
                    }
                )
    return rows


def _fact_rows(graphs: list[DocumentGraph]) -> dict[str, list[dict[str, Any]]]:
    """Fact relationship rows by relationship type: one per fact and stating document."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in graphs:
        for rel in g.relations:
            spans = list(dict.fromkeys((s.chunk_id, s.start, s.end, s.text) for s in rel.evidence))
            by_type[cypher.KIND_TYPES[rel.kind]].append(
                {
                    "subject_id": rel.subject_id,
                    "object_id": rel.object_id,
                    "props": {
                        "id": rel.id,
                        "predicate": rel.predicate,
                        "kind": rel.kind,
                        "confidence": rel.confidence,
                        "document_id": g.document.id,
                        "tenant": g.document.tenant,
                        "groups": list(g.document.groups),
                        "chunk_ids": [s[0] for s in spans],
                        "starts": [s[1] for s in spans],
                        "ends": [s[2] for s in spans],
                        "texts": [s[3] for s in spans],
                    },
                }
            )
    return by_type


async def delete_tx(tx: AsyncManagedTransaction, ids: list[DocumentId]) -> DeleteReport:
    """Delete stored documents and everything only they support, in bounded batches (a
    document may carry tens of thousands of mentions); the entities they mentioned that
    survive keep only the names and aliases their remaining mentions state."""
    report, touched = await _delete(tx, ids)
    await restate_tx(tx, touched)
    return report


async def replace_tx(
    tx: AsyncManagedTransaction, old: list[DocumentId], new: list[DocumentGraph]
) -> None:
    """Delete ``old`` and write ``new``; names are restated once both are done."""
    touched: list[str] = []
    if old:
        _, touched = await _delete(tx, old)
    if new:
        await insert_tx(tx, new)
    await restate_tx(tx, touched)


async def restate_tx(tx: AsyncManagedTransaction, entity_ids: Sequence[str]) -> None:
    """Restate entities' names and aliases from their remaining mentions (see
    :func:`graph.algorithms.restated_names`); entities with no mentions are skipped."""
    rows: list[dict[str, Any]] = []
    for part in _slices(list(entity_ids)):
        for r in await (await tx.run(cypher.entity_surfaces(), rows=list(part))).data():
            stored = Entity.model_construct(
                id=r["id"], name=r["name"], type=r["type"], aliases=tuple(r["aliases"] or ())
            )
            counts: dict[str, int] = {}
            for s in r["surfaces"]:
                counts[s["text"]] = counts.get(s["text"], 0) + int(s["n"])
            ent = restated_names(stored, counts)
            if ent is not stored:
                keys = list(dict.fromkeys(normalize_name(n) for n in (ent.name, *ent.aliases)))
                rows.append(
                    {"id": ent.id, "name": ent.name, "aliases": list(ent.aliases), "keys": keys}
                )
    if not rows:
        return
    await _count(tx, cypher.restate_entities(), rows)
    dropped = {
        r["key"]
        for part in _slices(rows)
        for r in await (await tx.run(cypher.unlink_names(), rows=list(part))).data()
    }
    await _count(tx, cypher.link_names(), rows)
    await _count(tx, cypher.delete_orphan_names(), sorted(dropped))


async def _delete(
    tx: AsyncManagedTransaction, ids: list[DocumentId]
) -> tuple[DeleteReport, list[str]]:
    """Delete the documents; the report and the entities they mentioned."""
    await communities.drop_tx(tx, ids)
    pairs = await (await tx.run(cypher.document_facts(), ids=ids)).data()
    touched = {p["rid"] for p in pairs}
    await _count(tx, cypher.delete_facts(), pairs)
    surviving = {
        r["rid"]
        for part in _slices(pairs)
        for r in await (await tx.run(cypher.surviving_facts(), rows=list(part))).data()
    }
    await _count(tx, cypher.delete_fact_keys(), sorted(touched - surviving))
    counted = await (await tx.run(cypher.count_document_chunks(), ids=ids)).single()
    chunks = int(counted["chunks"]) if counted else 0
    mentions = int(counted["mentions"]) if counted else 0
    candidates: list[str] = list(counted["entities"]) if counted else []
    while True:
        batch = await (await tx.run(cypher.delete_mentions(), ids=ids, batch=BATCH_ROWS)).single()
        if batch is None or batch["n"] == 0:
            break
    topics = [r["key"] for r in await (await tx.run(cypher.document_topics(), ids=ids)).data()]
    await (await tx.run(cypher.delete_documents(), ids=ids)).consume()
    await _count(tx, cypher.delete_orphan_topics(), sorted(topics))
    orphans = 0
    keys: set[str] = set()
    for part in _slices(candidates):
        rows = await (await tx.run(cypher.delete_orphan_entities(), rows=list(part))).data()
        orphans += len(rows)
        keys.update(k for r in rows for k in r["keys"])
    await _count(tx, cypher.delete_orphan_names(), sorted(keys))
    report = DeleteReport(
        documents=len(ids),
        chunks=chunks,
        mentions=mentions,
        relations=len(touched - surviving),
        entities=orphans,
    )
    return report, candidates
