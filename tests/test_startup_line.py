"""Every process says what it runs with, in its first line: version, absolute data dir,
config file, graphs and worker concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tenantgraph import __version__

from .ephemeral_app import valkey_url


@pytest.fixture
async def database(resources) -> str:
    """A database of its own: the worker claims no run of another test."""
    name = f"tenantgraph_startup_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(
        resources.admin_conninfo, autocommit=True
    ) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(**{**conninfo_to_dict(resources.admin_conninfo), "dbname": name})


def test_a_worker_prints_what_it_runs_with(database, settings, tmp_path):
    config = tmp_path / "tenantgraph.json"
    config.write_text(json.dumps({"graphs": {"agent": f"{os.getcwd()}/examples/echo.py:graph"}}))
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": valkey_url(settings),  # the session's servers: it starts none of its own
        "TENANTGRAPH_DATA_DIR": str(tmp_path),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tenantgraph.cli", "worker", "--concurrency", "3"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        first = worker.stderr.readline()
    finally:
        worker.terminate()
        worker.wait(30)
    assert first.startswith(f"tenantgraph {__version__}: data dir {tmp_path.resolve()}")
    assert f"config {config.resolve()}" in first
    assert "graphs agent" in first and "worker concurrency 3" in first


def test_the_server_logs_what_it_runs_with(api_url, data_dir):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        logs = [p.read_text() for p in data_dir.glob("serve-*.log")]
        if any(f"tenantgraph {__version__}: data dir {data_dir.resolve()}" in t for t in logs):
            break
        time.sleep(0.1)
    lines = [line for t in logs for line in t.splitlines() if "worker concurrency" in line]
    assert lines and f"data dir {data_dir.resolve()}" in lines[0]
    assert "graphs " in lines[0] and "agent" in lines[0]
