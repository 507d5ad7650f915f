"""Run event streams read through a few Valkey connections, however many clients follow them.

Each SSE stream or join used to hold a connection in a blocking `XREAD` of its own, so one
user's 70 streams emptied the pool that rate limits, auth and run publishing share. The hub
has its own small pool: `readers` connections, each held by one reader that follows every
stream key hashed onto it with one blocking `XREAD` and hands entries to its subscribers
in-process, and `CONTROL_CONNECTIONS` for the short commands (who may read, catch-up
`XRANGE`, `EXISTS`, `CLIENT UNBLOCK`).

On a single server a key goes to reader `hash slot % readers`, so an org's streams (one hash
tag, one slot) share a reader, whose one `XREAD` spans every slot hashed onto it. On Valkey
Cluster one `XREAD` cannot span slots: there each slot with streams followed in the process
has a reader of its own, holding one connection to the node that serves the slot while it
has streams, so the connections grow with the orgs streaming, not with the streams. When
the slot moves (`MOVED`) the reader reconnects to its new node from the same cursors; while
it is migrating (`ASK`, `TRYAGAIN`) the reader polls its keys through the cluster client,
which follows the redirections.

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
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, TryAgainError

from tenantgraph.ephemeral.client import Client, node_client
from tenantgraph.runtime.events import CREATED, END, RunEvent, may_read, run_events_key
from tenantgraph.scope import Principal

__all__ = ["BLOCK_MS", "CONTROL_CONNECTIONS", "StreamHub"]

log = logging.getLogger(__name__)
CONTROL_CONNECTIONS = 8
_BATCH = 256
# Below the client's socket timeout (5 s on Python 3.12+, see ephemeral/client.py).
BLOCK_MS = 1000
# Between two polls of a slot that is migrating between two nodes of a cluster.
_MIGRATING_POLL_SECONDS = 0.05
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


async def _close(connection: aioredis.Redis | None) -> None:
    if connection is not None:
        await connection.aclose()


class _Reader:
    """One connection in a blocking `XREAD` over every key hashed onto it (on a cluster:
    the keys of `slot`, through a connection to the node serving it, held while it has
    keys to follow)."""

    def __init__(self, redis: Client, block_ms: int, slot: int | None = None) -> None:
        self.redis, self.block_ms, self.slot = redis, block_ms, slot
        self.feeds: dict[str, _Feed] = {}
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.client_id: int | None = None
        self.node: tuple[str, int] | None = None
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

    async def unblock(self) -> None:
        """End the reader's blocking `XREAD` now, so its next one names a new key."""
        self.blocked_on = None  # one wake-up is enough for every new key
        client_id = self.client_id
        if self.slot is None:
            await self.redis.client_unblock(client_id)  # type: ignore[arg-type]
        elif self.node is not None:
            assert isinstance(self.redis, RedisCluster)
            node = self.redis.get_node(*self.node)
            if node is not None:
                await self.redis.client_unblock(client_id, target_nodes=node)  # type: ignore[arg-type, call-arg]

    async def _connect(self) -> aioredis.Redis:
        """A connection of the hub's pool, or on a cluster one to the node of the slot."""
        if self.slot is None:
            return self.redis.client()  # type: ignore[union-attr]
        if self.node is None:
            assert isinstance(self.redis, RedisCluster)
            await self.redis.initialize()
            node = self.redis.nodes_manager.get_node_from_slot(self.slot)
            self.node = (node.host, node.port)
        return node_client(*self.node)

    async def _run(self) -> None:
        connection: aioredis.Redis | None = None
        try:
            while True:
                if not self.feeds:
                    if self.slot is not None:  # its connection goes back till the slot has keys
                        self.task, self.client_id = None, None  # the next key starts a new task
                        return
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                try:
                    if connection is None:
                        connection = await self._connect()
                    await self._read_once(connection)
                except MovedError as moved:  # the slot is served elsewhere now: follow it
                    self.client_id, self.node = None, (moved.host, int(moved.port))
                    await _close(connection)
                    connection = None
                except (AskError, TryAgainError):  # the slot is moving: its keys on two nodes
                    await self._poll_migrating()
                    await asyncio.sleep(_MIGRATING_POLL_SECONDS)
                except Exception as exc:  # handed to every subscriber, which raises it
                    log.warning("stream reader failed: %r", exc)
                    self.client_id = None
                    if self.slot is not None:  # find the slot's node again (a failover)
                        self.node = None
                        await _close(connection)
                        connection = None
                    for feed in self.feeds.values():
                        for subscription in feed.subscriptions:
                            subscription.stop(exc)
                    self.feeds.clear()
        finally:
            await _close(connection)

    async def _read_once(self, connection: aioredis.Redis) -> None:
        if self.client_id is None:
            self.client_id = await connection.client_id()
        streams = {key: feed.cursor for key, feed in self.feeds.items()}
        self.blocked_on = frozenset(streams)
        try:
            reply = await connection.xread(streams, count=_BATCH, block=self.block_ms)  # type: ignore[arg-type]
        finally:
            self.blocked_on = None
        quiet = self._hand_out(streams, reply)
        loop = asyncio.get_running_loop()
        if loop.time() - self.checked_at >= self.block_ms / 1000:
            self.checked_at = loop.time()
            await self._drop_vanished(sorted(quiet))

    async def _poll_migrating(self) -> None:
        """One key at a time without blocking, through the cluster client (which sends
        `ASKING` to the node a key already moved to)."""
        for key, feed in list(self.feeds.items()):
            reply = await self.redis.xread({key: feed.cursor}, count=_BATCH)
            self._hand_out({key: feed.cursor}, reply)

    def _hand_out(self, streams: dict[str, str], reply: Any) -> set[str]:
        """Give each key's new entries to its subscribers; returns the keys with none."""
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
        return quiet

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
        redis: Client,
        *,
        readers: int,
        backlog: int = 1024,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.redis = redis
        self.backlog = backlog
        self.block_ms = block_ms
        self._cluster = isinstance(redis, RedisCluster)
        self._readers = [] if self._cluster else [_Reader(redis, block_ms) for _ in range(readers)]
        self._slot_readers: dict[int, _Reader] = {}

    def _reader(self, key: str) -> _Reader:
        slot = key_slot(key.encode())
        if not self._cluster:
            return self._readers[slot % len(self._readers)]
        reader = self._slot_readers.get(slot)
        if reader is None:
            reader = self._slot_readers[slot] = _Reader(self.redis, self.block_ms, slot)
        return reader

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
        reader = self._reader(key)
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
                await reader.unblock()
        return entries

    async def aclose(self) -> None:
        """Stop the readers, then close the hub's connections."""
        readers = [*self._readers, *self._slot_readers.values()]
        tasks = [r.task for r in readers if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.redis.aclose()
