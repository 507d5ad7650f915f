"""A small app behind the ephemeral middlewares, served by uvicorn on a free port.

`TestAuth` stands in for the real auth middleware: it reads the caller from
`X-Test-Org` / `X-Test-User` / `X-Test-Key` headers and puts the `Principal` where the
real one will (`scope["state"]["principal"]`). Everything else is real: Valkey, Postgres,
uvicorn, HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantgraph.api.errors import error_response
from tenantgraph.api.identity import IDENTITY, Identity, request_principal
from tenantgraph.api.middleware import IdempotencyMiddleware, RateLimitMiddleware, run_budget_spent
from tenantgraph.embedded import EmbeddedValkey
from tenantgraph.ephemeral.client import Client, connect
from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.errors import Unavailable
from tenantgraph.scope import Principal, PrincipalKind, Role
from tenantgraph.services.idempotency import Idempotency
from tenantgraph.services.limits import OrgLimits
from tenantgraph.settings import EphemeralSettings, Settings


class TestAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            if "x-test-org" in headers:
                key = headers.get("x-test-key")
                principal = Principal(
                    headers["x-test-org"],
                    headers["x-test-user"],
                    Role(headers.get("x-test-role", "member")),
                    PrincipalKind.API_KEY if key else PrincipalKind.USER,
                )
                identity = Identity(principal, api_key_id=uuid.UUID(key) if key else None)
                scope.setdefault("state", {})[IDENTITY] = identity
        await self.app(scope, receive, send)


@dataclass
class SideEffects:
    """What the routes did, so tests can count side effects."""

    created: list[dict] = field(default_factory=list)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)


def build_app(limiter: RateLimiter, store: Idempotency, effects: SideEffects) -> FastAPI:
    # What the real middlewares use of the app's AppState.
    state = SimpleNamespace(rate_limiter=limiter, idempotency=store)
    app = FastAPI(
        middleware=[
            Middleware(TestAuth),
            Middleware(RateLimitMiddleware, state=state),
            Middleware(IdempotencyMiddleware, state=state),
        ],
    )

    @app.get("/ping")
    async def ping() -> dict:
        return {"pong": True}

    @app.post("/items", status_code=201)
    async def create_item(request: Request) -> dict:
        body = await request.json()
        effects.entered.set()
        if effects.gate is not None:
            await effects.gate.wait()
        item = {"id": uuid.uuid4().hex, "name": body.get("name"), "org": _org(request)}
        if body.get("pad"):
            item["pad"] = "x" * body["pad"]
        effects.created.append(item)
        return item

    @app.post("/runs", status_code=201, response_model=None)
    async def create_run(request: Request) -> dict | JSONResponse:
        """How run routes spend the run budget (separate from the request budget)."""
        if not run_budget_spent(request.scope):  # spent by the middleware, as for real runs
            decision = await limiter.check_run(request_principal(request.scope))
            if not decision.allowed:
                return error_response(decision.denial())
        run = {"run_id": uuid.uuid4().hex}
        effects.created.append(run)
        return run

    @app.post("/fail")
    async def fail(request: Request) -> JSONResponse:
        effects.created.append({"failed": uuid.uuid4().hex})
        return JSONResponse({"detail": f"bad request {uuid.uuid4().hex}"}, status_code=400)

    @app.post("/unavailable")
    async def unavailable() -> JSONResponse:
        """A route whose database was out of reach: the app's own 503 with Retry-After."""
        effects.created.append({"unavailable": True})
        return error_response(Unavailable("the database is out of reach; retry"))

    @app.post("/crash")
    async def crash() -> dict:
        effects.created.append({"crashed": True})
        raise RuntimeError("boom")

    @app.post("/stream")
    async def stream() -> StreamingResponse:
        run_id = uuid.uuid4().hex
        effects.created.append({"run": run_id})

        async def events() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"event: values\ndata: {i}\n\n".encode()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Content-Location": f"/runs/{run_id}"},
        )

    return app


def _org(request: Request) -> str | None:
    principal = request_principal(request.scope)
    return principal.org_id if principal else None


@asynccontextmanager
async def serve(
    app: FastAPI, uds: Path | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[str]:
    """Run `app` with uvicorn in this event loop, on a free port of the loopback address
    `host` or on the unix socket `uds`; yield its base URL (for a socket, pass the same
    path to httpx)."""
    if uds is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        url = f"http://{host}:{sock.getsockname()[1]}"
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(uds))
        url = "http://localhost"
    # The server shares this event loop with the test's clients: a burst of hundreds of
    # requests can keep a pooled connection idle past uvicorn's 5 s keep-alive, and a client
    # reusing it as the server closes it gets a ReadError (seen once in CI at 500 requests).
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            backlog=2048,
            limit_concurrency=None,
            timeout_keep_alive=120,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


def caller(
    org: str, user: str, key: uuid.UUID | None = None, role: str = "member"
) -> dict[str, str]:
    """The headers of a test caller: an org member, or one acting through an API key."""
    headers = {"X-Test-Org": org, "X-Test-User": user, "X-Test-Role": role}
    if key:
        headers["X-Test-Key"] = str(key)
    return headers


async def create_orgs(db, *org_ids: str) -> None:
    """The `orgs` rows every tenant row (a rate-limit override, an idempotency record) hangs
    from; an org that exists already is kept."""
    for org in org_ids:
        async with db.tenant(Principal(org, "setup")) as conn:
            await conn.execute(
                "INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (org, org, org),
            )


def valkey_url(settings: Settings) -> str:
    """The session's Valkey, for clients made with `tenantgraph.ephemeral.client.connect`."""
    return settings.redis_url or EmbeddedValkey(settings.data_dir).url


def valkey_client(settings: Settings, **options: Any) -> Client:
    """A client of the session's Valkey, a cluster one under tests_cluster."""
    return connect(valkey_url(settings), cluster=settings.redis_cluster, **options)


@asynccontextmanager
async def serve_budgeted(resources, settings: Settings) -> AsyncIterator[str]:
    """The test app with the real rate-limit and idempotency middlewares, on the session's
    Valkey and database, with the default budgets."""
    redis = valkey_client(settings)
    conf = EphemeralSettings()
    app = build_app(
        RateLimiter(redis, OrgLimits(resources.db).get, conf),
        Idempotency(resources.db, conf),
        SideEffects(),
    )
    try:
        async with serve(app) as url:
            yield url
    finally:
        await redis.aclose()
