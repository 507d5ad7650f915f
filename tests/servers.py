"""Run `tenantgraph serve` as a real process, the way users and CI start it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The servers share one key, as the processes of a deployment with an external database must.
SECRET_KEY = "tenantgraph-tests-secret-key-0123456789"


async def create_database(admin_conninfo: str, name: str) -> str:
    """A new, empty database named `name` on the server of `admin_conninfo`; its conninfo.
    Server processes given it keep their rows (and runs) apart from every other test's."""
    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(**{**conninfo_to_dict(admin_conninfo), "dbname": name})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One `tenantgraph serve` child process with its own log file."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        config: Path | None = None,
        args: Sequence[str] = (),
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "tenantgraph.cli", "serve", "--port", str(self.port)]
        if config is not None:
            command += ["--config", str(config)]
        command += args
        inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        full_env = {
            **inherited,
            "TENANTGRAPH_DATA_DIR": str(data_dir),
            "TENANTGRAPH_SECRET_KEY": SECRET_KEY,
            **(env or {}),
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=full_env
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """`kill -9`: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as a service manager stops it; returns the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
