"""The `scope["state"]` entries the middlewares read (see the package docstring)."""

from __future__ import annotations

from starlette.types import Scope

from tenantgraph.scope import Principal

PRINCIPAL = "principal"
API_KEY_ID = "api_key_id"
RATE_LIMITER = "rate_limiter"
IDEMPOTENCY_STORE = "idempotency_store"


def request_principal(scope: Scope) -> Principal | None:
    """The authenticated caller of an HTTP request, if the auth middleware found one."""
    if scope["type"] != "http":
        return None
    principal = (scope.get("state") or {}).get(PRINCIPAL)
    if principal is not None and not isinstance(principal, Principal):
        raise TypeError(f'scope["state"]["{PRINCIPAL}"] must be a Principal')
    return principal
