"""The process holding the embedded servers restarts one that dies (`kill -9` of the pid its
data dir records), says so in its log, and service resumes."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
from tests.api_fixtures import mint, start_api_server

from tenantgraph.db.embedded import EmbeddedPostgres
from tenantgraph.embedded import EmbeddedValkey


def _recorded_pid(path: Path) -> int:
    """The pid a server wrote into its data dir (first line of its pid file)."""
    return int(path.read_text().splitlines()[0])


def _until(condition, deadline: float, what: str):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline}s: {what}")


def test_killed_embedded_servers_are_restarted_by_their_holder(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_api_server(data_dir, TENANTGRAPH_PG_SHARED_BUFFERS_MB="128")
    token = mint(f"org-{uuid.uuid4().hex[:6]}", "alice")
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    def served() -> bool:
        try:
            thread = http.post("/threads", json={})
            if thread.status_code != 200:
                return False
            run = http.post(
                f"/threads/{thread.json()['thread_id']}/runs/wait",
                json={"assistant_id": "agent", "input": {"messages": []}},
            )
            return run.status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert served()
        servers = [
            ("Valkey", EmbeddedValkey(data_dir), data_dir / "valkey" / "valkey.pid"),
            ("Postgres", EmbeddedPostgres(data_dir), data_dir / "pg" / "postmaster.pid"),
        ]
        for name, embedded, pidfile in servers:
            killed = _recorded_pid(pidfile)
            os.kill(killed, signal.SIGKILL)
            _until(
                lambda embedded=embedded, killed=killed: embedded.pid() not in (None, killed),
                60,
                f"embedded {name} restarted",
            )
            _until(served, 60, f"service after {name} restarted")
            said = f"embedded {name} had died; restarted it"
            _until(lambda said=said: said in server.log.read_text(), 30, f"the log says: {said}")
    finally:
        http.close()
        server.terminate()
