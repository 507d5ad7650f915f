"""Thread routes (`/threads…`), and a thread's stream. Thread state and runs live in the
runtime routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from tenantgraph.api.deps import Caller, ThreadService, app_state
from tenantgraph.api.payloads import Body, Count, JsonObject, Text
from tenantgraph.api.run_responses import KEEPALIVE_SECONDS
from tenantgraph.errors import InvalidInput
from tenantgraph.runtime import events
from tenantgraph.scope import Principal
from tenantgraph.services.thread_stream import RUN_MODES, THREAD_MODES

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


class ThreadPrune(Body):
    thread_ids: list[uuid.UUID] = Field(default_factory=list)
    strategy: Literal["delete", "keep_latest"] = "delete"


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


@router.post("/prune")
async def prune_threads(body: ThreadPrune, threads: ThreadService, caller: Caller) -> Json:
    """Delete the caller's threads among `thread_ids`, or keep only their latest state
    (`keep_latest`); ids the caller cannot see are skipped, as langgraph-api does."""
    pruned = await threads.prune(caller, body.thread_ids, strategy=body.strategy)
    return {"pruned_count": pruned}


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


def _thread_modes(stream_modes: str | None, stream_mode: list[str]) -> frozenset[str]:
    """The modes of a thread stream: langgraph-api's `stream_modes` (comma-separated), else
    the SDK's `stream_mode`; thread modes, or run stream modes to narrow the run events."""
    modes = [m.strip() for m in (stream_modes or "").split(",") if m.strip()] or stream_mode
    unknown = [m for m in modes if m not in THREAD_MODES and m not in events.STREAM_MODES]
    if unknown:
        raise InvalidInput(f"Invalid stream mode: {', '.join(unknown)}")
    return frozenset(modes or [RUN_MODES])


@router.get("/{thread_id}/stream", response_model=None)
async def join_thread_stream(
    thread_id: uuid.UUID,
    request: Request,
    caller: Caller,
    stream_modes: str | None = None,
    stream_mode: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The events of the thread's runs as they go through it, until the client leaves."""
    modes = _thread_modes(stream_modes, stream_mode)
    if last_event_id in ("-", "-1"):  # the SDKs' "from the start": the runs from now on
        last_event_id = None
    elif last_event_id is not None:
        events.check_event_id(last_event_id)
    state = app_state(request)
    await state.thread_streams.check(caller, thread_id)
    return await state.stream_slots.hold(
        caller, _thread_sse(request, caller, thread_id, modes, last_event_id)
    )


async def _thread_sse(
    request: Request,
    caller: Principal,
    thread_id: uuid.UUID,
    modes: frozenset[str],
    last_event_id: str | None,
) -> Response:
    state = app_state(request)
    followed = state.thread_streams.follow(
        caller,
        thread_id,
        last_event_id=last_event_id,
        modes=modes,
        heartbeat_seconds=KEEPALIVE_SECONDS,
    )

    async def frames() -> AsyncIterator[bytes]:
        async for event in state.shutdown.until_started(followed):
            if event is None:
                yield b": heartbeat\r\n\r\n"
            else:
                yield events.format_sse(event)

    return StreamingResponse(frames(), media_type="text/event-stream")
