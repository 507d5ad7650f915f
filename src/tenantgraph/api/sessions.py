"""Session windows over HTTP: the caller's own short-term memory of one conversation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tenantgraph.api.deps import Caller, app_state
from tenantgraph.api.payloads import Body, Count, JsonObject
from tenantgraph.ephemeral.sessions import SessionWindow
from tenantgraph.scope import Principal

router = APIRouter(prefix="/sessions/{assistant_id}/{session_id}", tags=["sessions"])


class Append(Body):
    messages: list[JsonObject] = Field(min_length=1)


async def _window(
    request: Request, caller: Principal, assistant_id: str, session_id: str
) -> SessionWindow:
    """The window keyed by the caller's org and user: no one else's is addressable."""
    state = app_state(request)
    resolved = await state.assistants.resolve_id(caller, assistant_id)
    settings = state.settings.ephemeral
    return SessionWindow(
        state.resources.redis,
        caller,
        str(resolved),
        session_id,
        size=settings.session_window_size,
        ttl_seconds=settings.session_window_ttl_seconds,
    )


@router.get("/messages")
async def read_window(
    assistant_id: str,
    session_id: str,
    request: Request,
    caller: Caller,
    last: Annotated[Count | None, Query(ge=1)] = None,
) -> dict[str, list[dict[str, Any]]]:
    window = await _window(request, caller, assistant_id, session_id)
    return {"messages": await window.messages(last)}


@router.post("/messages")
async def append_to_window(
    assistant_id: str, session_id: str, body: Append, request: Request, caller: Caller
) -> dict[str, int]:
    window = await _window(request, caller, assistant_id, session_id)
    return {"length": await window.append(*body.messages)}


@router.delete("", status_code=204)
async def clear_window(
    assistant_id: str, session_id: str, request: Request, caller: Caller
) -> None:
    window = await _window(request, caller, assistant_id, session_id)
    await window.clear()
