"""Pure ASGI middlewares that run after authentication.

Contract with the app: per request, `scope["state"]` (Starlette's lifespan state, copied
into every request) holds

- `principal`: the `tenantgraph.scope.Principal`, set by the auth middleware, which must
  be installed *outside* (before) these; requests without one pass through untouched;
- `api_key_id`: the API key's id when the caller used one (optional, for its bucket);
- `rate_limiter` / `idempotency_store`: the process's `RateLimiter` and
  `IdempotencyStore`, yielded by the app's lifespan.

Order, outermost first: auth → `RateLimitMiddleware` → `IdempotencyMiddleware` → routes.
"""

from tenantgraph.api.middleware.idempotency import IdempotencyMiddleware
from tenantgraph.api.middleware.ratelimit import (
    RUN_ROUTE,
    RateLimitMiddleware,
    run_budget_spent,
)
from tenantgraph.api.middleware.state import (
    API_KEY_ID,
    IDEMPOTENCY_STORE,
    PRINCIPAL,
    RATE_LIMITER,
    request_principal,
)

__all__ = [
    "API_KEY_ID",
    "IDEMPOTENCY_STORE",
    "PRINCIPAL",
    "RATE_LIMITER",
    "RUN_ROUTE",
    "IdempotencyMiddleware",
    "RateLimitMiddleware",
    "request_principal",
    "run_budget_spent",
]
