"""Runs across processes: a join served by another `tenantgraph serve`, Last-Event-ID
resumption, crons fired once by two servers, and `kill -9` with runs in flight."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from .api_fixtures import Tenants, caller, start_api_server
from .run_helpers import HI, slow, until_status
from .servers import ServerProcess

FAST_WORKER = {
    "TENANTGRAPH_WORKER_POLL_SECONDS": "0.1",
    "TENANTGRAPH_WORKER_CRON_SECONDS": "0.2",
    "TENANTGRAPH_WORKER_LEASE_SECONDS": "2",
    "TENANTGRAPH_WORKER_HEARTBEAT_SECONDS": "0.5",
}


@pytest.fixture(scope="module")
def second_server(api_url: str, api_env: dict[str, str], data_dir: Path) -> Iterator[ServerProcess]:
    """Another server on the session's database and Valkey, firing crons every 0.2 s."""
    server = start_api_server(data_dir, **api_env, **FAST_WORKER)
    yield server
    server.terminate()


def _same_user(url: str, on: object) -> object:
    """The caller `on` (a tests.api_fixtures.Caller) talking to the server at `url`."""
    return caller(url, on.org, on.user, on.role)


async def test_join_stream_from_another_server(tenants: Tenants, second_server):
    here = tenants.a_member
    there = _same_user(second_server.url, here)
    thread = (await here.sdk.threads.create())["thread_id"]
    run = await here.sdk.runs.create(
        thread,
        "custom",
        input={},
        config={"configurable": {"steps": 5, "delay": 0.1}},
        stream_mode=["custom", "values"],
    )
    joined = [(p.event, p.data) async for p in there.sdk.runs.join_stream(thread, run["run_id"])]
    assert [d for e, d in joined if e == "custom"] == [{"step": i, "of": 5} for i in range(1, 6)]
    assert joined[-1] == ("values", {"done": 5})
    assert (await there.sdk.runs.join(thread, run["run_id"])) == {"done": 5}
    # Another org asking the other server sees nothing.
    stranger = _same_user(second_server.url, tenants.b_member)
    missing = await stranger.http.get(f"/threads/{thread}/runs/{run['run_id']}/stream")
    assert missing.status_code == 404


async def test_resume_a_dropped_stream_with_last_event_id(tenants: Tenants, second_server):
    here = tenants.a_member
    thread = (await here.sdk.threads.create())["thread_id"]
    stream = here.sdk.runs.stream(
        thread,
        "custom",
        input={},
        config={"configurable": {"steps": 8, "delay": 0.1}},
        stream_mode="custom",
        stream_resumable=True,
    )
    seen = []
    async for part in stream:
        seen.append(part)
        if len(seen) == 3:
            break
    await stream.aclose()  # the connection drops; the run goes on
    assert all(p.id for p in seen)
    run_id = seen[0].data["run_id"]
    there = _same_user(second_server.url, here)
    rest = [p async for p in there.sdk.runs.join_stream(thread, run_id, last_event_id=seen[-1].id)]
    everything = [p async for p in here.sdk.runs.join_stream(thread, run_id)]
    assert [(p.event, p.data, p.id) for p in seen + rest] == [
        (p.event, p.data, p.id) for p in everything
    ]
    assert [p.data for p in everything if p.event == "custom"] == [
        {"step": i, "of": 8} for i in range(1, 9)
    ]
    assert len({p.id for p in everything}) == len(everything)


async def test_a_cron_fires_once_per_date_with_two_servers(tenants: Tenants, second_server):
    """Every second a date is due; two servers check 5 times a second (the session's
    server too, less often). Each date must give one run, never two: the runs are at most
    the whole seconds between the cron's creation and the last run's, by the database's
    own timestamps, so a stalled test or scheduler (missed dates fire once) cannot break
    the bound, and a date fired twice over 6 dates does."""
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    cron = await sdk.crons.create_for_thread(thread, "agent", schedule="* * * * * *", input=HI)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while len(runs := await sdk.runs.list(thread, limit=100)) < 6:
        assert loop.time() < deadline, runs
        await asyncio.sleep(0.2)
    await sdk.crons.delete(cron["cron_id"])
    created = datetime.fromisoformat(cron["created_at"]).timestamp()
    last = max(datetime.fromisoformat(r["created_at"]).timestamp() for r in runs)
    assert len(runs) <= math.floor(last) - math.floor(created) + 1, [r["created_at"] for r in runs]
    for run in runs:
        await sdk.runs.join(thread, run["run_id"])
    ended = {r["run_id"]: r["status"] for r in await sdk.runs.list(thread, limit=100)}
    assert {ended[r["run_id"]] for r in runs} == {"success"}


async def _attempts(sdk, thread_id: str, run_id: str, until: int | None = None) -> list[int]:
    """The attempts that began executing the run (its `metadata` events), read from its
    event stream; with `until`, stop as soon as that attempt has begun."""
    seen = []
    stream = sdk.runs.join_stream(thread_id, run_id)
    async for part in stream:
        if part.event == "metadata":
            seen.append(part.data["attempt"])
            if seen[-1] == until:
                break
    await stream.aclose()
    return seen


async def test_kill_9_with_runs_in_flight(tmp_path: Path):
    """A server dies with runs running and pending; after a restart every run ends in its
    documented state, none is lost and none completes twice (worker.py's crash rule)."""
    env = {**FAST_WORKER, "TENANTGRAPH_WORKER_CONCURRENCY": "2"}
    server = start_api_server(tmp_path, **env)
    try:
        tenants = Tenants.create(server.url)
        sdk = tenants.a_member.sdk
        created = []
        for _ in range(5):
            thread = (await sdk.threads.create())["thread_id"]
            created.append(await sdk.runs.create(thread, "slow", input={}, config=slow(8, 0.4)))
        first = created[0]
        await until_status(sdk, first["thread_id"], first["run_id"], "running")
        statuses = {
            r["run_id"]: (await sdk.runs.get(r["thread_id"], r["run_id"]))["status"]
            for r in created
        }
        assert "running" in statuses.values() and "pending" in statuses.values(), statuses
        server.kill()
        server = start_api_server(tmp_path, **env)
        sdk = _same_user(server.url, tenants.a_member).sdk
        for run in created:
            values = await sdk.runs.join(run["thread_id"], run["run_id"])
            assert (await sdk.runs.get(run["thread_id"], run["run_id"]))["status"] == "success"
            # Completed exactly once; a run running at the crash was claimed again
            # (attempt 2), which resumed from its last checkpoint.
            assert values["finished"] == [run["run_id"]]
            assert values["started"] == [f"{run['run_id']}:1"]
            assert values["ticks"] == 8
            attempts = await _attempts(sdk, run["thread_id"], run["run_id"])
            assert attempts == ([1, 2] if statuses[run["run_id"]] == "running" else [1])

        # Twice in a row: the second crash ends the run in `error` without a third attempt.
        thread = (await sdk.threads.create())["thread_id"]
        doomed = await sdk.runs.create(thread, "slow", input={}, config=slow(100, 0.1))
        for attempt in (1, 2):
            await _attempts(sdk, thread, doomed["run_id"], until=attempt)
            server.kill()
            server = start_api_server(tmp_path, **env)
            sdk = _same_user(server.url, tenants.a_member).sdk
        joined = await sdk.runs.join(thread, doomed["run_id"])
        assert "abandoned" in joined["__error__"]["message"]
        assert (await sdk.runs.get(thread, doomed["run_id"]))["status"] == "error"
        assert await _attempts(sdk, thread, doomed["run_id"]) == [1, 2]
        assert (await sdk.threads.get(thread))["status"] == "error"
        state = await sdk.threads.get_state(thread)
        # Each attempt was killed as soon as it began: it may have committed no checkpoint
        # (the first is held up to 10 ms), and then the thread has no values at all.
        assert not state["values"].get("finished")
        # The thread takes new runs.
        again = await sdk.runs.wait(thread, "slow", input={}, config=slow(1, 0))
        assert again["finished"][-1] != doomed["run_id"]
        assert (await sdk.threads.get(thread))["status"] == "idle"
    finally:
        server.terminate()
