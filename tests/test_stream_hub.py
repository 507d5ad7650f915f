"""The stream hub against the session's Valkey: many readers of one run through a pool of
three connections, resume by Last-Event-ID, a slow reader that loses nothing and holds up
no one, a new stream while the reader is blocked on another, and the ends of a stream."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator

import pytest

from tenantgraph.runtime import events
from tenantgraph.runtime.stream_hub import BLOCK_MS, StreamHub
from tenantgraph.scope import Principal, Role

from .ephemeral_app import valkey_client

# Long enough that only the wake-up can bring a new stream in before the deadline (on 3.12+
# the client's 5 s socket timeout bounds a block: there, the test checks delivery alone).
LONG_BLOCK_MS = 120_000 if sys.version_info < (3, 12) else 4_000
DEADLINE = 30


@pytest.fixture(params=[LONG_BLOCK_MS])
async def hub(settings, request) -> AsyncIterator[StreamHub]:
    """One reader and two connections for everything else, a backlog of 8 entries."""
    opened = StreamHub(
        valkey_client(settings, max_connections=3),
        readers=1,
        backlog=8,
        block_ms=request.param,
    )
    yield opened
    await opened.aclose()


@pytest.fixture
def alice(org_ids) -> Principal:
    return Principal(org_ids[0], "alice", Role.MEMBER)


async def _run(resources, principal: Principal) -> uuid.UUID:
    run_id = uuid.uuid4()
    await events.mark_created(resources.redis, principal, run_id, ttl=60)
    return run_id


async def _publish(resources, principal, run_id, n: int, start: int = 0) -> list[str]:
    """Append `n` custom events as a run's publisher does; returns their entry ids."""
    key = events.run_events_key(principal, run_id)
    ids = [
        await resources.redis.xadd(key, {b"event": b"custom", b"data": b"%d" % i})
        for i in range(start, start + n)
    ]
    return [i.decode() for i in ids]


async def _collect(hub: StreamHub, principal, run_id, last_event_id=None) -> list[int]:
    return [int(e.data) async for e in hub.read(principal, run_id, last_event_id) if e]


async def test_many_readers_of_one_run_share_the_hubs_three_connections(resources, hub, alice):
    run_id = await _run(resources, alice)
    readers = [asyncio.create_task(_collect(hub, alice, run_id)) for _ in range(60)]
    await _publish(resources, alice, run_id, 20)
    await events.publish_end(resources.redis, alice, run_id, "success", ttl=60)
    results = await asyncio.wait_for(asyncio.gather(*readers), DEADLINE)
    assert results == [list(range(20))] * 60


async def test_resume_after_last_event_id(resources, hub, alice):
    run_id = await _run(resources, alice)
    ids = await _publish(resources, alice, run_id, 5)
    live = asyncio.create_task(_collect(hub, alice, run_id, ids[1]))
    await _publish(resources, alice, run_id, 3, start=5)
    await events.publish_end(resources.redis, alice, run_id, "success", ttl=60)
    assert await asyncio.wait_for(live, DEADLINE) == [2, 3, 4, 5, 6, 7]
    # After the end: the same resume reads the stored events and stops at the end marker.
    assert await _collect(hub, alice, run_id, ids[3]) == [4, 5, 6, 7]


async def test_a_slow_reader_loses_nothing_and_holds_up_no_one(resources, hub, alice):
    run_id = await _run(resources, alice)
    await _publish(resources, alice, run_id, 1)
    slow = hub.read(alice, run_id)
    first = await anext(slow)  # following the stream; then it reads nothing for a while
    fast = asyncio.create_task(_collect(hub, alice, run_id))
    await _publish(resources, alice, run_id, 99, start=1)
    await events.publish_end(resources.redis, alice, run_id, "success", ttl=60)
    # The fast reader finishes while the slow one is 99 entries (12 backlogs) behind.
    assert await asyncio.wait_for(fast, DEADLINE) == list(range(100))
    rest = [int(e.data) async for e in slow if e]
    assert [int(first.data), *rest] == list(range(100))


async def test_a_new_stream_joins_while_the_reader_is_blocked(resources, hub, alice):
    quiet = await _run(resources, alice)
    waiting = asyncio.create_task(_collect(hub, alice, quiet))
    reader = hub._reader(events.run_events_key(alice, quiet))
    for _ in range(DEADLINE * 100):  # the reader is blocked on the quiet stream alone
        if reader.blocked_on:
            break
        await asyncio.sleep(0.01)
    busy = await _run(resources, alice)
    await _publish(resources, alice, busy, 1)
    joined = hub.read(alice, busy)
    first = await asyncio.wait_for(anext(joined), DEADLINE)  # read back, then following
    await _publish(resources, alice, busy, 1, start=1)
    live = await asyncio.wait_for(anext(joined), DEADLINE)  # handed over by the reader
    assert [int(first.data), int(live.data)] == [0, 1]
    await joined.aclose()
    await events.publish_end(resources.redis, alice, quiet, "success", ttl=60)
    assert await asyncio.wait_for(waiting, DEADLINE) == []


@pytest.mark.parametrize("hub", [BLOCK_MS], indirect=True)
async def test_heartbeats_readers_and_a_vanished_stream(resources, hub, alice, org_ids):
    run_id = await _run(resources, alice)
    bob = Principal(org_ids[0], "bob", Role.MEMBER)
    assert [e async for e in hub.read(bob, run_id)] == []  # not a reader of alice's run
    assert not await hub.readable(bob, run_id)
    quiet = hub.read(alice, run_id, heartbeat_seconds=0.05)
    assert await asyncio.wait_for(anext(quiet), DEADLINE) is None
    await quiet.aclose()
    gone = asyncio.create_task(_collect(hub, alice, run_id))
    await _publish(resources, alice, run_id, 1)
    await resources.redis.delete(events.run_events_key(alice, run_id))
    assert await asyncio.wait_for(gone, DEADLINE) in ([], [0])
