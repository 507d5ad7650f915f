"""Every base of the error family answers with its status, its message as `detail` and the
headers the client needs; anything else becomes a JSON 500 inside the app, raised by a
route or by a middleware, so no exception reaches the server."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantgraph import errors
from tenantgraph.api.errors import (
    STATUS,
    CatchAllMiddleware,
    error_response,
    install_error_handlers,
)
from tenantgraph.scope import InvalidIdentifier, Principal

EXPECTED = {
    errors.InvalidRequest("impossible"): 400,
    errors.Unauthenticated("who are you"): 401,
    errors.Forbidden("not yours to change"): 403,
    errors.NotFound("thread 1 not found"): 404,
    errors.Conflict("exists already"): 409,
    errors.QuotaExceeded("store full"): 413,
    errors.InvalidInput("bad identifier"): 422,
    errors.RateLimited(
        "slow down", retry_after_seconds=7, budget={"Limit": "60", "Remaining": "0"}
    ): 429,
    errors.Unavailable("valkey is down", retry_after_seconds=2): 503,
}


def _index(kind: type[errors.TenantgraphError]) -> int:
    return next(i for i, error in enumerate(EXPECTED) if type(error) is kind)


class _FailingMiddleware:
    """A middleware that raises before the routes run (as auth or rate limits can)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/middleware/"):
            if scope["path"].endswith("/family"):
                raise errors.Forbidden("refused by a middleware")
            raise RuntimeError("a bug in a middleware")
        await self.app(scope, receive, send)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(_FailingMiddleware)
    app.add_middleware(CatchAllMiddleware)
    cases = list(EXPECTED)

    @app.get("/raise/{index}")
    async def raise_one(index: int) -> None:
        raise cases[index]

    @app.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("secret internals")

    return app


@pytest.fixture
async def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def test_every_base_has_a_status() -> None:
    bases = {type(e) for e in EXPECTED}
    assert bases == set(STATUS) - {errors.TenantgraphError}


@pytest.mark.parametrize("index", range(len(EXPECTED)), ids=[type(e).__name__ for e in EXPECTED])
async def test_each_base_maps_to_its_status_and_body(client: httpx.AsyncClient, index: int) -> None:
    error, status = list(EXPECTED.items())[index]
    response = await client.get(f"/raise/{index}")
    assert response.status_code == status
    assert response.json() == {"detail": str(error)}


def test_a_subclass_answers_with_its_nearest_base() -> None:
    with pytest.raises(InvalidIdentifier) as raised:
        Principal("bad org", "alice")
    assert error_response(raised.value).status_code == 422
    assert error_response(errors.InvalidRequest("x")).status_code == 400


async def test_retry_and_budget_headers(client: httpx.AsyncClient) -> None:
    limited = await client.get(f"/raise/{_index(errors.RateLimited)}")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.headers["RateLimit-Limit"] == "60"
    assert limited.headers["RateLimit-Remaining"] == "0"
    unavailable = await client.get(f"/raise/{_index(errors.Unavailable)}")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "2")
    unauthenticated = await client.get(f"/raise/{_index(errors.Unauthenticated)}")
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"


async def test_an_unexpected_error_is_a_json_500_without_internals(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/bug")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


async def test_errors_raised_by_a_middleware_are_answered_too(client: httpx.AsyncClient) -> None:
    family = await client.get("/middleware/family")
    assert (family.status_code, family.json()) == (403, {"detail": "refused by a middleware"})
    bug = await client.get("/middleware/bug")
    assert (bug.status_code, bug.json()) == (500, {"detail": "internal server error"})
