"""SIGINT/SIGTERM of `tenantgraph serve` and `tenantgraph worker`: open streams end with a
`shutdown` event, long-polls are cut so the SDK rejoins, runs in flight go back to the
queue, the process exits within its grace period without a traceback, and no embedded
server it started outlives it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from tenantgraph.db.embedded import EmbeddedPostgres
from tenantgraph.embedded import EmbeddedValkey

from .api_fixtures import GRAPHS, Tenants, caller, start_api_server
from .run_helpers import until_status
from .servers import ServerProcess, free_port

GRACE = 5
# Exiting takes the grace period at most, plus closing the pool and Valkey (and uvicorn's
# own steps), on a machine the suite shares with other servers.
EXIT_DEADLINE = GRACE + 20


def _wait_exit(server: ServerProcess) -> int:
    deadline = time.monotonic() + EXIT_DEADLINE
    while (code := server.process.poll()) is None:
        assert time.monotonic() < deadline, f"still running:\n{server.log.read_text()}"
        time.sleep(0.05)
    return code


async def _queue_row(conninfo: str, run_id: str) -> tuple[str, int, str | None]:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute(
            "SELECT r.status, q.attempts, q.locked_by FROM tenantgraph.runs r"
            " JOIN tenantgraph.run_queue q USING (org_id, run_id) WHERE r.run_id = %s",
            (run_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("workers", "signals"),
    [("1", [signal.SIGINT, signal.SIGINT]), ("2", [signal.SIGTERM])],
    ids=["one-process-sigint-twice", "two-processes-sigterm"],
)
async def test_a_signal_ends_streams_hands_runs_back_and_exits(
    tmp_path: Path, fresh_database: str, workers: str, signals: list[signal.Signals]
):
    env = {
        "DATABASE_URL": fresh_database,
        "TENANTGRAPH_SERVE_WORKERS": workers,
        "TENANTGRAPH_SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }
    server = start_api_server(tmp_path, **env)
    gate = tmp_path / "gate"
    try:
        alice = Tenants.create(server.url).a_member
        thread = (await alice.sdk.threads.create())["thread_id"]
        stream = alice.sdk.runs.stream(
            thread,
            "gate",
            input={"opened": False},
            config={"configurable": {"gate": str(gate)}},
            stream_mode="values",
            stream_resumable=True,
        )
        parts = aiter(stream)
        first = await anext(parts)
        assert first.event == "metadata"
        run_id = first.data["run_id"]
        await until_status(alice.sdk, thread, run_id, "running")
        # A long-poll on the same run, answered by whichever process takes the connection.
        join = asyncio.create_task(alice.http.get(f"/threads/{thread}/runs/{run_id}/join"))
        await asyncio.sleep(0)

        for sig in signals:
            server.process.send_signal(sig)
        async with asyncio.timeout(EXIT_DEADLINE):
            rest = [p async for p in _until_shutdown(parts)]
        await stream.aclose()  # the SDK would reconnect: the server is gone
        last = rest[-1]
        assert (last.event, last.data) == (
            "shutdown",
            {"run_id": run_id, "reason": "server_shutdown"},
        )
        assert all(p.event != "end" for p in rest)
        # The join's body is cut, which the SDK's join answers by rejoining the Location.
        with pytest.raises(httpx.TransportError):
            async with asyncio.timeout(EXIT_DEADLINE):
                await join
        code = await asyncio.to_thread(_wait_exit, server)
        log = server.log.read_text()
        assert code in (0, -signal.SIGTERM), log
        assert "Traceback" not in log and "CancelledError" not in log, log
        assert " ERROR " not in log, log
        assert "Application shutdown complete" in log
    finally:
        if server.process.poll() is None:
            server.kill()

    status, attempts, locked_by = await _queue_row(fresh_database, run_id)
    assert (status, attempts, locked_by) == ("pending", 0, None)

    # The next server on the same data executes it to the end.
    again = start_api_server(tmp_path, **{**env, "TENANTGRAPH_SERVE_WORKERS": "1"})
    try:
        gate.touch()
        there = caller(again.url, alice.org, alice.user, alice.role).sdk
        run = await until_status(there, thread, run_id, "success", "error")
        assert run["status"] == "success"
        state = await there.threads.get_state(thread)
        assert state["values"] == {"opened": True}
    finally:
        again.terminate()


async def _until_shutdown(parts):
    async for part in parts:
        yield part
        if part.event == "shutdown":
            return


@pytest.mark.parametrize("command", ["worker", "serve --workers 2"])
def test_sigterm_while_starting_stops_the_embedded_servers(tmp_path: Path, command: str):
    """SIGTERM as soon as the process's embedded Postgres is starting: it finishes
    starting, then stops, and every server process its data dir recorded is gone."""
    config = tmp_path / "tenantgraph.json"
    config.write_text(json.dumps({"graphs": {"agent": GRAPHS["agent"]}}))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    args = [*command.split(), "--config", str(config)]
    if args[0] == "serve":
        args += ["--port", str(free_port())]
    log = tmp_path / "process.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tenantgraph.cli", *args],
            env={**env, "TENANTGRAPH_DATA_DIR": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    postmaster = EmbeddedPostgres(tmp_path).pgdata / "postmaster.pid"
    pidfiles = [postmaster, EmbeddedValkey(tmp_path).pidfile]
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    signalled = False
    try:
        while worker.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            seen |= _recorded_pids(pidfiles)
            if seen and not signalled:
                worker.send_signal(signal.SIGTERM)
                signalled = True
            time.sleep(0.01)
    finally:
        if worker.poll() is None:
            worker.kill()
    output = log.read_text()
    assert signalled, output
    assert worker.returncode == 0, output
    assert "Traceback" not in output, output
    alive = [pid for pid in seen if _running(pid)]
    assert not alive, f"embedded servers left running: {alive}\n{output}"


def _recorded_pids(pidfiles: list[Path]) -> set[int]:
    """The server pids the files record now (initdb's standalone backend writes a negative
    one to postmaster.pid: not a server that could be left running)."""
    pids = set()
    for path in pidfiles:
        try:
            first = path.read_text().split("\n", 1)[0].strip()
        except OSError:
            continue
        if first.isdigit():
            pids.add(int(first))
    return pids


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie has exited: only nobody reaped it yet)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
