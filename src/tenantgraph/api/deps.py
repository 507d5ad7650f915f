"""Route dependencies: the caller and the services, all read from the one `AppState`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tenantgraph.api.auth import current_principal, require_admin
from tenantgraph.api.state import AppState
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.crons import Crons
from tenantgraph.services.memory import Memory
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.runs import Runs
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.threads import Threads

__all__ = [
    "Admin",
    "AssistantService",
    "Caller",
    "CronService",
    "MemoryService",
    "OrgService",
    "RunService",
    "State",
    "ThreadService",
    "ThreadStateService",
    "app_state",
]


def app_state(request: Request) -> AppState:
    """The app's state object, for routes that need more than one service."""
    return request.app.state.tenantgraph


# Dependencies are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per dependency per request.
async def _state(request: Request) -> AppState:
    return app_state(request)


State = Annotated[AppState, Depends(_state)]


async def _orgs(state: State) -> Orgs:
    return state.orgs


async def _assistants(state: State) -> Assistants:
    return state.assistants


async def _threads(state: State) -> Threads:
    return state.threads


async def _thread_states(state: State) -> ThreadStates:
    return state.thread_states


async def _runs(state: State) -> Runs:
    return state.runs


async def _crons(state: State) -> Crons:
    return state.crons


async def _memory(state: State) -> Memory:
    return state.memory


OrgService = Annotated[Orgs, Depends(_orgs)]
AssistantService = Annotated[Assistants, Depends(_assistants)]
ThreadService = Annotated[Threads, Depends(_threads)]
ThreadStateService = Annotated[ThreadStates, Depends(_thread_states)]
RunService = Annotated[Runs, Depends(_runs)]
CronService = Annotated[Crons, Depends(_crons)]
MemoryService = Annotated[Memory, Depends(_memory)]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
