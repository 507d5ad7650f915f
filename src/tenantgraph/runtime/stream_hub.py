"""Run event streams read through a few Valkey connections, however many clients follow them.

Each SSE stream or join used to hold a connection in a blocking `XREAD` of its own, so one
user's 70 streams emptied the pool that rate limits, auth and run publishing share. The hub
has its own small pool: `readers` connections, each held by one reader that follows every
stream key hashed onto it with one blocking `XREAD` and hands entries to its subscribers
in-process, and `CONTROL_CONNECTIONS` for the short commands (who may read, catch-up
`XRANGE`, `EXISTS`, `CLIENT UNBLOCK`).

A key goes to reader `hash slot % readers`, so an org's streams (one hash tag, one slot)
share a reader. One reader's `XREAD` spans the slots hashed onto it, which a single server
accepts; on Valkey Cluster it would have to be split per slot (one `XREAD` cannot span
slots), and `ephemeral.client.connect` opens no cluster client today.

A subscriber first reads what the stream holds after its cursor with `XRANGE`, and follows
the reader once fewer than a batch remain. A key the reader is not following yet wakes it
with `CLIENT UNBLOCK` (its next `XREAD` names the key); the block time (`BLOCK_MS`) only
bounds how late a vanished stream is noticed. A subscriber that falls `backlog` entries
behind is not waited for: the reader lets it go, and once it has sent what it holds it reads
on from its own cursor with `XRANGE` as at the start. Nothing is lost or reordered; a slow
client only slows itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.crc import key_slot

from tenantgraph.runtime.events import CREATED, END, RunEvent, may_read, run_events_key
from tenantgraph.scope import Principal

__all__ = ["BLOCK_MS", "CONTROL_CONNECTIONS", "StreamHub"]

log = logging.getLogger(__name__)
CONTROL_CONNECTIONS = 8
_BATCH = 256
# Below the client's socket timeout (5 s on Python 3.12+, see ephemeral/client.py).
BLOCK_MS = 1000
Entry = tuple[str, dict[bytes, bytes]]


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entries(raw: Iterable[tuple[Any, dict[bytes, bytes]]]) -> list[Entry]:
    return [(i.decode() if isinstance(i, bytes) else i, fields) for i, fields in raw]


class _Subscription:
    """One client's place in one stream: the last id sent, whether the reader hands it
    entries (`following`, at most `limit` held unsent in `pending`) and up to which id it
    must read them itself first (`catch_up_to`), and why it stops (`gone`, `error`)."""

    def __init__(self, key: str, cursor: str, limit: int) -> None:
        self.key = key
        self.cursor = cursor
        self.limit = limit
        self.pending: collections.deque[Entry] = collections.deque()
        self.wake = asyncio.Event()
        self.following = False
        self.catch_up_to: str | None = None
        self.gone = False
        self.error: BaseException | None = None

    def offer(self, entries: list[Entry]) -> bool:
        """Called by the reader, never waits: False when the subscriber fell too far behind
        (the reader lets it go; it reads on with `XRANGE`)."""
        if len(self.pending) + len(entries) > self.limit:
            self.following = False
        else:
            self.pending.extend(entries)
        self.wake.set()
        return self.following

    def stop(self, error: BaseException | None = None) -> None:
        self.gone, self.error = True, error
        self.wake.set()


class _Feed:
    """A key its reader follows: the last id it read, and who wants the entries after it."""

    __slots__ = ("cursor", "subscriptions")

    def __init__(self, cursor: str) -> None:
        self.cursor = cursor
        self.subscriptions: set[_Subscription] = set()


class _Reader:
    """One connection in a blocking `XREAD` over every key hashed onto it."""

    def __init__(self, redis: aioredis.Redis, block_ms: int) -> None:
        self.redis, self.block_ms = redis, block_ms
        self.feeds: dict[str, _Feed] = {}
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.client_id: int | None = None
        self.blocked_on: frozenset[str] | None = None
        self.checked_at = 0.0

    def attach(self, subscription: _Subscription, after: str) -> tuple[str, bool]:
        """Hand the subscription its key's entries (read from `after` if no one follows the
        key yet); returns the id after which the reader hands them, and whether the reader
        must be woken to read a new key."""
        feed = self.feeds.get(subscription.key)
        new = feed is None
        if feed is None:
            feed = self.feeds[subscription.key] = _Feed(after)
        feed.subscriptions.add(subscription)
        subscription.following = True
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="stream-hub-reader")
        self.changed.set()
        return feed.cursor, new and self.blocked_on is not None and self.client_id is not None

    def detach(self, subscription: _Subscription) -> None:
        feed = self.feeds.get(subscription.key)
        if feed is not None:
            feed.subscriptions.discard(subscription)
            if not feed.subscriptions:
                del self.feeds[subscription.key]

    async def _run(self) -> None:
        connection = self.redis.client()  # one connection of the hub's pool, held
        try:
            while True:
                if not self.feeds:
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                try:
                    await self._read_once(connection)
                except Exception as exc:  # handed to every subscriber, which raises it
                    log.warning("stream reader failed: %r", exc)
                    self.client_id = None
                    for feed in self.feeds.values():
                        for subscription in feed.subscriptions:
                            subscription.stop(exc)
                    self.feeds.clear()
        finally:
            await connection.aclose()

    async def _read_once(self, connection: aioredis.Redis) -> None:
        if self.client_id is None:
            self.client_id = await connection.client_id()
        streams = {key: feed.cursor for key, feed in self.feeds.items()}
        self.blocked_on = frozenset(streams)
        try:
            reply = await connection.xread(streams, count=_BATCH, block=self.block_ms)  # type: ignore[arg-type]
        finally:
            self.blocked_on = None
        quiet = set(streams)
        for raw_key, raw_entries in reply or ():
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            quiet.discard(key)
            feed = self.feeds.get(key)
            if feed is None or feed.cursor != streams[key]:  # left, or followed anew, meanwhile
                continue
            entries = _entries(raw_entries)
            feed.cursor = entries[-1][0]
            feed.subscriptions = {s for s in feed.subscriptions if s.offer(entries)}
            if not feed.subscriptions or any(f[b"event"] == END for _, f in entries):
                del self.feeds[key]  # its subscribers stop at the end marker they hold
        loop = asyncio.get_running_loop()
        if loop.time() - self.checked_at >= self.block_ms / 1000:
            self.checked_at = loop.time()
            await self._drop_vanished(sorted(quiet))

    async def _drop_vanished(self, keys: list[str]) -> None:
        """Stop the subscribers of streams that expired or were purged (checked once per
        block time, among the keys that had nothing new)."""
        if not keys:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.exists(key)
            found = await pipe.execute()
        for key, exists in zip(keys, found, strict=True):
            feed = self.feeds.get(key)
            if not exists and feed is not None:
                del self.feeds[key]
                for subscription in feed.subscriptions:
                    subscription.stop()


class StreamHub:
    """The process's readers of run event streams (see the module docstring)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        readers: int,
        backlog: int = 1024,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.redis = redis
        self.backlog = backlog
        self._readers = [_Reader(redis, block_ms) for _ in range(readers)]

    async def readable(self, principal: Principal, run_id: uuid.UUID | str) -> bool:
        """Whether the run's stream exists and `principal` may read it."""
        return await may_read(self.redis, run_events_key(principal, run_id), principal)

    async def read(
        self,
        principal: Principal,
        run_id: uuid.UUID | str,
        last_event_id: str | None = None,
        *,
        heartbeat_seconds: float | None = None,
    ) -> AsyncIterator[RunEvent | None]:
        """The run's events after `last_event_id` (all of them if None), live until it ends.

        Stops at the end marker, or at once when the stream does not exist (unknown or
        expired run) or the principal may not read it (another user's run: org admins, the
        run's creator and its thread's owner may). With `heartbeat_seconds`, yields None
        after each quiet period of that length so the caller can send an SSE comment.
        """
        key = run_events_key(principal, run_id)
        if not await may_read(self.redis, key, principal):
            return
        subscription = _Subscription(key, last_event_id or "0-0", self.backlog)
        reader = self._readers[key_slot(key.encode()) % len(self._readers)]
        loop = asyncio.get_running_loop()
        try:
            quiet_since = loop.time()
            while True:
                entries = await self._next(reader, subscription, heartbeat_seconds, quiet_since)
                quiet_since = loop.time()
                if entries is None:
                    yield None
                    continue
                if not entries:  # the stream vanished
                    return
                for entry_id, fields in entries:
                    if _order(entry_id) <= _order(subscription.cursor):
                        continue
                    subscription.cursor = entry_id
                    name = fields[b"event"]
                    if name == END:
                        return
                    if name != CREATED:
                        yield RunEvent(entry_id, name.decode(), fields[b"data"])
        finally:
            reader.detach(subscription)

    async def _next(
        self,
        reader: _Reader,
        subscription: _Subscription,
        heartbeat_seconds: float | None,
        quiet_since: float,
    ) -> list[Entry] | None:
        """The next entries to send (maybe already sent ones: the caller skips those), [] when
        the stream vanished, or None when `heartbeat_seconds` passed since `quiet_since`."""
        while True:
            if subscription.pending:
                entries = list(subscription.pending)
                subscription.pending.clear()
                return entries
            if subscription.error is not None:
                raise subscription.error
            if subscription.gone:
                return []
            if not subscription.following or subscription.catch_up_to is not None:
                entries = await self._pull(reader, subscription)
                if entries:
                    return entries
                continue
            subscription.wake.clear()
            timeout = None
            if heartbeat_seconds is not None:
                timeout = heartbeat_seconds - (asyncio.get_running_loop().time() - quiet_since)
            try:
                await asyncio.wait_for(subscription.wake.wait(), timeout)
            except TimeoutError:
                return None

    async def _pull(self, reader: _Reader, subscription: _Subscription) -> list[Entry]:
        """Read on from the subscription's cursor with `XRANGE`; once fewer than a batch
        remain, follow the reader from there (or up to where the reader is, if it already
        follows the key)."""
        end = subscription.catch_up_to or "+"
        raw = await self.redis.xrange(
            subscription.key, min=f"({subscription.cursor}", max=end, count=_BATCH
        )
        entries = _entries(raw)
        last = entries[-1][0] if entries else subscription.cursor
        if subscription.catch_up_to is not None:
            if len(entries) < _BATCH or _order(last) >= _order(subscription.catch_up_to):
                subscription.catch_up_to = None
        elif len(entries) < _BATCH:
            live_from, wake = reader.attach(subscription, last)
            if _order(live_from) > _order(last):
                subscription.catch_up_to = live_from
            if wake:
                reader.blocked_on = None  # one wake-up is enough for every new key
                await self.redis.client_unblock(reader.client_id)  # type: ignore[arg-type]
        return entries

    async def aclose(self) -> None:
        """Stop the readers, then close the hub's connections."""
        tasks = [r.task for r in self._readers if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.redis.aclose()
