"""On a cluster the stream hub reads per hash slot: 72 streams of three orgs (three slots)
are read by three blocking `XREAD`s, each naming the keys of one slot on the node serving
it, and once the streams end their connections go back."""

from __future__ import annotations

import asyncio
import uuid

from redis.crc import key_slot
from tests.ephemeral_app import valkey_client

from tenantgraph.runtime import events
from tenantgraph.runtime.stream_hub import StreamHub
from tenantgraph.scope import Principal, Role

from .valkey_cluster import ValkeyCluster

DEADLINE = 60
STREAMS_PER_ORG = 24


def _readers(cluster: ValkeyCluster, *, blocked: bool = True) -> list[tuple[int, dict]]:
    """(port, client) of every connection blocked in XREAD (or whose last command was
    XREAD), on every master."""
    found = []
    for port in cluster.ports:
        with cluster.node(port) as node:
            for client in node.client_list():
                if client["cmd"] == "xread" and ("b" in client["flags"] or not blocked):
                    found.append((port, client))
    return found


async def test_streams_of_three_orgs_are_read_by_one_xread_per_slot(
    resources, settings, valkey_cluster: ValkeyCluster
):
    hub = StreamHub(valkey_client(settings, max_connections=3), readers=1)
    suffix = uuid.uuid4().hex[:8]
    orgs = [f"org-{n}-{suffix}" for n in range(3)]
    assert len({key_slot(o.encode()) for o in orgs}) == 3
    runs = []
    for org in orgs:
        principal = Principal(org, "alice", Role.MEMBER)
        for _ in range(STREAMS_PER_ORG):
            run_id = uuid.uuid4()
            await events.mark_created(resources.redis, principal, run_id, ttl=60)
            runs.append((principal, run_id))
    readers = [asyncio.create_task(_collect(hub, principal, run_id)) for principal, run_id in runs]
    try:
        await _until(lambda: len(_readers(valkey_cluster)) >= len(orgs))
        blocked = _readers(valkey_cluster)
        assert len(blocked) == len(orgs)  # one per slot, not one per stream
        owners = sorted(valkey_cluster.owner(key_slot(o.encode())) for o in orgs)
        assert sorted(port for port, _ in blocked) == owners
        for principal, run_id in runs:
            key = events.run_events_key(principal, run_id)
            await resources.redis.xadd(key, {b"event": b"custom", b"data": b"1"})
            await events.publish_end(resources.redis, principal, run_id, "success", ttl=60)
        results = await asyncio.wait_for(asyncio.gather(*readers), DEADLINE)
        assert results == [[1]] * len(runs)
        await _until(lambda: not _readers(valkey_cluster, blocked=False))  # connections go back
    finally:
        await hub.aclose()


async def _collect(hub: StreamHub, principal: Principal, run_id: uuid.UUID) -> list[int]:
    return [int(e.data) async for e in hub.read(principal, run_id) if e]


async def _until(condition) -> None:
    for _ in range(DEADLINE * 20):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the deadline")
