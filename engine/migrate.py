"""Copy a knowledge graph between stores (embedded ⇄ Neo4j) and prove nothing was lost.

Documents are exported from the source in pages and written to the target with the same
``upsert`` ingestion uses, so a migration that stops half-way can simply be run again:
documents already in the target are skipped. Afterwards the two stores must agree on every
count, on a random sample of facts, compared field by field with their evidence, and on
the personal data their chunk tags cover.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from extractors.privacy import PII_TYPES
from graph import Access, DocumentId, GraphStore, RelationId, StoreError, StoreStats

__all__ = ["MigrationReport", "migrate"]

Progress = Callable[[int, int], None]


class MigrationReport(BaseModel):
    """What a migration copied and how it was checked."""

    model_config = ConfigDict(frozen=True)

    documents: int
    copied: int
    already_present: int
    source: StoreStats
    target: StoreStats
    facts_checked: int
    seconds: float


async def _all_document_ids(store: GraphStore, page: int = 500) -> list[DocumentId]:
    ids: list[DocumentId] = []
    while batch := await store.documents(Access.admin(), limit=page, offset=len(ids)):
        ids.extend(d.id for d in batch)
    return ids


async def _same_tags(source: GraphStore, target: GraphStore) -> None:
    every_type, admin = frozenset(PII_TYPES), Access.admin()
    if await source.pii_values(admin, every_type) != await target.pii_values(admin, every_type):
        raise StoreError(
            "after copying, the stores differ in the personal data their chunk tags cover; "
            "nothing was removed from the source"
        )


async def migrate(
    source: GraphStore,
    target: GraphStore,
    *,
    batch_documents: int = 50,
    sample_facts: int = 500,
    seed: int = 0,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy every document graph from ``source`` to ``target``, then verify the copy.

    Raises :class:`StoreError` when the target holds documents the source does not (the
    counts could not be compared) or when the verification finds a difference.
    """
    started = time.perf_counter()
    wanted = await _all_document_ids(source)
    present = set(await _all_document_ids(target))
    foreign = present - set(wanted)
    if foreign:
        raise StoreError(
            f"the target store holds {len(foreign)} document(s) that are not in the source; "
            "migrate into an empty store (or one a previous run of this migration filled)"
        )
    todo = [d for d in wanted if d not in present]
    rng = random.Random(seed)  # noqa: S311 - sampling, not security
    sample: list[RelationId] = []
    seen = 0
    done = len(wanted) - len(todo)
    if progress:
        progress(done, len(wanted))
    for start in range(0, len(todo), batch_documents):
        graphs = await source.export(todo[start : start + batch_documents])
        await target.upsert(graphs)
        # Reservoir sample of fact ids over everything copied.
        for rel in (r for g in graphs for r in g.relations):
            seen += 1
            if len(sample) < sample_facts:
                sample.append(rel.id)
            elif (j := rng.randrange(seen)) < sample_facts:
                sample[j] = rel.id
        done += len(graphs)
        if progress:
            progress(done, len(wanted))
    admin = Access.admin()
    source_stats, target_stats = await source.stats(admin), await target.stats(admin)
    if source_stats != target_stats:
        raise StoreError(
            f"after copying, the stores differ: source {source_stats.model_dump()} vs "
            f"target {target_stats.model_dump()}; nothing was removed from the source"
        )
    await _same_tags(source, target)
    sample = list(dict.fromkeys(sample))
    if await source.facts(sample, admin) != await target.facts(sample, admin):
        raise StoreError(
            "after copying, sampled facts differ between the stores (evidence or endpoints); "
            "nothing was removed from the source"
        )
    return MigrationReport(
        documents=len(wanted),
        copied=len(todo),
        already_present=len(wanted) - len(todo),
        source=source_stats,
        target=target_stats,
        facts_checked=len(sample),
        seconds=time.perf_counter() - started,
    )
