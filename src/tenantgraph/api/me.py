"""`GET /me`: who the credential is — its org, user, role and scopes — for clients such as
the console that must show only what the caller may do. It describes the caller and
nothing else, so every tenant credential may call it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantgraph.api.identity import request_identity
from tenantgraph.errors import Forbidden

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/me")
async def me(request: Request) -> dict[str, Any]:
    identity = request_identity(request.scope)
    principal = identity.principal if identity is not None else None
    if identity is None or principal is None:
        raise Forbidden("this route needs an organisation credential")
    scopes = principal.scopes
    return {
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "role": principal.role.value,
        "scopes": None if scopes is None else sorted(scopes),
        "assistants": None if principal.assistants is None else sorted(principal.assistants),
        "api_key_id": None if identity.api_key_id is None else str(identity.api_key_id),
    }
