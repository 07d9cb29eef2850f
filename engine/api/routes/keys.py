"""API keys: create, list and revoke (admin keys only); secrets are shown once."""

from __future__ import annotations

from fastapi import APIRouter, Request

from engine.api.deps import Caller, Svc, require_admin
from engine.api.schemas import KeyIn, KeyList, KeyOut, NewKeyOut, key_out

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["keys"])


@router.post("/keys", status_code=201)
async def create_key(body: KeyIn, request: Request, service: Svc, key: Caller) -> NewKeyOut:
    """Create an API key (admin keys only); the secret is returned once."""
    require_admin(key)
    made = await service.keys.create(
        tenant=body.tenant,
        groups=tuple(body.groups),
        admin=body.admin,
        name=body.name,
        permissions=body.permissions,
    )
    await service.audit.append(
        "key.create",
        request_id=request.state.request_id,
        key_id=key.id,
        created=made.key.id,
        tenant=made.key.tenant,
        groups=list(made.key.groups),
        admin=made.key.admin,
        permissions=list(made.key.permissions),
    )
    return NewKeyOut(key=key_out(made.key), secret=made.secret)


@router.get("/keys")
async def list_keys(service: Svc, key: Caller) -> KeyList:
    """Every key (admin keys only); secrets are never returned."""
    require_admin(key)
    return KeyList(keys=[key_out(k) for k in await service.keys.all()])


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, service: Svc, key: Caller) -> KeyOut:
    """Revoke a key (admin keys only)."""
    require_admin(key)
    async with service.audited(key, "key.revoke", revoked=key_id):
        revoked = await service.keys.revoke(key_id)
    return key_out(revoked)
