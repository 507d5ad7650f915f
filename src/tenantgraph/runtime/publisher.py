"""Publishing one run's events to its Valkey stream, through Valkey outages.

While Valkey answers, each event is appended at once, one round trip, as the executor has
always done. When it does not, the event and every later one wait in memory, in order, and
a background task retries with backoff while the run goes on executing: its lease lives in
Postgres, so an outage never looks like a stopped worker. Past `max_bytes` of waiting
events the oldest intermediate ones are dropped (logged); the `metadata` events, the latest
`values`, any `error` and the end marker are kept, so a reader still gets the outcome.
Waiting events are given up after `give_up_seconds` (the stream's TTL: by then they would
have expired anyway).

A stream missing when events are appended (Valkey restarted empty, or the stream expired
while its run was queued) is opened again with its `__created__` entry, readers read from
Postgres, in the same script: a run in flight during an outage is readable again.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from tenantgraph.runtime import events
from tenantgraph.scope import Principal

__all__ = ["DEFAULT_BUFFER_BYTES", "Readers", "RunPublisher", "append_script"]

log = logging.getLogger(__name__)

DEFAULT_BUFFER_BYTES = 4 * 2**20
_RETRY_FIRST, _RETRY_MAX = 0.1, 2.0
# A Valkey that accepts but does not answer (stopped, overloaded) must not hold the run up.
_SEND_SECONDS = 5.0
_BATCH = 1000  # entries per script call: a backlog is sent in slices, not one long script
# Never dropped from a full buffer (with the latest `values`): what a reader needs to know
# which attempt it reads and how the run ended.
_KEPT = frozenset({b"metadata", b"error", events.end_entry("", "")[0]})

# KEYS[1]: the stream. ARGV: TTL in seconds, the `__created__` entry's data ('' when
# unknown), then event, data pairs. A missing stream without that data: nothing is written
# and 0 comes back (the caller reads the readers and calls again).
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    if ARGV[2] == '' then return 0 end
    redis.call('XADD', KEYS[1], '*', 'event', '__created__', 'data', ARGV[2])
end
for i = 3, #ARGV, 2 do
    redis.call('XADD', KEYS[1], '*', 'event', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def append_script(redis: aioredis.Redis) -> AsyncScript:
    """The append script on `redis`, registered once per client and shared by publishers."""
    return redis.register_script(_APPEND)


# Who may read a run's stream besides the org's admins (the run's creator and its thread's
# owner), read from Postgres when the stream must be opened again.
Readers = Callable[[], Awaitable[list[str]]]


class RunPublisher:
    """The events of one run, appended in order; `publish` never raises for an outage."""

    def __init__(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        readers: Readers,
        script: AsyncScript,
        on_drained: Callable[[RunPublisher], None],
        *,
        ttl: int,
        max_bytes: int = DEFAULT_BUFFER_BYTES,
        background: set[asyncio.Task[None]],
    ) -> None:
        self.principal = principal
        self.run_id = run_id
        self.readers = readers
        self.on_drained = on_drained
        self.ttl = ttl
        self.max_bytes = max_bytes
        self.key = events.run_events_key(principal, run_id)
        self.dropped = 0
        self._append = script
        self._pending: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self._bytes = 0
        self._sending = 0  # entries at the front being written now: never dropped
        self._lock = asyncio.Lock()
        self._retrying: asyncio.Task[None] | None = None
        self._background = background
        self.released = False  # no execution uses it: forgotten once nothing waits

    @property
    def retrying(self) -> bool:
        """Events wait for Valkey: a later execution of the run must append after them."""
        return self._retrying is not None

    @property
    def pending(self) -> int:
        """Events not in Valkey yet."""
        return len(self._pending)

    async def publish(self, event: bytes, data: bytes) -> None:
        """Append one event, or keep it for the background retry while Valkey is out."""
        self._pending.append((event, data))
        self._bytes += len(event) + len(data)
        if self._retrying is not None:
            self._bound()
            return
        try:
            await self._flush()
        except Exception as exc:
            log.warning("run %s: events wait in memory (Valkey: %r)", self.run_id, exc)
            self._bound()
            self._retrying = asyncio.create_task(self._retry(), name=f"events {self.run_id}")
            self._background.add(self._retrying)
            self._retrying.add_done_callback(self._background.discard)

    async def _flush(self) -> None:
        """Write every pending event in order (a missing stream is opened again)."""
        async with self._lock, asyncio.timeout(_SEND_SECONDS):
            while self._pending:
                batch = list(itertools.islice(self._pending, _BATCH))
                self._sending = len(batch)
                try:
                    args: list[bytes | int | str] = [self.ttl, b""]
                    for event, data in batch:
                        args += [event, data]
                    if not await self._append(keys=[self.key], args=args):
                        _, created = events.created_entry(self.principal, await self.readers())
                        args[1] = created
                        await self._append(keys=[self.key], args=args)
                finally:
                    self._sending = 0
                for _ in batch:
                    event, data = self._pending.popleft()
                    self._bytes -= len(event) + len(data)

    async def _retry(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.ttl
        delay = _RETRY_FIRST
        while loop.time() < give_up:
            await asyncio.sleep(delay)
            try:
                await self._flush()
            except Exception as exc:
                log.debug("run %s: events still wait (%r)", self.run_id, exc)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            self._retrying = None
            self.on_drained(self)
            if self.dropped:
                log.warning(
                    "run %s: Valkey is back; %d events were dropped while it was out",
                    self.run_id,
                    self.dropped,
                )
            return
        log.error(
            "run %s: Valkey out for %ds, %d events given up", self.run_id, self.ttl, self.pending
        )
        self._pending.clear()
        self._bytes = 0
        self._retrying = None
        self.on_drained(self)

    def _bound(self) -> None:
        """Past `max_bytes`, drop the oldest droppable events down to 3/4 of it."""
        if self._bytes <= self.max_bytes:
            return
        entries = list(self._pending)
        latest_values = max((i for i, (e, _) in enumerate(entries) if e == b"values"), default=-1)
        excess = self._bytes - self.max_bytes * 3 // 4
        kept = entries[: self._sending]
        for i in range(self._sending, len(entries)):
            event, data = entries[i]
            if excess > 0 and i != latest_values and event not in _KEPT:
                excess -= len(event) + len(data)
                self._bytes -= len(event) + len(data)
                self.dropped += 1
            else:
                kept.append(entries[i])
        self._pending = collections.deque(kept)
