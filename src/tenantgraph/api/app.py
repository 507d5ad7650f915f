"""The ASGI application: routes and middlewares are mounted here; the services they use
live in one `AppState`, opened by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from langgraph.version import __version__ as langgraph_version
from starlette.middleware.cors import CORSMiddleware

from tenantgraph import __version__
from tenantgraph.api import (
    a2a,
    assistants,
    console,
    crons,
    experiments,
    feedback,
    mcp,
    me,
    orgs,
    runs,
    sessions,
    store,
    thread_state,
    threads,
    webhooks,
)
from tenantgraph.api.auth import AuthMiddleware
from tenantgraph.api.channels import connections as channel_connections
from tenantgraph.api.channels import escalation as channel_escalation
from tenantgraph.api.channels import slack as channel_slack
from tenantgraph.api.channels import web_chat as channel_web_chat
from tenantgraph.api.channels import whatsapp as channel_whatsapp
from tenantgraph.api.custom_auth import CustomAuthMiddleware
from tenantgraph.api.errors import CatchAllMiddleware, install_error_handlers
from tenantgraph.api.health import ready
from tenantgraph.api.middleware import (
    BodyLimitMiddleware,
    IdempotencyMiddleware,
    JsonBodyMiddleware,
    RateLimitMiddleware,
)
from tenantgraph.api.observability import ObservabilityMiddleware, metrics
from tenantgraph.api.openapi import describe_security
from tenantgraph.api.scopes import require_route_scope
from tenantgraph.api.state import AppState
from tenantgraph.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database and Valkey are opened when it starts, not here."""
    state = AppState(settings or Settings())
    endpoint = mcp.McpEndpoint()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with state.running(), endpoint.running():
            yield

    app = FastAPI(
        title="tenantgraph",
        version=__version__,
        lifespan=lifespan,
        dependencies=[Depends(require_route_scope)],  # the one check of every route's scope
    )
    app.state.tenantgraph = state
    app.state.mcp = endpoint
    install_error_handlers(app)
    # Added last runs first: observability → CORS → catch-all → body cap → JSON bodies →
    # authentication → custom auth's per-resource handlers → rate limits → idempotency →
    # routes.
    app.add_middleware(IdempotencyMiddleware, state=state)
    app.add_middleware(RateLimitMiddleware, state=state)
    app.add_middleware(CustomAuthMiddleware, state=state)
    app.add_middleware(AuthMiddleware, state=state)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=state.settings.max_body_bytes)
    app.add_middleware(CatchAllMiddleware)
    if (cors := state.settings.cors) is not None:
        # Outside authentication: a preflight carries no credential, and a browser reads
        # a 401 or a 429 only with the CORS headers on it.
        app.add_middleware(CORSMiddleware, **cors.model_dump())
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/ok", tags=["system"])
    async def ok() -> dict[str, bool]:
        """Liveness: the process is up and its lifespan completed."""
        return {"ok": True}

    app.add_api_route("/ready", ready, methods=["GET"], tags=["system"])

    @app.get("/info", tags=["system"])
    async def info() -> dict[str, object]:
        """Version and the features this server enables, shaped as the LangGraph API's."""
        return {
            "version": __version__,
            "langgraph_py_version": langgraph_version,
            "flags": {
                "assistants": True,
                "crons": True,
                # No tracing to LangSmith: UIs must not offer its links.
                "langsmith": False,
                "langsmith_tracing_replicas": False,
                "langsmith_tracing_session_on_runs": False,
            },
            "host": {
                "kind": "self-hosted",
                "project_id": None,
                "host_revision_id": None,
                "revision_id": None,
                "tenant_id": None,
            },
        }

    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["system"])
    # Starlette tries routes in order, ~3 µs each (docs/measurements.md): the store's and
    # the runs' come first, as the hot path. The order is free while no request can be
    # answered by two of them (tests/test_api_system.py).
    for router in (
        store.router,
        runs.router,
        threads.router,
        thread_state.router,
        assistants.router,
        crons.router,
        crons.thread_router,
        sessions.router,
        orgs.router,
        webhooks.router,
        mcp.router,
        a2a.router,
        feedback.router,
        experiments.router,
        channel_connections.router,
        channel_escalation.router,
        channel_slack.router,
        channel_whatsapp.router,
        channel_web_chat.router,
        me.router,
        console.router,
    ):
        app.include_router(router)
    describe_security(app)
    return app
