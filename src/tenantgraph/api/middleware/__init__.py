"""Pure ASGI middlewares that run after authentication, each given the app's `AppState`
when built (its `rate_limiter` and `idempotency` are opened by the lifespan).

They read the caller from `scope["state"]["identity"]` (api/identity.py), set by the auth
middleware installed *outside* (before) them; requests without one pass through untouched.

Order, outermost first: auth → `RateLimitMiddleware` → `IdempotencyMiddleware` → routes.
"""

from tenantgraph.api.middleware.body_limit import BodyLimitMiddleware
from tenantgraph.api.middleware.idempotency import IdempotencyMiddleware
from tenantgraph.api.middleware.json_body import JsonBodyMiddleware
from tenantgraph.api.middleware.ratelimit import RUN_ROUTE, RateLimitMiddleware, run_budget_spent

__all__ = [
    "RUN_ROUTE",
    "BodyLimitMiddleware",
    "IdempotencyMiddleware",
    "JsonBodyMiddleware",
    "RateLimitMiddleware",
    "run_budget_spent",
]
