"""How a run is answered over HTTP: its SSE stream, and the long poll of `wait` and `join`
(keep-alive bytes until the result), each ended by the server's shutdown in a way the SDK
reconnects from; the Location headers the SDK follows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Send

from tenantgraph.api.deps import app_state
from tenantgraph.api.shutdown import Shutdown, cutting_off
from tenantgraph.runtime import events
from tenantgraph.scope import Principal

__all__ = ["KEEPALIVE_SECONDS", "awaiting", "run_path", "sse"]

Json = dict[str, Any]
KEEPALIVE_SECONDS = 5.0


async def awaiting(
    request: Request, result: Awaitable[Any], headers: dict[str, str] | None = None
) -> Response:
    """The JSON result of a run, as the LangGraph API sends `wait` and `join`.

    A result (or an error such as 404) ready within a few seconds is an ordinary response;
    otherwise the 200 starts at once and a newline goes out every few seconds until the
    result follows, so proxies and clients keep the connection open.
    """
    shutdown = app_state(request).shutdown
    task = asyncio.ensure_future(result)
    if await shutdown.race(task, KEEPALIVE_SECONDS):
        return Response(events.dumps(task.result()), media_type="application/json", headers=headers)
    return _LongPoll(task, shutdown, headers)


class _LongPoll(StreamingResponse):
    """A result that is not ready yet: newlines until it is. The server's shutdown cuts
    the body off unfinished, which the SDK's `wait` and `join` answer by reconnecting to
    the `Location` (the run's `join`), as after any dropped connection: the run goes on."""

    def __init__(self, task: asyncio.Future[Any], shutdown: Shutdown, headers: Any) -> None:
        self.answered = False
        super().__init__(self._body(task, shutdown), media_type="application/json", headers=headers)

    async def _body(self, task: asyncio.Future[Any], shutdown: Shutdown) -> AsyncIterator[bytes]:
        try:
            while not await shutdown.race(task, KEEPALIVE_SECONDS):
                if shutdown.started:
                    return
                yield b"\n"
            self.answered = True
            yield events.dumps(task.result())
        finally:
            task.cancel()

    async def stream_response(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.answered:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            cutting_off("a wait for a run's result")


def sse(
    request: Request,
    caller: Principal,
    run: Json,
    *,
    last_event_id: str | None = None,
    modes: list[str] | None = None,
    cancel_on_disconnect: bool = False,
) -> StreamingResponse:
    runs = app_state(request).runs
    resumable = bool(run["kwargs"].get("resumable"))

    shutdown = app_state(request).shutdown

    async def frames() -> AsyncIterator[bytes]:
        finished = False
        try:
            async for event in shutdown.until_started(
                runs.events(
                    caller, run["run_id"], last_event_id, heartbeat_seconds=KEEPALIVE_SECONDS
                )
            ):
                if event is None:
                    yield b": heartbeat\r\n\r\n"
                elif modes is None or events.mode_matches(event.event, modes):
                    yield events.format_sse(event, with_id=resumable)
            if shutdown.started:
                yield _shutdown_frame(run)
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                with contextlib.suppress(Exception):
                    await runs.cancel(caller, [run["run_id"]], thread_id=run["thread_id"])

    path = run_path(run)
    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Location": f"{path}/stream", "Content-Location": path},
    )


def _shutdown_frame(run: Json) -> bytes:
    """The last event of a stream the server's shutdown ends (not `end` or `error`: the run
    goes on, so the SDK checks it and reconnects). No `id`: a resumable client resumes
    from the last event it got."""
    data = {"run_id": str(run["run_id"]), "reason": "server_shutdown"}
    return events.format_sse(events.RunEvent("", "shutdown", events.dumps(data)), with_id=False)


def run_path(run: Json) -> str:
    if run.get("thread_id") and not run["kwargs"].get("temporary"):
        return f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return f"/runs/{run['run_id']}"
