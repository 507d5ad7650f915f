"""Spend one request token per authenticated request; answer 429 when a bucket is empty."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantgraph.api.middleware.state import API_KEY_ID, RATE_LIMITER, request_principal
from tenantgraph.ephemeral.ratelimit import RateLimiter

__all__ = ["RateLimitMiddleware"]


class RateLimitMiddleware:
    """Checks the org, user and API-key request buckets before the route runs.

    Admitted responses carry the `RateLimit-*` headers of the tightest bucket; denials are
    `429 {"detail": …}` with the same headers and `Retry-After`. Requests without a
    principal (health checks, failed auth) are not counted.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = request_principal(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter = scope["state"][RATE_LIMITER]
        decision = await limiter.check_request(principal, api_key_id=scope["state"].get(API_KEY_ID))
        if not decision.allowed:
            response = JSONResponse(
                {"detail": f"Rate limit exceeded ({decision.bucket}); retry later."},
                status_code=429,
                headers=dict(decision.headers()),
            )
            await response(scope, receive, send)
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in decision.headers()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
