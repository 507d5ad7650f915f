"""Thread routes (`/threads…`). Thread state and runs live in the runtime routes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Header, Request, Response
from pydantic import Field

from tenantgraph.api.deps import Caller, ThreadService, app_state
from tenantgraph.api.payloads import Body, Count, JsonObject, Text

router = APIRouter(prefix="/threads", tags=["threads"])

Json = dict[str, Any]
Status = Literal["idle", "busy", "interrupted", "error"]


class ThreadCreate(Body):
    thread_id: uuid.UUID | None = None
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadPatch(Body):
    metadata: JsonObject = Field(default_factory=dict)


class ThreadSearch(Body):
    metadata: JsonObject | None = None
    values: JsonObject | None = None
    status: Status | None = None
    ids: list[uuid.UUID] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: Count = 0
    sort_by: Text | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class ThreadCount(Body):
    metadata: JsonObject | None = None
    values: JsonObject | None = None
    status: Status | None = None


@router.post("")
async def create_thread(body: ThreadCreate, threads: ThreadService, caller: Caller) -> Json:
    return await threads.create(caller, **body.model_dump())


@router.post("/search")
async def search_threads(body: ThreadSearch, threads: ThreadService, caller: Caller) -> list[Json]:
    return await threads.search(caller, **body.model_dump())


@router.post("/count")
async def count_threads(body: ThreadCount, threads: ThreadService, caller: Caller) -> int:
    return await threads.count(caller, **body.model_dump())


@router.get("/{thread_id}")
async def get_thread(thread_id: uuid.UUID, threads: ThreadService, caller: Caller) -> Json:
    return await threads.get(caller, thread_id)


@router.patch("/{thread_id}", response_model=None)
async def patch_thread(
    thread_id: uuid.UUID,
    body: ThreadPatch,
    threads: ThreadService,
    caller: Caller,
    prefer: str | None = Header(default=None),
) -> Json | Response:
    row = await threads.update(caller, thread_id, metadata=body.metadata)
    if prefer and "return=minimal" in prefer:
        return Response(status_code=204)
    return row


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread_id: uuid.UUID, threads: ThreadService, caller: Caller) -> None:
    await threads.delete(caller, thread_id)


@router.post("/{thread_id}/copy")
async def copy_thread(thread_id: uuid.UUID, request: Request, caller: Caller) -> Json:
    """A new thread of the caller's with the source's metadata and every checkpoint."""
    return await app_state(request).thread_states.copy_thread(caller, thread_id)
