"""Who a request is from, stored once per request by the auth middleware.

`scope["state"]["identity"]` holds the `Identity`; the rate-limit and idempotency
middlewares and the route dependencies read it from there and nowhere else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from tenantgraph.scope import Principal

__all__ = ["IDENTITY", "Identity", "request_identity", "request_principal"]

IDENTITY = "identity"


@dataclass(frozen=True, slots=True)
class Identity:
    """A tenant principal (and the API key it used, if any), or the platform administrator.
    `auth_user`: the user a custom auth handler returned (api/custom_auth.py)."""

    principal: Principal | None = None
    platform_admin: bool = False
    api_key_id: uuid.UUID | None = None
    auth_user: Any = field(default=None, compare=False, hash=False)


def request_identity(scope: Scope) -> Identity | None:
    """The authenticated caller of an HTTP request, if the auth middleware found one."""
    if scope["type"] != "http":
        return None
    identity = (scope.get("state") or {}).get(IDENTITY)
    if identity is not None and not isinstance(identity, Identity):
        raise TypeError(f'scope["state"]["{IDENTITY}"] must be an Identity')
    return identity


def request_principal(scope: Scope) -> Principal | None:
    """The request's tenant principal; None for public routes and the platform admin."""
    identity = request_identity(scope)
    return identity.principal if identity is not None else None
