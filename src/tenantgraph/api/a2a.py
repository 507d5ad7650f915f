"""A2A at `/a2a/{assistant_id}`, as langgraph-api serves it: JSON-RPC 2.0 of protocol 0.3
(`message/send`, `message/stream` over SSE, `tasks/get`, `tasks/cancel`) and the agent card.

An unknown assistant is the 404 of every route (before any JSON-RPC); everything after is a
JSON-RPC answer. A message without a `contextId` starts a thread of the caller's; one with
a `contextId` continues that thread, which must be the caller's (else "Task not found", as
for a missing one: no other user's thread is revealed or created). Runs go through the run
routes' own path (`queue_run`: run budget, webhooks, allow-list), so each task is a run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from a2a import types as a2a
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from tenantgraph.api.a2a_tasks import agent_card, final_state, run_input, run_state, task
from tenantgraph.api.deps import Caller, app_state
from tenantgraph.api.run_responses import KEEPALIVE_SECONDS, awaiting
from tenantgraph.api.runs import RunRequest, queue_run
from tenantgraph.errors import Forbidden, InvalidInput, NotFound
from tenantgraph.runtime import events
from tenantgraph.scope import Principal
from tenantgraph.services.runs import RunNotFound

__all__ = ["router"]

router = APIRouter(tags=["a2a"])

Json = dict[str, Any]
CARD = "/.well-known/agent-card.json"
_REQUESTS: dict[str, type[BaseModel]] = {
    "message/send": a2a.SendMessageRequest,
    "message/stream": a2a.SendStreamingMessageRequest,
    "tasks/get": a2a.GetTaskRequest,
    "tasks/cancel": a2a.CancelTaskRequest,
}


class _RpcError(Exception):
    """A JSON-RPC error answered in place of a result."""

    def __init__(self, error: BaseModel) -> None:
        self.error = error


def _dump(model: BaseModel) -> Json:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _answer(rpc_id: Any, result: BaseModel | None = None, error: BaseModel | None = None) -> Json:
    if error is not None:
        return _dump(a2a.JSONRPCErrorResponse(id=rpc_id, error=error))  # type: ignore[arg-type]
    assert result is not None
    return {"jsonrpc": "2.0", "id": rpc_id, "result": _dump(result)}


async def _assistant(request: Request, caller: Principal, assistant_id: str) -> Json:
    """The caller's org's assistant (404 when there is none, as on every route; 403 when
    the credential's allow-list leaves it out)."""
    assistant = await app_state(request).assistants.get(caller, assistant_id)
    if not caller.may_run(str(assistant["assistant_id"]), assistant["graph_id"]):
        raise Forbidden(f"this credential may not run assistant {assistant_id!r}")
    return assistant


def _json(raw: bytes) -> Json:
    """The request object (ParseError, or InvalidRequest when it is not one)."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _RpcError(a2a.JSONParseError()) from exc
    if not isinstance(body, dict):
        raise _RpcError(a2a.InvalidRequestError())
    return body


def _parse(body: Json) -> BaseModel:
    """The typed request of a JSON-RPC request object."""
    if body.get("jsonrpc") != "2.0" or not isinstance(body.get("method"), str):
        raise _RpcError(a2a.InvalidRequestError())
    model = _REQUESTS.get(body["method"])
    if model is None:
        raise _RpcError(a2a.MethodNotFoundError(data={"method": body["method"]}))
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        data = json.loads(json.dumps(errors, default=str))
        raise _RpcError(a2a.InvalidParamsError(data=data)) from None


@router.post("/a2a/{assistant_id}", response_model=None)
async def a2a_rpc(assistant_id: str, request: Request, caller: Caller) -> Response:
    """One JSON-RPC request of A2A 0.3 (batches are not part of the protocol)."""
    assistant = await _assistant(request, caller, assistant_id)
    rpc_id: Any = None
    try:
        body = _json(await request.body())
        rpc_id = body.get("id")
        rpc = _parse(body)
        if isinstance(rpc, a2a.SendStreamingMessageRequest):
            opened = _open_stream(request, caller, assistant, rpc_id, rpc.params)
            return await app_state(request).stream_slots.hold(caller, opened)
        if isinstance(rpc, a2a.SendMessageRequest):
            run, message = await _start(request, caller, assistant, rpc.params)
            blocking = rpc.params.configuration is None or rpc.params.configuration.blocking
            if blocking is False:
                return JSONResponse(_answer(rpc_id, task(run, run_state(run), history=[message])))
            return await awaiting(request, _finished(request, caller, rpc_id, run, message))
        if isinstance(rpc, a2a.GetTaskRequest):
            return JSONResponse(_answer(rpc_id, await _get(request, caller, assistant, rpc)))
        assert isinstance(rpc, a2a.CancelTaskRequest)
        return JSONResponse(_answer(rpc_id, await _cancel(request, caller, assistant, rpc)))
    except _RpcError as exc:
        return JSONResponse(_answer(rpc_id, error=exc.error))


async def _start(
    request: Request, caller: Principal, assistant: Json, params: a2a.MessageSendParams
) -> tuple[Json, a2a.Message]:
    """Queue the run of a user message: on its context's thread, or on a new one."""
    message = params.message
    if message.task_id is not None:
        raise _RpcError(
            a2a.UnsupportedOperationError(
                message="continuing a task is not supported: send a message in its context"
            )
        )
    try:
        body = RunRequest(
            assistant_id=str(assistant["assistant_id"]),
            input=run_input(message),
            metadata={"a2a_message_id": message.message_id},
            if_not_exists="reject" if message.context_id else "create",
        )
    except (InvalidInput, ValidationError) as exc:
        raise _RpcError(a2a.InvalidParamsError(message=str(exc))) from exc
    thread_id = _uuid(message.context_id) if message.context_id else uuid.uuid4()
    try:
        run = await queue_run(request, caller, thread_id, body)
    except RunNotFound as exc:
        raise _RpcError(a2a.TaskNotFoundError(message="Context not found")) from exc
    context_id = str(thread_id)
    message = message.model_copy(update={"context_id": context_id, "task_id": str(run["run_id"])})
    return run, message


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise _RpcError(a2a.TaskNotFoundError(message="Context not found")) from None


async def _finished(
    request: Request, caller: Principal, rpc_id: Any, run: Json, message: a2a.Message
) -> Json:
    """The answer to a blocking `message/send`: the task once its run has ended."""
    state = app_state(request)
    output = await state.runs.wait(caller, run, worker=state.worker)
    ended = await state.runs.get(caller, run["run_id"])
    return _answer(
        rpc_id,
        task(ended, final_state(ended["status"], output), output=output, history=[message]),
    )


async def _task_run(request: Request, caller: Principal, assistant: Json, task_id: str) -> Json:
    """The caller's run that is this agent's task `task_id` (TaskNotFound otherwise)."""
    try:
        run = await app_state(request).runs.get(caller, uuid.UUID(task_id))
    except (ValueError, NotFound):
        run = None
    if run is None or run["assistant_id"] != assistant["assistant_id"]:
        raise _RpcError(a2a.TaskNotFoundError())
    return run


async def _get(
    request: Request, caller: Principal, assistant: Json, rpc: a2a.GetTaskRequest
) -> a2a.Task:
    run = await _task_run(request, caller, assistant, rpc.params.id)
    if run["status"] in ("pending", "running"):
        return task(run, run_state(run))
    output = await app_state(request).runs.join(caller, run["run_id"])
    return task(run, final_state(run["status"], output), output=output)


async def _cancel(
    request: Request, caller: Principal, assistant: Json, rpc: a2a.CancelTaskRequest
) -> a2a.Task:
    """Cancel a pending or running task; a finished one is not cancelable."""
    run = await _task_run(request, caller, assistant, rpc.params.id)
    try:
        await app_state(request).runs.cancel(caller, [run["run_id"]])
    except RunNotFound as exc:  # it ended meanwhile (or had already)
        raise _RpcError(a2a.TaskNotCancelableError()) from exc
    return task(run, a2a.TaskState.canceled)


async def _open_stream(
    request: Request,
    caller: Principal,
    assistant: Json,
    rpc_id: Any,
    params: a2a.MessageSendParams,
) -> Response:
    """`message/stream`'s SSE response: the run's task events, or the one error that kept
    the run from starting (a streaming client reads errors from the stream too)."""
    try:
        run, message = await _start(request, caller, assistant, params)
        frames = _stream(request, caller, rpc_id, run, message)
    except _RpcError as exc:
        frames = _single(_frame(rpc_id, error=exc.error))
    return StreamingResponse(frames, media_type="text/event-stream")


async def _single(frame: bytes) -> AsyncIterator[bytes]:
    yield frame


def _frame(rpc_id: Any, result: BaseModel | None = None, error: BaseModel | None = None) -> bytes:
    return b"data: " + json.dumps(_answer(rpc_id, result, error)).encode() + b"\n\n"


async def _stream(
    request: Request, caller: Principal, rpc_id: Any, run: Json, message: a2a.Message
) -> AsyncIterator[bytes]:
    """`message/stream`: the task, a `working` status per new reply, then the artifact
    and the final status, each one JSON-RPC response in an SSE `data:` line."""
    runs = app_state(request).runs
    task_id, context_id = str(run["run_id"]), str(run["thread_id"])
    yield _frame(rpc_id, task(run, a2a.TaskState.submitted, history=[message]))
    result = events.RunResult()
    last_reply: a2a.Message | None = None
    async for event in runs.events(caller, run["run_id"], heartbeat_seconds=KEEPALIVE_SECONDS):
        if event is None:
            yield b": heartbeat\n\n"
            continue
        result.add(event.event, event.data)
        if event.event != "values":
            continue
        reply = task(run, a2a.TaskState.working, output=result.body()).status.message
        if reply is not None and reply != last_reply:
            last_reply = reply
            status = a2a.TaskStatus(state=a2a.TaskState.working, message=reply)
            yield _frame(rpc_id, _update(task_id, context_id, status, final=False))
    ended = await runs.get(caller, run["run_id"])
    output = result.body()
    done = task(ended, final_state(ended["status"], output), output=output)
    for artifact in done.artifacts or ():
        update = a2a.TaskArtifactUpdateEvent(
            task_id=task_id, context_id=context_id, artifact=artifact, last_chunk=True
        )
        yield _frame(rpc_id, update)
    yield _frame(rpc_id, _update(task_id, context_id, done.status, final=True))


def _update(
    task_id: str, context_id: str, status: a2a.TaskStatus, *, final: bool
) -> a2a.TaskStatusUpdateEvent:
    return a2a.TaskStatusUpdateEvent(
        task_id=task_id, context_id=context_id, status=status, final=final
    )


# --- agent cards -----------------------------------------------------------------------


def _card(request: Request, assistant: Json) -> Json:
    return _dump(agent_card(assistant, str(request.base_url)))


@router.get(CARD)
async def well_known_card(request: Request, caller: Caller, assistant_id: str = Query(...)) -> Json:
    """The agent card of `assistant_id`, at the well-known path langgraph-api uses."""
    return _card(request, await _assistant(request, caller, assistant_id))


@router.get("/a2a/{assistant_id}" + CARD)
async def agent_card_of(assistant_id: str, request: Request, caller: Caller) -> Json:
    """The agent card next to the agent's endpoint, where A2A clients look for it."""
    return _card(request, await _assistant(request, caller, assistant_id))
