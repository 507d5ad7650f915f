"""Route dependencies: the resources, the caller, and assistant-id resolution."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from tenantgraph.api.auth import current_principal, require_admin
from tenantgraph.db.database import Database
from tenantgraph.errors import NotFound
from tenantgraph.scope import Principal
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.threads import Threads
from tenantgraph.stores import assistants

__all__ = [
    "DB",
    "Admin",
    "Caller",
    "OrgService",
    "ThreadService",
    "graph_ids",
    "resolve_assistant_id",
]


async def _db(request: Request) -> Database:  # async: see api/auth.py, dependencies
    return request.app.state.resources.db


async def _orgs(request: Request) -> Orgs:
    return request.app.state.orgs


async def _threads(request: Request) -> Threads:
    return request.app.state.threads


DB = Annotated[Database, Depends(_db)]
OrgService = Annotated[Orgs, Depends(_orgs)]
ThreadService = Annotated[Threads, Depends(_threads)]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]


def graph_ids(request: Request) -> frozenset[str]:
    return request.app.state.graph_ids


async def resolve_assistant_id(
    request: Request, db: Database, principal: Principal, raw: str
) -> uuid.UUID:
    """A UUID, or a graph name standing for the org's default assistant of that graph."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        pass
    if raw in graph_ids(request):
        return (await assistants.ensure_default(db, principal, raw))["assistant_id"]
    raise NotFound(f"assistant {raw!r} not found")
