"""Starting the two servers side by side: `langgraph dev` from a virtualenv that has
langgraph-cli[inmem], and `tenantgraph serve`, each on a free port with the same config.

Shared by the conformance harness (run.py) and the peer bench (bench/peer_bench.py).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

__all__ = [
    "Server",
    "free_port",
    "start_langgraph_dev",
    "start_tenantgraph",
    "tenantgraph_key",
    "write_config",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server child process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, command: list[str], log: Path, cwd: Path, env: dict[str, str]):
        self.name, self.log = name, log
        self.port = int(command[command.index("--port") + 1])
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited early; its log:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        sys.exit(f"{self.name} not ready in {timeout}s; its log:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def write_config(work: Path, graphs: Mapping[str, Path]) -> Path:
    """One langgraph.json for both servers: graph name → module file (its `graph`), by
    absolute path (langgraph dev resolves them from its working directory), and the
    `dependencies` langgraph dev requires."""
    config = work / "langgraph.json"
    specs = {name: f"{module.resolve()}:graph" for name, module in graphs.items()}
    config.write_text(json.dumps({"dependencies": ["."], "graphs": specs}, indent=2))
    return config


def tenantgraph_key(tenantgraph: list[str], env: dict[str, str], org: str, user: str) -> str:
    """An owner key of a fresh org, made with the CLI before the server starts."""
    subprocess.run([*tenantgraph, "orgs", "create", org, "--owner", user], env=env, check=True)
    made = subprocess.run(
        [*tenantgraph, "keys", "create", "--org", org, "--user", user, "--role", "owner"],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return made.stdout.strip().splitlines()[-1]


def start_tenantgraph(
    tenantgraph: list[str], config: Path, work: Path, env: dict[str, str]
) -> Server:
    """`tenantgraph serve` on a free port, logging to work/tenantgraph.log (not yet ready)."""
    command = [*tenantgraph, "serve", "--port", str(free_port()), "--config", str(config)]
    return Server("tenantgraph", command, work / "tenantgraph.log", work, env)


def start_langgraph_dev(
    langgraph: Path, config: Path, work: Path, inherited: Mapping[str, str], log: str
) -> Server:
    """`langgraph dev` (in-memory, no reload, no tracing) on a free port, run in
    work/langgraph-dev and logging to work/<log> (not yet ready)."""
    cwd = work / "langgraph-dev"
    cwd.mkdir(exist_ok=True)
    env = {**inherited, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    env.pop("LANGSMITH_API_KEY", None)
    command = [
        str(langgraph),
        "dev",
        "--no-browser",
        "--no-reload",
        "--port",
        str(free_port()),
        "--config",
        str(config),
    ]
    return Server("langgraph dev", command, work / log, cwd, env)
