"""One org's hash slot moves to another master while its runs stream through a
`tenantgraph serve` on the cluster: every client gets every event of its run once and in
order, the runs finish, a stream joined after the move reads the run from its start, and
no event ever waited for Valkey (redis-py and the stream hub follow `ASK` while the slot
migrates, `MOVED` after)."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot
from tests.api_fixtures import Tenants, start_api_server

from .valkey_cluster import ValkeyCluster

RUNS = 6
STEPS = 100
DEADLINE = 120


@pytest.fixture(scope="module")
def server(api_env, tmp_path_factory):
    """A server of this test's own, whose log it reads."""
    server = start_api_server(tmp_path_factory.mktemp("reshard"), **api_env)
    yield server
    server.terminate()


async def test_a_slot_moves_while_its_org_streams(server, valkey_cluster: ValkeyCluster):
    tenants = Tenants.create(server.url)
    sdk = tenants.a_member.sdk
    slot = key_slot(tenants.a_member.org.encode())
    target = next(p for p in valkey_cluster.ports if p != valkey_cluster.owner(slot))
    threads = [(await sdk.threads.create())["thread_id"] for _ in range(RUNS)]
    steps: dict[str, list[int]] = {t: [] for t in threads}
    run_ids: dict[str, str] = {}
    progressed = asyncio.Event()

    async def follow(thread: str) -> None:
        config = {"configurable": {"steps": STEPS, "delay": 0.1}}
        stream = sdk.runs.stream(thread, "custom", input={}, stream_mode="custom", config=config)
        async for part in stream:
            if part.event == "metadata":
                run_ids[thread] = part.data["run_id"]
            elif part.event == "custom":
                steps[thread].append(part.data["step"])
                progressed.set()

    async def all_past(counts: dict[str, int], more: int) -> None:
        """Until every stream received `more` events after `counts` (or all of them)."""
        while any(len(steps[t]) < min(counts[t] + more, STEPS) for t in threads):
            progressed.clear()
            await progressed.wait()

    followers = asyncio.gather(*(follow(t) for t in threads))
    async with asyncio.timeout(DEADLINE):
        await all_past(dict.fromkeys(threads, 0), 3)
        await asyncio.to_thread(valkey_cluster.begin_move, slot, target)
        left = await asyncio.to_thread(valkey_cluster.migrate_keys, slot, target, RUNS // 2)
        assert left > 0  # half the org's keys on each master: the streams go on meanwhile
        await all_past({t: len(steps[t]) for t in threads}, 3)
        while await asyncio.to_thread(valkey_cluster.migrate_keys, slot, target, 100):
            pass
        await asyncio.to_thread(valkey_cluster.finish_move, slot, target)
        joined = sdk.runs.join_stream(threads[0], run_ids[threads[0]], stream_mode="custom")
        late = [p.data["step"] async for p in joined if p.event == "custom"]
        await followers
    assert valkey_cluster.owner(slot) == target
    assert steps == {t: list(range(1, STEPS + 1)) for t in threads}
    assert late == list(range(1, STEPS + 1))
    for thread in threads:
        assert (await sdk.runs.get(thread, run_ids[thread]))["status"] == "success"
    assert "events wait in memory" not in server.log.read_text()
