"""Valkey killed for 90 s under a server executing runs, then restarted empty: every run
succeeds in its first attempt, waiters get the outcome, joins and join streams answer the
outputs; during the outage, what needs Valkey is a 503 with Retry-After and the rest is
served. The server's Valkey is the test's own (REDIS_URL), so nothing restarts it early."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
import orjson
import pytest
from tests.api_fixtures import caller, start_api_server
from tests.own_valkey import OwnValkey
from tests.run_helpers import slow, until

OUTAGE_SECONDS = 90
# Ticks of 1 s: the shorter runs end during the outage, the longer ones after it.
STEPS = [15, 30, 45, 60, 75, 100, 110, 120]
WAITED_STEPS = [40, 105]
TERMINAL = {"success", "error", "interrupted", "timeout"}


async def _statuses(http: httpx.AsyncClient, runs: dict[str, str]) -> dict[str, str]:
    found = {}
    for run_id, thread_id in runs.items():
        found[run_id] = (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"]
    return found


@pytest.mark.timeout(600)
async def test_runs_outlive_a_90s_valkey_outage(api_env, data_dir, tmp_path, org_ids):
    valkey = OwnValkey(tmp_path / "valkey")
    valkey.start()
    server = start_api_server(
        data_dir / f"valkey-outage-{uuid.uuid4().hex[:6]}",
        REDIS_URL=valkey.url,
        TENANTGRAPH_WORKER_CONCURRENCY=str(len(STEPS) + len(WAITED_STEPS)),
        **api_env,
    )
    alice = caller(server.url, org_ids[0], "alice", "member")
    waiters = httpx.AsyncClient(base_url=server.url, headers=alice.http.headers, timeout=600)
    loop = asyncio.get_running_loop()
    try:
        item = {"namespace": ["notes"], "key": "k", "value": {"v": 1}}
        assert (await alice.http.put("/store/items", json=item)).status_code == 204
        runs: dict[str, str] = {}  # run id → thread id
        steps: dict[str, int] = {}
        for count in STEPS:
            thread = (await alice.http.post("/threads", json={})).json()
            body = {"assistant_id": "slow", "input": {}, "config": slow(count, 1.0)}
            run = (await alice.http.post(f"/threads/{thread['thread_id']}/runs", json=body)).json()
            runs[run["run_id"]], steps[run["run_id"]] = thread["thread_id"], count
        waits = []
        for count in WAITED_STEPS:
            thread = (await alice.http.post("/threads", json={})).json()
            body = {"assistant_id": "slow", "input": {}, "config": slow(count, 1.0)}
            path = f"/threads/{thread['thread_id']}/runs/wait"
            waits.append(asyncio.ensure_future(waiters.post(path, json=body)))

        async def all_running() -> bool:
            return set((await _statuses(alice.http, runs)).values()) == {"running"}

        await until(all_running)

        valkey.kill()
        outage_ends = loop.time() + OUTAGE_SECONDS
        # Held open: nothing restarts this Valkey. No run fails meanwhile.
        while loop.time() < outage_ends:
            statuses = await _statuses(alice.http, runs)
            assert set(statuses.values()) <= {"running", "success"}, statuses
            await asyncio.sleep(1)
        assert "success" in statuses.values() and "running" in statuses.values()
        # Still out: what needs Valkey is refused, the rest served.
        ready = await alice.http.get("/ready")
        assert ready.status_code == 503 and ready.json()["valkey"] == "unavailable"
        assert int(ready.headers["retry-after"]) >= 1
        thread_id = next(iter(runs.values()))
        body = {"assistant_id": "slow", "input": {}}
        refused = await alice.http.post(f"/threads/{thread_id}/runs", json=body)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
        got = await alice.http.get("/store/items", params={"namespace": "notes", "key": "k"})
        assert got.status_code == 200 and got.json()["value"] == {"v": 1}

        valkey.restart()

        async def ended() -> dict[str, str] | None:
            statuses = await _statuses(alice.http, runs)
            return statuses if set(statuses.values()) <= TERMINAL else None

        statuses = await until(ended, 180)
        assert set(statuses.values()) == {"success"}, statuses

        for run_id, thread_id in runs.items():
            joined = await alice.http.get(f"/threads/{thread_id}/runs/{run_id}/join")
            output = joined.json()
            assert output["started"] == [f"{run_id}:1"]
            history = await alice.http.post(f"/threads/{thread_id}/history", json={"limit": 500})
            attempts = {state["metadata"].get("run_attempt") for state in history.json()}
            assert attempts == {1}, attempts  # every step ran in attempt 1: no retry
            assert output["ticks"] == steps[run_id] and output["finished"] == [run_id]
            # The stream, lost with the old server, was opened again with the final values.
            stream = await alice.http.get(f"/threads/{thread_id}/runs/{run_id}/stream")
            frames = [f for f in stream.text.split("\r\n\r\n") if f.startswith("event: values")]
            assert frames, stream.text
            final = frames[-1].split("\r\ndata: ", 1)[1].split("\r\n", 1)[0]
            assert orjson.loads(final) == output

        for count, waited in zip(WAITED_STEPS, await asyncio.gather(*waits), strict=True):
            assert waited.status_code == 200
            output = orjson.loads(waited.content)
            run_id = waited.headers["content-location"].rsplit("/", 1)[1]
            assert output["started"] == [f"{run_id}:1"] and output["ticks"] == count
    finally:
        await waiters.aclose()
        await alice.http.aclose()
        server.terminate()
        with contextlib.suppress(Exception):
            valkey.stop()
