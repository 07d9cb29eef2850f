"""Usage and quotas: the chargeback report, each caller's quota state, and setting quotas
(admin keys only)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import Caller, Svc, require_admin
from engine.metering import caller_for
from engine.settings import QuotaLimits
from engine.usage import GROUPS, Group, QuotaState, UsageLedger, UsageRow
from graph import NotFoundError, PermissionDeniedError, StoreUnavailableError

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["usage"])


class UsageReport(BaseModel):
    """Tokens, model calls and questions, summed per group."""

    model_config = ConfigDict(extra="forbid")

    since: date | None
    until: date | None
    by: list[Group]
    rows: list[UsageRow]
    total_tokens: int = Field(description="the rows' tokens summed")
    asks: int
    cache_hits: int


class QuotaList(BaseModel):
    """The caller's key and tenant quotas (key first) and what each has spent."""

    quotas: list[QuotaState]


@router.get("/usage")
async def usage(
    service: Svc,
    key: Caller,
    by: Annotated[
        list[Group] | None, Query(description="group by (repeatable); default: all but purpose")
    ] = None,
    since: Annotated[date | None, Query(description="first UTC day (YYYY-MM-DD)")] = None,
    until: Annotated[date | None, Query(description="last UTC day, included")] = None,
    tenant: Annotated[str | None, Query(description="one tenant (admin keys)")] = None,
) -> UsageReport:
    """The chargeback report: a tenant's keys see their tenant, admin keys every tenant.

    Rows hold counts only: tokens the model server reported, model calls, their time,
    questions, cache hits and the tokens those saved.
    """
    if not key.admin:
        if tenant is not None and tenant != key.tenant:
            raise PermissionDeniedError("a key sees the usage of its own tenant only")
        tenant = key.tenant
    groups = list(by or [g for g in GROUPS if g != "purpose"])
    rows = await _ledger(service.tl.usage).report(
        by=groups, since=since, until=until, tenant=tenant
    )
    return UsageReport(
        since=since,
        until=until,
        by=groups,
        rows=rows,
        total_tokens=sum(r.total_tokens for r in rows),
        asks=sum(r.asks for r in rows),
        cache_hits=sum(r.cache_hits for r in rows),
    )


@router.get("/quotas")
async def quotas(service: Svc, key: Caller) -> QuotaList:
    """The calling key's and its tenant's quotas, spent so far and when they reset."""
    ledger = _ledger(service.tl.usage)
    return QuotaList(quotas=await ledger.states(caller_for(key.access)))


@router.put("/quotas/{scope}/{name}")
async def set_quota(
    scope: Literal["tenant", "key"], name: str, body: QuotaLimits, service: Svc, key: Caller
) -> QuotaLimits:
    """Set a tenant's or key's limits (admin keys only); an empty field keeps the setting's
    default (``THREADLINE_QUOTA__*``)."""
    require_admin(key)
    ledger = _ledger(service.tl.usage)
    if scope == "key" and name not in {k.id for k in await service.keys.all()}:
        raise NotFoundError(f"no API key {name}; see GET /v1/keys")
    async with service.audited(key, "quota.set", scope=scope, name=name, **body.model_dump()):
        await ledger.set_quota(scope, name, body)
    return body


def _ledger(ledger: UsageLedger | None) -> UsageLedger:
    if ledger is None:
        raise StoreUnavailableError("the usage ledger is closed; the service is shutting down")
    return ledger
