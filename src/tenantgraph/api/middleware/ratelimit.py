"""Spend one request token per authenticated request; answer 429 when a bucket is empty."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantgraph.api.errors import error_response
from tenantgraph.api.identity import Identity, request_identity

if TYPE_CHECKING:
    from tenantgraph.api.state import AppState
    from tenantgraph.ephemeral.ratelimit import Decision

__all__ = ["RUN_ROUTE", "RateLimitMiddleware", "check_request", "run_budget_spent"]

# The routes that create exactly one run (api/runs.py: POST …/runs, …/runs/stream,
# …/runs/wait): their run token is spent with the request token, in one Valkey call.
# tests/test_api_ephemeral.py checks this against the app's routes.
RUN_ROUTE = re.compile(r"/(?:threads/[^/]+/)?runs(?:/stream|/wait)?")
_RUN_SPENT = "run_budget_spent"
_DECISION = "rate_limit_decision"


def run_budget_spent(scope: Scope) -> bool:
    """Whether this request's run token was spent with its request token."""
    return bool(scope["state"].get(_RUN_SPENT))


async def check_request(
    state: AppState, scope: Scope, identity: Identity, *, key_generation: bool = False
) -> Decision:
    """Spend the request's tokens (and its run's, on a run route) as `identity`, once per
    request: the decision is kept in the scope for `RateLimitMiddleware`. Authentication
    calls this first for API keys, to read the org's key generation in the same call."""
    assert identity.principal is not None
    key_id = str(identity.api_key_id) if identity.api_key_id is not None else None
    with_run = scope["method"] == "POST" and RUN_ROUTE.fullmatch(scope["path"]) is not None
    decision = await state.rate_limiter.check_request(
        identity.principal, api_key_id=key_id, with_run=with_run, key_generation=key_generation
    )
    scope.setdefault("state", {}).update({_RUN_SPENT: with_run, _DECISION: decision})
    return decision


class RateLimitMiddleware:
    """Checks the org, user and API-key request buckets before the route runs (API-key
    requests were checked already, by authentication: see `check_request`).

    Admitted responses carry the `RateLimit-*` headers of the tightest bucket; denials are
    `429 {"detail": …}` with the same headers and `Retry-After`. Requests without a
    principal (health checks, failed auth) are not counted.
    """

    def __init__(self, app: ASGIApp, *, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = request_identity(scope)
        if identity is None or identity.principal is None:
            await self.app(scope, receive, send)
            return
        decision = scope["state"].get(_DECISION) or await check_request(self.state, scope, identity)
        if not decision.allowed:
            await error_response(decision.denial())(scope, receive, send)
            return
        extra = [(name.lower().encode(), value.encode()) for name, value in decision.headers()]

        async def send_with_headers(message: Message) -> None:
            # A route that reported another budget (a denied run) keeps its own headers.
            headers = message.get("headers", ())
            if message["type"] == "http.response.start" and not any(
                name.lower() == b"ratelimit-limit" for name, _ in headers
            ):
                message = {**message, "headers": [*headers, *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
