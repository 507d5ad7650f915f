"""The result of a run for `/join` and `/runs/wait`, and its events for the join streams,
whatever Valkey went through.

The run's stream is read to its end marker, then the output its worker recorded in
Postgres with the final status is the answer. When the stream cannot be read (Valkey is
out, or restarted empty, or the stream expired), the run's status is polled in Postgres
until it ends. An outage of Valkey or Postgres on the waiter's side is waited out, never
answered as the run's failure: the run goes on, and so does its waiter. A join stream
whose stream is gone follows the run in Postgres the same way and ends with the output
recorded there.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.client import VALKEY_DOWN
from tenantgraph.errors import NotFound, Unavailable
from tenantgraph.runtime import events
from tenantgraph.runtime.stream_hub import StreamHub
from tenantgraph.scope import Principal
from tenantgraph.stores import runs as store

__all__ = ["RunResults"]

log = logging.getLogger(__name__)

# What a waiter waits out: an unreachable Postgres (the pool's breaker raises Unavailable).
_POSTGRES_DOWN = (psycopg.OperationalError, Unavailable)
_POLL_SECONDS, _POLL_MAX_SECONDS = 0.2, 2.0


class RunResults:
    """`join` over one database and the process's stream readers; `not_found` is the error
    of an invisible run."""

    def __init__(
        self, db: Database, streams: StreamHub, not_found: type[NotFound] = NotFound
    ) -> None:
        self.db = db
        self.streams = streams
        self.not_found = not_found

    async def join(self, principal: Principal, run_id: uuid.UUID) -> Any:
        """Wait for the run to end and answer its output (see events.RunResult). Works
        after a stateless run deleted itself (from its stream); `not_found` when neither
        the stream nor the run is visible."""
        streamed = events.RunResult()
        readable = False
        try:
            readable = await self.streams.readable(principal, run_id)
            if readable:
                # To the end marker, written after the run's final status and output.
                async for event in self.streams.read(principal, run_id):
                    assert event is not None
                    streamed.add(event.event, event.data)
        except VALKEY_DOWN as exc:
            log.warning("join of run %s: its stream is out of reach (%r)", run_id, exc)
        seen = readable  # the run was visible: its deletion answers what was read
        delay = _POLL_SECONDS
        while True:
            try:
                outcome = await self._outcome(principal, run_id)
            except _POSTGRES_DOWN as exc:
                log.warning("join of run %s: Postgres is out of reach (%r)", run_id, exc)
            else:
                if outcome is None:  # deleted, or a stateless run that deleted itself
                    if seen:
                        return streamed.body()
                    raise self.not_found("Run not found")
                if outcome["status"] not in store.ACTIVE:
                    output = outcome["output"]
                    return streamed.body() if output is None else output
                seen = True
            # The stream is gone or out of reach while the run goes on.
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_SECONDS)

    async def check_events(self, principal: Principal, run_id: uuid.UUID) -> None:
        """Before a join stream's 200: Unavailable (503) while Valkey is out of reach."""
        try:
            await self.streams.readable(principal, run_id)
        except VALKEY_DOWN as exc:
            raise Unavailable("the run's events are out of reach; retry") from exc

    async def events(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        last_event_id: str | None = None,
        *,
        heartbeat_seconds: float | None = None,
    ) -> AsyncIterator[events.RunEvent | None]:
        """The run's events (StreamHub.read). While its stream is gone the run is followed
        in Postgres: a stream that comes back is read from `last_event_id`, a run that ends
        first answers its recorded output as one last `values` (or `error`) event without
        an id, and a run that is gone or invisible ends the stream at once."""
        loop = asyncio.get_running_loop()
        quiet_since, delay = loop.time(), _POLL_SECONDS
        while not await self.streams.readable(principal, run_id):
            outcome = await self._outcome(principal, run_id)
            if outcome is None:
                return
            if outcome["status"] not in store.ACTIVE:
                if (recorded := _recorded_event(outcome["output"])) is not None:
                    yield recorded
                return
            if heartbeat_seconds is not None and loop.time() - quiet_since >= heartbeat_seconds:
                quiet_since = loop.time()
                yield None
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_SECONDS)
        async for event in self.streams.read(
            principal, run_id, last_event_id, heartbeat_seconds=heartbeat_seconds
        ):
            yield event

    async def _outcome(self, principal: Principal, run_id: uuid.UUID) -> dict[str, Any] | None:
        async with self.db.tenant(principal) as conn:
            return await store.run_outcome(conn, principal, run_id)


def _recorded_event(output: Any) -> events.RunEvent | None:
    """The last event of a run rebuilt from its recorded output (events.RunResult.body)."""
    if output is None:
        return None
    if isinstance(output, dict) and "__error__" in output:
        return events.RunEvent("", "error", events.dumps(output["__error__"]))
    return events.RunEvent("", "values", events.dumps(output))
