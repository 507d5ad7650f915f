"""This tree against a baseline commit, side by side, under the same load at the same time.

A change to the run path is worth 5-10% at most by now, and this machine's speed swings by
±30% from one minute to the next: two benches minutes apart cannot tell such a change from
the weather. Here both servers are loaded at once, so a slow spell slows both, and each
round's ratio (tree / baseline) is the measure.

The baseline's `src/` is taken with `git archive` into the scratch dir and served with this
tree's virtualenv (so a baseline needing other dependencies cannot be compared here). Each
server has its own embedded Postgres and Valkey, rate limits lifted, and serves
bench/graphs/store_once.py. Per round, both get the same load through langgraph-sdk from
this one process (its calls interleave fairly):

  runs:   runs.wait on fresh threads at --clients clients (threads made beforehand)
  store:  store.put_item then store.get_item at one client
  state:  threads.update_state then threads.get_state of one thread at one client

and print the CPU per call of each side's server, Postgres and Valkey, its calls/s and
median latency, then tree / baseline for each: median [min-max] over the rounds. Each phase
starts on both sides at once; the slower side ends its phase alone, which flatters it, so a
difference is understated, never overstated. A baseline equal to the tree (an A/A run)
shows the harness's own spread.

Run: .venv/bin/python bench/ab_bench.py --baseline HEAD~1 [--load runs] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
from langgraph_sdk import get_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peer_bench import GRAPH, GRAPH_FILE, run_once  # noqa: E402
from bench.runs_bench import _UNLIMITED, _tree_cpu_seconds  # noqa: E402
from conformance.peers import Server, start_tenantgraph, tenantgraph_key, write_config  # noqa: E402

from tenantgraph.db.embedded import EmbeddedPostgres  # noqa: E402
from tenantgraph.embedded import EmbeddedValkey  # noqa: E402

PARTS = ("server", "postgres", "valkey")


def baseline_source(revision: str, scratch: Path) -> tuple[Path, str]:
    """`src/` of `revision`, unpacked under `scratch`, and the commit it names."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = scratch / f"baseline-{commit}"
    if not (target / "src").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "src"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src", commit


class Side:
    """One server under test: its process, its key and where its CPU goes."""

    def __init__(self, name: str, server: Server, key: str, data_dir: Path) -> None:
        self.name, self.server = name, server
        self.client = get_client(url=server.url, api_key=key, timeout=120)
        self.processes = {
            "server": psutil.Process(server.process.pid),
            "postgres": psutil.Process(EmbeddedPostgres(data_dir).pid()),
            "valkey": psutil.Process(EmbeddedValkey(data_dir).pid()),
        }

    def cpu(self) -> dict[str, float]:
        return {part: _tree_cpu_seconds(p) for part, p in self.processes.items()}

    async def wait(self, thread_id: str) -> None:
        await run_once(self.client, thread_id)

    async def measure(
        self, calls: int, clients: int, call: Callable[[int], Awaitable[None]]
    ) -> dict[str, float]:
        """`calls` calls of `call(i)` from `clients` concurrent callers: calls/s, median
        ms and the CPU ms per call of each part."""
        latencies: list[float] = []
        numbers = iter(range(calls))

        async def caller() -> None:
            for i in numbers:
                started = time.perf_counter()
                await call(i)
                latencies.append((time.perf_counter() - started) * 1000)

        before, started = self.cpu(), time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        elapsed, after = time.perf_counter() - started, self.cpu()
        result = {part: (after[part] - before[part]) / calls * 1000 for part in PARTS}
        return {**result, "calls/s": calls / elapsed, "median ms": statistics.median(latencies)}


async def one_round(
    number: int, sides: list[Side], args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Both sides under the same load at once: {side: {metric: value}}."""
    namespace = ["ab", f"round-{number}"]

    async def phases(side: Side) -> list[tuple[str, int, Callable[[int], Awaitable[None]]]]:
        """The side's load as (name, clients, call) phases, with what they need made."""
        if args.load == "runs":
            threads = [(await side.client.threads.create())["thread_id"] for _ in range(args.calls)]
            return [("runs.wait", args.clients, lambda i: side.wait(threads[i]))]
        if args.load == "store":
            store = side.client.store
            return [
                ("put", 1, lambda i: store.put_item(namespace, f"k{i}", {"n": i})),
                ("get", 1, lambda i: store.get_item(namespace, f"k{i}")),
            ]
        threads = side.client.threads
        thread = (await threads.create())["thread_id"]
        await side.wait(thread)  # the thread's graph is known from its first run

        async def update(i: int) -> None:  # one message replaced (its id), not appended
            message = {"id": "edited", "role": "user", "content": f"edit {i}"}
            await threads.update_state(thread, {"messages": [message]})

        return [("update_state", 1, update), ("get_state", 1, lambda _: threads.get_state(thread))]

    # Warm both first (a fresh process runs slower for its first calls), then measure. Each
    # phase starts on both sides at once: a side done sooner must not run its next phase
    # beside the other's heavier one.
    for side in sides:
        for thread in [(await side.client.threads.create())["thread_id"] for _ in range(10)]:
            await side.wait(thread)
    prepared = await asyncio.gather(*(phases(side) for side in sides))
    result: dict[str, dict[str, float]] = {side.name: {} for side in sides}
    for at_once in zip(*prepared, strict=True):
        measured = await asyncio.gather(
            *(
                side.measure(args.calls, clients, call)
                for side, (_, clients, call) in zip(sides, at_once, strict=True)
            )
        )
        for side, (name, _, _), values in zip(sides, at_once, measured, strict=True):
            result[side.name].update({f"{name} {k}": v for k, v in values.items()})
    print(f"\nround {number}")
    for side in sides:
        line = "  ".join(f"{k} {v:.2f}" for k, v in result[side.name].items())
        print(f"  {side.name:8} {line}")
    return result


def report(rounds: list[dict[str, dict[str, float]]]) -> None:
    print(f"\ntree / baseline over {len(rounds)} rounds: median [min-max]")
    for metric in rounds[0]["tree"]:
        ratios = [r["tree"][metric] / r["baseline"][metric] for r in rounds]
        tree = statistics.median(r["tree"][metric] for r in rounds)
        base = statistics.median(r["baseline"][metric] for r in rounds)
        print(
            f"  {metric:24} {statistics.median(ratios):5.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"
            f"   (tree {tree:.2f}, baseline {base:.2f})"
        )


async def run(args: argparse.Namespace) -> None:
    # Stopped unattended (SIGTERM, or SIGINT in the background), it still stops its servers.
    task = asyncio.current_task()
    assert task is not None
    for stop in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(stop, task.cancel)
    scratch: Path = args.scratch
    work = scratch / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source, commit = baseline_source(args.baseline, scratch)
    print(f"tree {args.tree} against baseline {commit}; load {args.load}, {os.cpu_count()} cores")
    config = write_config(work, {GRAPH: GRAPH_FILE})
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    tenantgraph = [sys.executable, "-m", "tenantgraph.cli"]
    servers: list[Server] = []
    try:
        sides = []
        for name, pythonpath in (("tree", None), ("baseline", source)):
            home = work / name
            home.mkdir()
            env = {**inherited, **_UNLIMITED, "TENANTGRAPH_DATA_DIR": str(home / "data")}
            if pythonpath is not None:
                env["PYTHONPATH"] = os.pathsep.join(
                    filter(None, [str(pythonpath), env.get("PYTHONPATH")])
                )
            key = tenantgraph_key(tenantgraph, env, "bench", "bench")
            server = start_tenantgraph(tenantgraph, config, home, env)
            servers.append(server)
            server.wait_ready()
            sides.append(Side(name, server, key, home / "data"))
        rounds = [await one_round(number, sides, args) for number in range(args.rounds)]
        report(rounds)
    finally:
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="a commit (default: HEAD)")
    parser.add_argument("--load", choices=("runs", "store", "state"), default="runs")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=800, help="calls of each kind a round")
    parser.add_argument("--clients", type=int, default=8, help="concurrent runs.wait callers")
    parser.add_argument("--scratch", type=Path, default=ROOT / ".bench-ab")
    args = parser.parse_args()
    args.tree = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
