"""`GET /me`: who the credential is — its org, user, role and scopes — for clients such as
the console that must show only what the caller may do. It describes the caller and
nothing else, so every tenant credential may call it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantgraph.api.auth import tenant_principal
from tenantgraph.api.identity import request_identity

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    principal = tenant_principal(request)  # the platform admin token is no tenant: 403
    key_id = request_identity(request.scope).api_key_id
    scopes = principal.scopes
    return {
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "role": principal.role.value,
        "scopes": None if scopes is None else sorted(scopes),
        "assistants": None if principal.assistants is None else sorted(principal.assistants),
        "api_key_id": None if key_id is None else str(key_id),
    }
