"""A thread's stream (`GET /threads/{id}/stream`): the events of every run that goes through
the thread while the client listens, each run closed by a `run_done` metadata event, as
the LangGraph API streams a thread. It lasts until the client leaves.

Runs are found in Postgres (the thread's active runs, and those changed since the join
or since the client's `Last-Event-ID`) and each is read from its own event stream from
its start (or after that id), so a run that starts and ends between two looks is not
missed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from tenantgraph.db.database import Database
from tenantgraph.runtime import events
from tenantgraph.runtime.events import RunEvent
from tenantgraph.scope import Principal
from tenantgraph.services.runs import Runs
from tenantgraph.services.threads import Threads
from tenantgraph.stores import runs as run_store

__all__ = ["RUN_MODES", "THREAD_MODES", "ThreadStreams"]

# The thread stream's own modes (langgraph-sdk's ThreadStreamMode); `state_update` is not
# streamed here, so it is refused rather than accepted and never sent.
RUN_MODES, LIFECYCLE = "run_modes", "lifecycle"
THREAD_MODES = frozenset({RUN_MODES, LIFECYCLE})
_LOOK_SECONDS = 1.0  # how often an open thread stream looks for the thread's new runs


def _since(last_event_id: str | None) -> datetime:
    """Runs changed after this time may have events the client has not seen: the join's
    moment, or the time of its `Last-Event-ID` (stream ids start with milliseconds)."""
    if last_event_id is not None:
        try:
            return datetime.fromtimestamp(int(last_event_id.split("-", 1)[0]) / 1000, UTC)
        except (OverflowError, OSError, ValueError):  # an id from beyond any clock
            pass
    return datetime.now(UTC)


def _wanted(event: RunEvent, modes: frozenset[str]) -> bool:
    """Whether a thread stream asking for `modes` sends a run's `event`: every event for
    `run_modes`, a run's start for `lifecycle`, and those of the named run stream modes."""
    if RUN_MODES in modes:
        return True
    if LIFECYCLE in modes and event.event == "metadata":
        return True
    return bool(modes - THREAD_MODES) and events.mode_matches(event.event, modes - THREAD_MODES)


class ThreadStreams:
    """Thread streams over the run use cases (each run's events) and one database (which
    runs go through the thread)."""

    def __init__(self, db: Database, threads: Threads, runs: Runs) -> None:
        self.db = db
        self.threads = threads
        self.runs = runs

    async def check(self, principal: Principal, thread_id: uuid.UUID) -> None:
        """NotFound (404) before the stream starts when the caller cannot see the thread."""
        await self.threads.get(principal, thread_id)

    async def follow(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        *,
        last_event_id: str | None,
        modes: frozenset[str],
        heartbeat_seconds: float,
    ) -> AsyncIterator[RunEvent | None]:
        """The thread's run events after `last_event_id` as they come, None after each quiet
        `heartbeat_seconds`; never ends by itself."""
        since = _since(last_event_id)
        queue: asyncio.Queue[RunEvent] = asyncio.Queue()
        readers: dict[uuid.UUID, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        try:
            quiet_since = loop.time()
            while True:
                async with self.db.tenant(principal) as conn:
                    found = await run_store.thread_runs_since(conn, principal, thread_id, since)
                for run in found:
                    if run["run_id"] not in readers:
                        readers[run["run_id"]] = asyncio.create_task(
                            self._read(principal, run["run_id"], last_event_id, modes, queue)
                        )
                deadline = loop.time() + _LOOK_SECONDS
                while (left := deadline - loop.time()) > 0:
                    try:
                        event = await asyncio.wait_for(queue.get(), left)
                    except TimeoutError:
                        break
                    quiet_since = loop.time()
                    yield event
                if loop.time() - quiet_since >= heartbeat_seconds:
                    quiet_since = loop.time()
                    yield None
        finally:
            for task in readers.values():
                task.cancel()
            await asyncio.gather(*readers.values(), return_exceptions=True)

    async def _read(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        last_event_id: str | None,
        modes: frozenset[str],
        queue: asyncio.Queue[RunEvent],
    ) -> None:
        async for event in self.runs.events(principal, run_id, last_event_id):
            if event is not None and _wanted(event, modes):
                await queue.put(event)
        done = {"status": "run_done", "run_id": str(run_id)}
        await queue.put(RunEvent("", "metadata", events.dumps(done)))
