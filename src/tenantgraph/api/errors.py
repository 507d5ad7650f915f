"""One place that turns exceptions into LangGraph-style JSON errors: `{"detail": …}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from langgraph.store.base import InvalidNamespaceError
from starlette.exceptions import HTTPException

from tenantgraph.api.auth import AuthError
from tenantgraph.api.middleware.ratelimit import RateLimited, too_many_requests
from tenantgraph.errors import Conflict, Forbidden, InvalidRequest, NotFound
from tenantgraph.scope import InvalidIdentifier
from tenantgraph.stores.filters import InvalidFilter
from tenantgraph.stores.items import QuotaExceeded, StoreForbidden

__all__ = ["install_error_handlers", "validation_detail"]

log = logging.getLogger(__name__)

_STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    InvalidRequest: 400,
    InvalidIdentifier: 422,
    StoreForbidden: 403,
    QuotaExceeded: 413,
    InvalidFilter: 422,
    InvalidNamespaceError: 422,
}


def validation_detail(errors: list[dict]) -> str:
    """`body.metadata: Input should be a valid dictionary; …` — names every bad field."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def mapped(_: Request, exc: Exception) -> JSONResponse:
        status = next(_STATUS[c] for c in type(exc).__mro__ if c in _STATUS)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(list(exc.errors()))}, status_code=422)

    async def http(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    async def unauthenticated(_: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    async def rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return too_many_requests(exc.decision)

    app.add_exception_handler(AuthError, unauthenticated)
    app.add_exception_handler(RateLimited, rate_limited)
    app.add_exception_handler(Exception, unexpected)
    for exc_class in _STATUS:
        app.add_exception_handler(exc_class, mapped)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
