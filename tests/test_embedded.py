"""Embedded servers: shared between processes, durable across kill -9, stopped cleanly."""

import json

import httpx
import psutil
import psycopg
import pytest

from tenantgraph.db.embedded import EmbeddedPostgres
from tenantgraph.embedded import EmbeddedValkey

from .servers import ServerProcess


def _committed_rows(pg: EmbeddedPostgres) -> int:
    with psycopg.connect(pg.conninfo()) as conn:
        return conn.execute("SELECT count(*) FROM crash_probe").fetchone()[0]


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_kill_9_keeps_committed_rows_and_a_second_server_reuses(data_dir):
    first = ServerProcess(data_dir, env={"TENANTGRAPH_PG_SHARED_BUFFERS_MB": "128"})
    first.wait_ready()
    pg = EmbeddedPostgres(data_dir)
    postmaster = pg.pid()
    assert postmaster is not None
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE TABLE crash_probe (n int)")
        conn.execute("INSERT INTO crash_probe SELECT generate_series(1, 500)")

    second = ServerProcess(data_dir)
    second.wait_ready()
    assert pg.pid() == postmaster, "the second server must reuse the running Postgres"
    holders = json.loads((data_dir / "holders.json").read_text())
    assert sorted(holders) == sorted([first.process.pid, second.process.pid])

    first.kill()
    second.kill()
    assert pg.pid() == postmaster and _committed_rows(pg) == 500

    # Now the database server itself dies without a shutdown checkpoint.
    psutil.Process(postmaster).kill()
    psutil.Process(postmaster).wait(10) if psutil.pid_exists(postmaster) else None

    third = ServerProcess(data_dir)
    third.wait_ready()
    assert pg.pid() not in (None, postmaster), "a fresh Postgres replaced the killed one"
    assert _committed_rows(pg) == 500
    assert httpx.get(f"{third.url}/info").json()["version"]

    valkey = EmbeddedValkey(data_dir)
    valkey_pid = valkey.pid()
    assert valkey_pid is not None
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it.
    assert third.terminate() in (0, -15)
    assert "Application shutdown complete" in third.log.read_text()
    assert pg.pid() is None, "the last holder stops Postgres on a clean shutdown"
    assert not psutil.pid_exists(valkey_pid), "and Valkey"
    assert json.loads((data_dir / "holders.json").read_text()) == []


def test_server_started_twice_in_one_process_is_reused(data_dir):
    pg = EmbeddedPostgres(data_dir, shared_buffers_mb=128)
    pg.start()
    try:
        again = EmbeddedPostgres(data_dir, shared_buffers_mb=128)
        assert again.start() == pg.conninfo()
        again.stop()
        assert pg.is_running(), "one holder left: the server stays up"
    finally:
        pg.stop()
    assert not pg.is_running()
