"""Errors to HTTP in one place: the family of `tenantgraph.errors` → `{"detail": …}` with the
status the LangGraph API uses, and a catch-all that answers every other exception inside the
app, so no exception reaches the server (which would close the client's connection)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantgraph.ephemeral.client import VALKEY_DOWN
from tenantgraph.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    RateLimited,
    TenantgraphError,
    Unauthenticated,
    Unavailable,
)

__all__ = ["STATUS", "CatchAllMiddleware", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

# Each base of the family and its status; a subclass answers with its nearest base's.
# 413 for a full store rather than 429: a retry cannot succeed until something is deleted.
STATUS: dict[type[TenantgraphError], int] = {
    InvalidRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    QuotaExceeded: 413,
    InvalidInput: 422,
    RateLimited: 429,
    Unavailable: 503,
    TenantgraphError: 400,
}


def error_response(exc: TenantgraphError) -> JSONResponse:
    """The answer to one error of the family, with the headers the client needs."""
    status = next(STATUS[c] for c in type(exc).__mro__ if c in STATUS)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers.update({f"RateLimit-{name}": value for name, value in exc.budget.items()})
    if isinstance(exc, RateLimited | Unavailable):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def validation_detail(errors: list[dict]) -> str:
    """`body.metadata: Input should be a valid dictionary; …` — names every bad field."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Route-level handlers: a route's error becomes a response that the middlewares
    (idempotency, rate-limit headers) see like any other."""

    async def family(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TenantgraphError)
        return error_response(exc)

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(list(exc.errors()))}, status_code=422)

    async def http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    app.add_exception_handler(TenantgraphError, family)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)


class CatchAllMiddleware:
    """Answers whatever escapes the routes and the inner middlewares: an error of the family
    with its status, Valkey out of reach with 503 and `Retry-After` (raised, so nothing
    stored it as the request's answer: an `Idempotency-Key` retry runs again), anything
    else with a logged 500. Installed inside the observability middleware, so the answer
    still carries the request id.

    Starlette's own last resort (`ServerErrorMiddleware`) sends a 500 and then re-raises,
    and the server closes the keep-alive connection; here nothing is re-raised. A response
    that has already started cannot be replaced: its body is ended instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if isinstance(exc, TenantgraphError):
                response = error_response(exc)
            elif isinstance(exc, VALKEY_DOWN):
                log.warning("Valkey out of reach: %r", exc)
                response = error_response(Unavailable("Valkey is unavailable; retry later."))
            else:
                log.exception("unhandled error", exc_info=exc)
                response = JSONResponse({"detail": "internal server error"}, status_code=500)
            if not started:
                await response(scope, receive, send)
                return
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:  # noqa: S110 - the client is gone or the body was complete
                pass
