"""The ASGI application: routes are mounted here, resources live in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from rich.console import Console

from tenantgraph import __version__
from tenantgraph.api import (
    assistants,
    crons,
    orgs,
    runs,
    sessions,
    store,
    thread_state,
    threads,
)
from tenantgraph.api.auth import Authenticator, AuthMiddleware
from tenantgraph.api.errors import install_error_handlers
from tenantgraph.api.middleware import (
    IDEMPOTENCY_STORE,
    RATE_LIMITER,
    IdempotencyMiddleware,
    RateLimitMiddleware,
)
from tenantgraph.api.observability import ObservabilityMiddleware, metrics
from tenantgraph.ephemeral.context import bind
from tenantgraph.ephemeral.idempotency import IdempotencyStore
from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.errors import Conflict
from tenantgraph.resources import open_resources
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.worker import Worker
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.crons import Crons
from tenantgraph.services.limits import OrgLimits
from tenantgraph.services.memory_lifecycle import Memory, StoreSweeper
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.runs import Runs
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.threads import Threads
from tenantgraph.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("tenantgraph")
DEFAULT_ORG = "default"
DEFAULT_ADMIN = "admin"
YOUNG_GC_THRESHOLD = 20_000


async def _first_start(settings: Settings, orgs: Orgs) -> None:
    """On an embedded database with no `default` org yet, create it with one owner key.

    The key is printed once; the API never runs without a credential.
    """
    if settings.database_url:
        return
    try:
        _, secret = await orgs.create_org_with_key(
            DEFAULT_ORG, "Default", owner=DEFAULT_ADMIN, key_name="first start"
        )
    except Conflict:
        return
    Console(stderr=True).print(
        f"\n[bold]Created organisation '{DEFAULT_ORG}' with an owner API key "
        "(shown only now):[/]\n"
        f"  [green]{secret}[/]\n"
        "Use it as  Authorization: Bearer <key>  or  X-Api-Key: <key>, e.g.\n"
        "  get_client(url=..., api_key=<key>)  from langgraph-sdk.\n"
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database and Valkey are opened when it starts, not here."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        registry = GraphRegistry.from_settings(settings)
        async with open_resources(settings) as resources, AsyncExitStack() as stack:
            db, redis = resources.db, resources.redis
            app.state.resources = resources
            app.state.orgs = Orgs(db)
            app.state.assistants = Assistants(db, registry)
            app.state.threads = Threads(db)
            app.state.authenticator = Authenticator(settings, app.state.orgs)
            app.state.registry = registry
            app.state.graph_ids = frozenset(registry.ids())
            app.state.runs = Runs(db, redis)
            app.state.states = ThreadStates(db, registry)
            app.state.crons = Crons(db, app.state.runs)
            app.state.memory = Memory(db, resources.store_config)
            await _first_start(settings, app.state.orgs)
            app.state.worker = None
            if settings.worker_concurrency > 0:
                worker = Worker.from_settings(
                    settings,
                    db,
                    redis,
                    registry,
                    resources.store,
                    fire_crons=app.state.crons.fire_due,
                )
                # The worker's tasks inherit this context: graphs reach the ephemeral
                # helpers (session windows, episodes) through the bound client.
                with bind(redis, settings.ephemeral):
                    await worker.start()
                stack.push_async_callback(worker.stop)
                app.state.worker = worker
            ttl = resources.store_config.ttl or {}
            sweeper = StoreSweeper(db, interval=60 * (ttl.get("sweep_interval_minutes") or 1))
            sweeper.start()
            stack.push_async_callback(sweeper.stop)
            # A run allocates many short-lived containers (LangGraph, pydantic, psycopg):
            # young collections every 700 allocations cost ~10% of the server's CPU per
            # run at 8 concurrent runs; every 20,000 it fell from ~5.8 to ~5.2 ms per run
            # (bench/runs_bench.py, docs/measurements.md). Older generations keep theirs.
            stack.callback(gc.set_threshold, *gc.get_threshold())
            gc.set_threshold(YOUNG_GC_THRESHOLD)
            # Lifespan state is copied into every request's scope["state"], where the
            # rate-limit and idempotency middlewares look for their stores.
            yield {
                RATE_LIMITER: RateLimiter(redis, OrgLimits(db).get, settings.ephemeral),
                IDEMPOTENCY_STORE: IdempotencyStore(redis, settings.ephemeral),
            }

    app = FastAPI(title="tenantgraph", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    # Added last runs first: observability → authentication → rate limits → idempotency.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/ok", tags=["system"])
    async def ok() -> dict[str, bool]:
        """Liveness: the process is up and its lifespan completed."""
        return {"ok": True}

    @app.get("/info", tags=["system"])
    async def info() -> dict[str, object]:
        """Version and the features this server enables."""
        return {
            "version": __version__,
            "flags": {"assistants": True, "crons": True, "langsmith": False},
        }

    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["system"])
    for router in (
        assistants.router,
        threads.router,
        thread_state.router,
        runs.router,
        crons.router,
        crons.thread_router,
        store.router,
        sessions.router,
        orgs.router,
    ):
        app.include_router(router)
    return app
