"""The graph: entity search, entity detail, neighbourhoods and paths, through the browse
layer (so a caller sees only what its documents state), masked for keys without ``pii``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from engine.api.deps import Caller, Redact, Svc
from engine.api.schemas import (
    EntityDetail,
    EntityList,
    PathList,
    Subgraph,
    entity_detail_out,
    entity_out,
    path_out,
    subgraph_out,
)
from engine.redaction import visible_entities

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["graph"])


@router.get("/entities")
async def search_entities(
    service: Svc,
    key: Caller,
    redact: Redact,
    q: Annotated[str, Query(max_length=200, description="name or alias contains")] = "",
    type: Annotated[list[str] | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> EntityList:
    """Entities the key can see whose name or alias contains ``q`` (as the key sees them:
    without the ``pii`` permission, a name that is personal data is masked and not searched)."""
    query = redact.input(q)
    found = await service.bounded(
        service.tl.browse(key.access).entities(query, types=type or (), limit=limit)
    )
    found = visible_entities(found, query, redact)
    await service.record(key, "entities.search", entities=[e.id for e in found])
    return EntityList(entities=[entity_out(e) for e in found])


@router.get("/entities/{entity_id}")
async def get_entity(
    entity_id: str,
    service: Svc,
    key: Caller,
    redact: Redact,
    mentions: Annotated[int, Query(ge=0, le=500)] = 20,
    facts: Annotated[int, Query(ge=0, le=500)] = 20,
) -> EntityDetail:
    """One entity with its mentions and facts (from readable documents only)."""
    detail = await service.bounded(
        service.tl.browse(key.access).detail(
            redact.input(entity_id), mentions=mentions, facts=facts
        )
    )
    cited = {m.document_id for m in detail.mentions}
    cited |= {s.document_id for f in detail.facts for s in f.evidence}
    await service.record(
        key,
        "entity.read",
        entities=[detail.entity.id],
        documents=sorted(cited),
        mentions=len(detail.mentions),
        facts=len(detail.facts),
    )
    return await redact.scrubbed(entity_detail_out(detail))


@router.get("/entities/{entity_id}/neighborhood")
async def neighborhood(
    entity_id: str,
    service: Svc,
    key: Caller,
    redact: Redact,
    depth: Annotated[int, Query(ge=1, le=3)] = 1,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    predicate: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> Subgraph:
    """The bounded subgraph around an entity, as nodes and edges."""
    hood = await service.bounded(
        service.tl.browse(key.access).neighborhood(
            redact.input(entity_id), depth=depth, limit=limit, predicates=predicate or ()
        )
    )
    await service.record(
        key,
        "entity.neighborhood",
        entities=[e.id for e in hood.centres],
        documents=sorted({s.document_id for f in hood.facts for s in f.evidence}),
        nodes=len(hood.entities),
        facts=len(hood.facts),
    )
    return await redact.scrubbed(subgraph_out(hood))


@router.get("/paths")
async def paths(
    service: Svc,
    key: Caller,
    redact: Redact,
    source: Annotated[str, Query(min_length=1, max_length=100)],
    target: Annotated[str, Query(min_length=1, max_length=100)],
    max_hops: Annotated[int, Query(ge=1, le=6)] = 4,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
) -> PathList:
    """Shortest chains of facts between two entities."""
    found = await service.bounded(
        service.tl.browse(key.access).paths(
            redact.input(source), redact.input(target), max_hops=max_hops, limit=limit
        )
    )
    await service.record(
        key,
        "paths",
        entities=sorted({e.id for p in found for e in p.entities}),
        documents=sorted({s.document_id for p in found for f in p.facts for s in f.evidence}),
        paths=len(found),
    )
    return await redact.scrubbed(PathList(paths=[path_out(p) for p in found]))
