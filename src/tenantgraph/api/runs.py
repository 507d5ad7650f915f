"""Run routes: stateful (`/threads/{id}/runs…`) and stateless (`/runs…`), as the LangGraph
API serves them — create, stream (SSE), wait, join, cancel, list, get, delete, batch.

The run use cases (`services/runs.py`) queue and read runs; workers execute them. This module
only speaks HTTP: the bodies, the join options and the stream caps; how a run's stream and
result are sent is `api/run_responses.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import model_validator

from tenantgraph.api import observability
from tenantgraph.api.deps import Caller, app_state
from tenantgraph.api.identity import request_identity
from tenantgraph.api.middleware import run_budget_spent
from tenantgraph.api.payloads import Body as Payload
from tenantgraph.api.payloads import Count
from tenantgraph.api.run_responses import awaiting, run_path, sse
from tenantgraph.errors import InvalidInput, InvalidRequest
from tenantgraph.runtime import events
from tenantgraph.scope import Principal
from tenantgraph.services.experiments import PREFIX as EXPERIMENT_PREFIX
from tenantgraph.services.runs import RunCreate, Runs

router = APIRouter(tags=["runs"])

Json = dict[str, Any]
_HIDDEN = ("owner_id", "cancel_action", "assistant")


class RunRequest(RunCreate, Payload):
    """A run-create body; `assistant_id` (a UUID or a graph name) is required."""

    assistant_id: str  # type: ignore[assignment]
    on_disconnect: Literal["cancel", "continue"] = "continue"


class CancelMany(Payload):
    thread_id: uuid.UUID | None = None
    run_ids: list[uuid.UUID] | None = None
    status: Literal["pending", "running", "all"] | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> CancelMany:
        if self.status is not None and (self.thread_id or self.run_ids):
            raise ValueError("status cannot be combined with thread_id or run_ids")
        if self.status is None and not self.run_ids and self.thread_id is None:
            raise ValueError("give run_ids, a thread_id or a status")
        return self


def _runs(request: Request) -> Runs:
    return app_state(request).runs


def _public(run: Json) -> Json:
    """The run as the API shows it; no LangSmith tracing, so no tracing session name."""
    return {**{k: v for k, v in run.items() if k not in _HIDDEN}, "langsmith_session_name": None}


def _created(run: Json) -> Json:
    """A new run as langgraph-api answers its creation: `pending`, also when a local worker
    took it in the same transaction (it reads `running` from the next request on)."""
    return {**_public(run), "status": "pending"}


async def queue_run(
    request: Request, caller: Principal, thread_id: uuid.UUID | None, body: RunRequest
) -> Json:
    """Queue a run after the caller's run budget admits it (429 when spent); the rate
    limit middleware has spent it already for the routes that create one run."""
    if body.webhook is not None:
        await app_state(request).webhooks.check_url(caller, body.webhook)
    if not run_budget_spent(request.scope):
        decision = await app_state(request).rate_limiter.check_run(caller)
        if not decision.allowed:
            raise decision.denial()
    state = app_state(request)
    runs, worker = state.runs, state.worker
    identity = request_identity(request.scope)
    caller_keys: dict[str, Any] = {
        "auth_fields": identity.auth_user if identity is not None else None,
        "request_id": observability.request_id.get(),
    }
    if body.assistant_id.startswith(EXPERIMENT_PREFIX):
        # The caller's variant of an experiment, named by name (an experiment's id is
        # resolved like an assistant's, in the run's transaction).
        run = await runs.create(
            caller,
            thread_id,
            None,
            body,
            experiment=body.assistant_id,
            worker=worker,
            **caller_keys,
        )
    elif (graph_id := state.assistants.default_graph(body.assistant_id)) is not None:
        # A graph name (or the fixed id) stands for the org's default assistant, created
        # with the run on its first use in this org.
        run = await runs.create(
            caller, thread_id, None, body, default_graph=graph_id, worker=worker, **caller_keys
        )
    else:
        assistant_id = await state.assistants.resolve_id(caller, body.assistant_id)
        run = await runs.create(caller, thread_id, assistant_id, body, worker=worker, **caller_keys)
    if worker is not None and run["status"] == "pending":
        worker.wake()
    return run


def _held(
    request: Request, caller: Principal, respond: Coroutine[Any, Any, Response]
) -> Awaitable[Response]:
    """A stream or join: one of the caller's open streams while it lasts (429 past the
    per-user and per-org caps, before `respond` creates or reads anything)."""
    return app_state(request).stream_slots.hold(caller, respond)


def _locations(run: Json) -> dict[str, str]:
    path = run_path(run)
    return {"Location": f"{path}/join", "Content-Location": path}


async def _waiting(request: Request, caller: Principal, run: Json) -> Response:
    """The result of a run the caller has just created (`…/runs/wait`)."""
    result = _runs(request).wait(caller, run, worker=app_state(request).worker)
    return await awaiting(request, result, _locations(run))


def _stream_modes(raw: list[str]) -> list[str] | None:
    """`stream_mode` of a join: repeated keys, a JSON array, or empty for every event."""
    modes: list[Any] = []
    for value in raw:
        if value.startswith("["):
            try:
                modes.extend(json.loads(value))
            except (ValueError, TypeError) as exc:
                raise InvalidRequest("stream_mode is not a JSON array") from exc
        elif value:
            modes.append(value)
    unknown = [m for m in modes if not isinstance(m, str) or m not in events.STREAM_MODES]
    if unknown:
        raise InvalidInput(f"stream_mode: unknown modes {unknown!r}")
    return modes or None


# --- create ----------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs", response_model=None)
async def create_run(
    thread_id: uuid.UUID,
    body: RunRequest,
    request: Request,
    response: Response,
    caller: Caller,
) -> Json:
    run = await queue_run(request, caller, thread_id, body)
    response.headers["Content-Location"] = run_path(run)
    return _created(run)


@router.post("/runs", response_model=None)
async def create_stateless_run(
    body: RunRequest, request: Request, response: Response, caller: Caller
) -> Json:
    run = await queue_run(request, caller, None, body)
    response.headers["Content-Location"] = run_path(run)
    return _created(run)


async def _create_stream(
    request: Request, caller: Principal, thread_id: uuid.UUID | None, body: RunRequest
) -> Response:
    run = await queue_run(request, caller, thread_id, body)
    return sse(request, caller, run, cancel_on_disconnect=body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/stream", response_model=None)
async def stream_run(
    thread_id: uuid.UUID, body: RunRequest, request: Request, caller: Caller
) -> Response:
    return await _held(request, caller, _create_stream(request, caller, thread_id, body))


@router.post("/runs/stream", response_model=None)
async def stream_stateless_run(body: RunRequest, request: Request, caller: Caller) -> Response:
    return await _held(request, caller, _create_stream(request, caller, None, body))


@router.post("/threads/{thread_id}/runs/wait", response_model=None)
async def wait_run(
    thread_id: uuid.UUID, body: RunRequest, request: Request, caller: Caller
) -> Response:
    run = await queue_run(request, caller, thread_id, body)
    return await _waiting(request, caller, run)


@router.post("/runs/wait", response_model=None)
async def wait_stateless_run(body: RunRequest, request: Request, caller: Caller) -> Response:
    run = await queue_run(request, caller, None, body)
    return await _waiting(request, caller, run)


@router.post("/runs/batch", response_model=None)
async def create_batch(body: list[RunRequest], request: Request, caller: Caller) -> list[Json]:
    created = []
    for item in body:
        created.append(_created(await queue_run(request, caller, None, item)))
    return created


# --- read and control ------------------------------------------------------------------


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: uuid.UUID,
    request: Request,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[Count, Query()] = 0,
    status: Literal["pending", "running", "error", "success", "timeout", "interrupted"]
    | None = None,
) -> list[Json]:
    rows = await _runs(request).list(caller, thread_id, limit=limit, offset=offset, status=status)
    return [_public(r) for r in rows]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: uuid.UUID, run_id: uuid.UUID, request: Request, caller: Caller
) -> Json:
    return _public(await _runs(request).get(caller, run_id, thread_id))


@router.get("/runs/{run_id}")
async def get_stateless_run(run_id: uuid.UUID, request: Request, caller: Caller) -> Json:
    return _public(await _runs(request).get(caller, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(
    thread_id: uuid.UUID, run_id: uuid.UUID, request: Request, caller: Caller
) -> None:
    await _runs(request).delete(caller, run_id, thread_id)


@router.get("/threads/{thread_id}/runs/{run_id}/join", response_model=None)
async def join_run(
    thread_id: uuid.UUID, run_id: uuid.UUID, request: Request, caller: Caller
) -> Response:
    return await _held(request, caller, _join(request, caller, run_id, thread_id))


@router.get("/runs/{run_id}/join", response_model=None)
async def join_stateless_run(run_id: uuid.UUID, request: Request, caller: Caller) -> Response:
    return await _held(request, caller, _join(request, caller, run_id, None))


async def _join(
    request: Request, caller: Principal, run_id: uuid.UUID, thread_id: uuid.UUID | None
) -> Response:
    if thread_id is None:
        return await awaiting(request, _runs(request).join(caller, run_id))
    run = await _runs(request).get(caller, run_id, thread_id)
    return await awaiting(request, _runs(request).join(caller, run_id), _locations(run))


@dataclass(frozen=True, slots=True)
class JoinOptions:
    """How a client joins a run's stream: which modes, from where, and what leaving does."""

    modes: list[str] | None
    cancel_on_disconnect: bool
    last_event_id: str | None


async def _join_options(
    stream_mode: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header()] = None,
) -> JoinOptions:
    if last_event_id in _FROM_THE_START:
        last_event_id = None
    elif last_event_id is not None:
        events.check_event_id(last_event_id)
    return JoinOptions(_stream_modes(stream_mode), cancel_on_disconnect, last_event_id)


# `Last-Event-ID` values that replay a run's stream from its first event, as the LangGraph
# API reads them (the JS SDK resumes with "-1").
_FROM_THE_START = frozenset({"-", "-1"})


Join = Annotated[JoinOptions, Depends(_join_options)]


async def _join_stream(
    request: Request,
    caller: Principal,
    run_id: uuid.UUID,
    thread_id: uuid.UUID | None,
    options: JoinOptions,
) -> Response:
    run = await _runs(request).get(caller, run_id, thread_id)
    await _runs(request).check_events(caller, run_id)
    return sse(
        request,
        caller,
        run,
        last_event_id=options.last_event_id,
        modes=options.modes,
        cancel_on_disconnect=options.cancel_on_disconnect,
    )


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_model=None)
async def join_run_stream(
    thread_id: uuid.UUID, run_id: uuid.UUID, request: Request, caller: Caller, options: Join
) -> Response:
    return await _held(request, caller, _join_stream(request, caller, run_id, thread_id, options))


@router.get("/runs/{run_id}/stream", response_model=None)
async def join_stateless_run_stream(
    run_id: uuid.UUID, request: Request, caller: Caller, options: Join
) -> Response:
    return await _held(request, caller, _join_stream(request, caller, run_id, None, options))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=None)
async def cancel_run(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    request: Request,
    caller: Caller,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    runs = _runs(request)
    await runs.cancel(caller, [run_id], thread_id=thread_id, action=action)
    if not wait:
        return Response(status_code=202)
    return await _held(request, caller, _join(request, caller, run_id, None))


@router.post("/runs/cancel", status_code=204)
async def cancel_runs(
    request: Request,
    caller: Caller,
    body: Annotated[CancelMany, Body()],
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> None:
    await _runs(request).cancel(
        caller, body.run_ids, thread_id=body.thread_id, status=body.status, action=action
    )
