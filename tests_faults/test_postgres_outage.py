"""Postgres killed for 20 s under a running server (supervision off, so the outage lasts):
requests answer 503 with Retry-After, service returns once Postgres does, no acknowledged
write is lost, and long runs resume and finish."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from tests.api_fixtures import caller, start_api_server

from tenantgraph.db.embedded import EmbeddedPostgres

OUTAGE_SECONDS = 20
STEPS = 150  # a long run: 15 s of ticks, started before the kill


class Load:
    """Clients creating threads and putting store items in a loop; keeps what was
    acknowledged and every status seen."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.threads: list[str] = []
        self.items: dict[str, int] = {}
        self.statuses: Counter[int] = Counter()
        self.retry_after: list[str | None] = []
        self.stop = asyncio.Event()

    async def client(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                created = await self.http.post("/threads", json={})
                self._seen(created)
                if created.status_code == 200:
                    self.threads.append(created.json()["thread_id"])
                key = f"k-{n}-{i}"
                put = await self.http.put(
                    "/store/items", json={"namespace": ["soak"], "key": key, "value": {"i": i}}
                )
                self._seen(put)
                if put.status_code == 204:
                    self.items[key] = i
            except httpx.TransportError:
                self.statuses[0] += 1
            await asyncio.sleep(0.05)

    def _seen(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            self.retry_after.append(response.headers.get("Retry-After"))


async def _until(condition, deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {deadline}s: {what}")


async def test_postgres_killed_for_20_seconds(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_api_server(
        data_dir,
        TENANTGRAPH_SUPERVISE_EMBEDDED="false",
        TENANTGRAPH_PG_SHARED_BUFFERS_MB="128",
        # Shorter than the outage: the long runs lose their lease and are retried.
        TENANTGRAPH_WORKER_LEASE_SECONDS="8",
    )
    user = caller(server.url, f"org-{uuid.uuid4().hex[:6]}", "alice", "member")
    http = user.http
    postgres = EmbeddedPostgres(data_dir)
    try:
        runs = []
        for _ in range(3):
            thread = (await http.post("/threads", json={})).json()["thread_id"]
            run = await http.post(
                f"/threads/{thread}/runs",
                json={
                    "assistant_id": "slow",
                    "input": {"finished": []},
                    "config": {"configurable": {"steps": STEPS, "delay": 0.1}},
                },
            )
            assert run.status_code == 200, run.text
            runs.append((thread, run.json()["run_id"]))

        async def started() -> bool:
            states = [(await http.get(f"/threads/{t}/state")).json() for t, _ in runs]
            return all(s["values"].get("ticks", 0) >= 3 for s in states)

        await _until(started, 60, "the long runs under way")

        load = Load(http)
        clients = [asyncio.create_task(load.client(n)) for n in range(4)]
        await _until(lambda: _true(len(load.items) >= 10), 60, "load acknowledged")

        pid = postgres.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: _true(load.statuses[503] > 0), 30, "a 503 after the kill")
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself: nothing restarts Postgres
        assert postgres.pid() is None, "supervision is off: Postgres stays down"
        during = Counter(load.statuses)
        await asyncio.to_thread(postgres.revive)

        async def served() -> bool:
            return (await http.post("/threads", json={})).status_code == 200

        await _until(served, 30, "service after Postgres returned")
        acknowledged = len(load.items)
        await _until(lambda: _true(len(load.items) >= acknowledged + 10), 60, "load served")
        load.stop.set()
        await asyncio.gather(*clients)

        assert during[503] > 0 and set(load.retry_after) <= {"1"} and None not in load.retry_after
        assert load.statuses[500] == 0, load.statuses
        assert load.statuses[0] == 0, "a request found no server"

        for thread_id in load.threads:
            assert (await http.get(f"/threads/{thread_id}")).status_code == 200
        for key, i in load.items.items():
            got = await http.get("/store/items", params={"namespace": "soak", "key": key})
            assert got.status_code == 200 and got.json()["value"] == {"i": i}, key

        async def finished() -> bool:
            done = [(await http.get(f"/threads/{t}/runs/{r}")).json()["status"] for t, r in runs]
            assert "error" not in done
            return all(status == "success" for status in done)

        await _until(finished, 180, "the long runs finished")
        for thread_id, run_id in runs:
            values = (await http.get(f"/threads/{thread_id}/state")).json()["values"]
            assert values["ticks"] == STEPS
            assert values["started"] == [f"{run_id}:1"], "a retry ran the graph from its input"
    finally:
        await http.aclose()
        server.terminate()


async def _true(value: bool) -> bool:
    return value
