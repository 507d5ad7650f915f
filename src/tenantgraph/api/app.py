"""The ASGI application: routes are mounted here, resources live in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tenantgraph import __version__
from tenantgraph.resources import open_resources
from tenantgraph.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database and Valkey are opened when it starts, not here."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_resources(settings) as resources:
            app.state.resources = resources
            yield

    app = FastAPI(
        title="tenantgraph",
        version=__version__,
        lifespan=lifespan,
    )

    @app.get("/ok", tags=["system"])
    async def ok() -> dict[str, bool]:
        """Liveness: the process is up and its lifespan completed."""
        return {"ok": True}

    @app.get("/info", tags=["system"])
    async def info() -> dict[str, object]:
        """Version and the features this server enables."""
        return {
            "version": __version__,
            "flags": {"assistants": False, "crons": False, "langsmith": False},
        }

    return app
