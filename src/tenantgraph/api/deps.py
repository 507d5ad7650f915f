"""Route dependencies: the services, the caller, and assistant-id resolution."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Request

from tenantgraph.api.auth import current_principal, require_admin
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.threads import Threads

__all__ = [
    "DB",
    "Admin",
    "AssistantService",
    "Caller",
    "OrgService",
    "ThreadService",
    "graph_ids",
    "resolve_assistant_id",
]


# Dependencies are `async def`: see api/auth.py, route dependencies.
async def _db(request: Request) -> Any:
    return request.app.state.resources.db


async def _orgs(request: Request) -> Orgs:
    return request.app.state.orgs


async def _assistants(request: Request) -> Assistants:
    return request.app.state.assistants


async def _threads(request: Request) -> Threads:
    return request.app.state.threads


# The runtime pool, for the routes that do not call a service yet.
DB = Annotated[Any, Depends(_db)]
OrgService = Annotated[Orgs, Depends(_orgs)]
AssistantService = Annotated[Assistants, Depends(_assistants)]
ThreadService = Annotated[Threads, Depends(_threads)]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]


def graph_ids(request: Request) -> frozenset[str]:
    return request.app.state.graph_ids


async def resolve_assistant_id(
    request: Request, db: Any, principal: Principal, raw: str
) -> uuid.UUID:
    """A UUID, or a graph name standing for the org's default assistant of that graph
    (`db` is unused: the assistant service opens the transaction)."""
    assistants: Assistants = request.app.state.assistants
    return await assistants.resolve_id(principal, raw)
