"""Thread state routes: the checkpointed state of a thread, its history and updates."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from tenantgraph.api.deps import Caller, ThreadStateService
from tenantgraph.api.payloads import Body, JsonObject, Text

router = APIRouter(prefix="/threads/{thread_id}", tags=["thread state"])

Json = dict[str, Any]


class StateAtCheckpoint(Body):
    checkpoint: JsonObject
    subgraphs: bool = False


class StateUpdate(Body):
    values: Any = None
    as_node: Text | None = None
    checkpoint: JsonObject | None = None
    checkpoint_id: Text | None = None


class HistoryQuery(Body):
    limit: int = Field(10, ge=1, le=1000)
    before: Text | JsonObject | None = None
    metadata: JsonObject | None = None
    checkpoint: JsonObject | None = None


@router.get("/state")
async def get_state(
    thread_id: uuid.UUID, states: ThreadStateService, caller: Caller, subgraphs: bool = False
) -> Json:
    return await states.get(caller, thread_id, subgraphs=subgraphs)


@router.get("/state/{checkpoint_id}")
async def get_state_at(
    thread_id: uuid.UUID,
    checkpoint_id: str,
    states: ThreadStateService,
    caller: Caller,
    subgraphs: bool = False,
) -> Json:
    checkpoint = {"checkpoint_id": checkpoint_id}
    return await states.get(caller, thread_id, checkpoint, subgraphs=subgraphs)


@router.post("/state/checkpoint")
async def get_state_at_checkpoint(
    thread_id: uuid.UUID, body: StateAtCheckpoint, states: ThreadStateService, caller: Caller
) -> Json:
    return await states.get(caller, thread_id, body.checkpoint, subgraphs=body.subgraphs)


@router.post("/state")
async def update_state(
    thread_id: uuid.UUID, body: StateUpdate, states: ThreadStateService, caller: Caller
) -> Json:
    checkpoint = dict(body.checkpoint or {})
    if body.checkpoint_id:
        checkpoint["checkpoint_id"] = body.checkpoint_id
    return await states.update(
        caller, thread_id, body.values, as_node=body.as_node, checkpoint=checkpoint or None
    )


@router.post("/history")
async def post_history(
    thread_id: uuid.UUID, body: HistoryQuery, states: ThreadStateService, caller: Caller
) -> list[Json]:
    return await states.history(caller, thread_id, **body.model_dump())


@router.get("/history")
async def get_history(
    thread_id: uuid.UUID,
    states: ThreadStateService,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    before: str | None = None,
) -> list[Json]:
    return await states.history(caller, thread_id, limit=limit, before=before)
