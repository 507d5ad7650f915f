"""Every process says what it runs with, in its first line: version, absolute data dir,
config file, graphs and worker concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tenantgraph import __version__

from .ephemeral_app import valkey_url
from .servers import SECRET_KEY


def test_a_worker_prints_what_it_runs_with(fresh_database, settings, tmp_path):
    """In a database of its own, so the worker claims no run of another test."""
    config = tmp_path / "tenantgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {"agent": f"{os.getcwd()}/examples/echo.py:graph"},
                "dependencies": ["."],
                "python_version": "3.11",
                "grpahs": {},
            }
        )
    )
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "TENANTGRAPH_SECRET_KEY": SECRET_KEY,
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
    # A langgraph.json's build-time keys are said to be no-ops; a misspelt key is a warning.
    assert "build-time config keys, no-ops here: dependencies, python_version" in first
    assert "WARNING: unknown config keys, ignored: grpahs" in first


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
