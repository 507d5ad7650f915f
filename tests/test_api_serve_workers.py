"""`tenantgraph serve --workers 2`: two server processes on one port, one data directory."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx
import psutil

from tenantgraph.db.embedded import EmbeddedPostgres
from tenantgraph.embedded import EmbeddedValkey

from .api_fixtures import Tenants, caller, start_api_server
from .run_helpers import HI


def _requests_of(text: str, route: str) -> float:
    pattern = rf'tenantgraph_http_requests_total{{method="GET",route="{route}",status="200"}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def test_two_worker_processes_serve_runs_and_share_state(tmp_path: Path):
    server = start_api_server(tmp_path, TENANTGRAPH_SERVE_WORKERS="2")
    try:
        workers = [
            p
            for p in psutil.Process(server.process.pid).children()
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(workers) == 2
        # Both processes opened their resources and worker (one lifespan each).
        deadline = asyncio.get_running_loop().time() + 30
        while server.log.read_text().count("Application startup complete") < 2:
            assert asyncio.get_running_loop().time() < deadline, server.log.read_text()
            await asyncio.sleep(0.1)

        # Runs from many connections at once, whichever process accepted each one.
        tenants = Tenants.create(server.url)
        callers = [Tenants.create(server.url).a_member.sdk for _ in range(8)]
        threads = [(await sdk.threads.create())["thread_id"] for sdk in callers]
        results = await asyncio.gather(
            *(sdk.runs.wait(t, "agent", input=HI) for sdk, t in zip(callers, threads, strict=True))
        )
        assert all(r["messages"][-1]["content"] == "echo: hi" for r in results)

        # A run created on one connection is joined on others: state lives in Postgres
        # and Valkey, not in the process that took the run.
        sdk = tenants.a_member.sdk
        thread = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(thread, "agent", input=HI)
        here = tenants.a_member
        for _ in range(4):
            there = caller(server.url, here.org, here.user, here.role)  # a new connection
            joined = await there.sdk.runs.join(thread, run["run_id"])
            assert joined["messages"][-1]["content"] == "echo: hi"

        # /metrics counts the requests of both processes, whichever one answers: 40 new
        # connections reach both (each writes its own samples file), and every reading
        # holds all 40, which no single process served.
        async with httpx.AsyncClient(base_url=server.url) as client:
            before = _requests_of((await client.get("/metrics")).text, "/ok")
        for _ in range(40):
            async with httpx.AsyncClient(base_url=server.url) as client:  # a new connection
                assert (await client.get("/ok")).status_code == 200
        samples = await asyncio.to_thread(
            os.listdir, workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"]
        )
        assert {f"counter_{p.pid}.db" for p in workers} <= set(samples)
        for _ in range(4):
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert _requests_of((await client.get("/metrics")).text, "/ok") == before + 40
    finally:
        assert server.terminate() == 0
    # The parent held the embedded servers; the last holder stopped them.
    assert EmbeddedPostgres(tmp_path).pid() is None
    assert EmbeddedValkey(tmp_path).pid() is None
