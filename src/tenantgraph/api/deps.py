"""Route dependencies: the caller and the services, all read from the one `AppState`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from tenantgraph.api.auth import current_principal, require_admin
from tenantgraph.api.state import AppState
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.channels import Channels
from tenantgraph.services.crons import Crons
from tenantgraph.services.experiments import Experiments
from tenantgraph.services.feedback import Feedback
from tenantgraph.services.limits import OrgLimits
from tenantgraph.services.memory import Memory
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.threads import Threads
from tenantgraph.services.webhooks import Webhooks

__all__ = [
    "Admin",
    "AssistantService",
    "Caller",
    "ChannelService",
    "CronService",
    "ExperimentService",
    "FeedbackService",
    "LimitService",
    "MemoryService",
    "OrgService",
    "State",
    "ThreadService",
    "ThreadStateService",
    "WebhookService",
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


def _service(name: str) -> Any:
    """A dependency that answers with the state's service `name`."""

    async def dependency(state: State) -> Any:
        return getattr(state, name)

    return Depends(dependency)


OrgService = Annotated[Orgs, _service("orgs")]
AssistantService = Annotated[Assistants, _service("assistants")]
ThreadService = Annotated[Threads, _service("threads")]
ThreadStateService = Annotated[ThreadStates, _service("thread_states")]
CronService = Annotated[Crons, _service("crons")]
MemoryService = Annotated[Memory, _service("memory")]
LimitService = Annotated[OrgLimits, _service("limits")]
WebhookService = Annotated[Webhooks, _service("webhooks")]
FeedbackService = Annotated[Feedback, _service("feedback")]
ExperimentService = Annotated[Experiments, _service("experiments")]
ChannelService = Annotated[Channels, _service("channels")]
Caller = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
