"""Communities of the entity graph, through the browse layer: each built only from
documents the key may read, each summary line cited to exact spans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from engine.api.deps import Caller, Redact, Svc
from graph.views import CommunityView

__all__ = ["CommunityList", "router"]

router = APIRouter(prefix="/v1", tags=["graph"])


class CommunityList(BaseModel):
    """Communities the key can see, by level (0 is the coarsest), then most documents."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    communities: list[CommunityView]


@router.get("/communities")
async def list_communities(
    service: Svc,
    key: Caller,
    redact: Redact,
    level: Annotated[int | None, Query(ge=0, le=5, description="only this level")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> CommunityList:
    """Communities built from the documents the key can read, with members and a cited
    summary; communities whose documents changed are rebuilt first."""
    found = await service.bounded(
        service.tl.browse(key.access).communities(level=level, limit=limit)
    )
    await service.record(key, "communities.list", communities=[c.id for c in found])
    return await redact.scrubbed(CommunityList(communities=found))


@router.get("/communities/{community_id}")
async def get_community(
    community_id: str, service: Svc, key: Caller, redact: Redact
) -> CommunityView:
    """One community the key can see (404 when it is missing or built from documents the
    key cannot read)."""
    found = await service.bounded(service.tl.browse(key.access).community(community_id))
    cited = sorted({s.document_id for line in found.summary for s in line.spans})
    await service.record(key, "community.read", communities=[found.id], documents=cited)
    return await redact.scrubbed(found)
