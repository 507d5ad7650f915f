"""tenantgraph against `langgraph dev`: the same graph, the same langgraph-sdk client.

Installs langgraph-cli[inmem] (pinned as in conformance/requirements.txt) into its own
virtualenv under the scratch dir, starts `tenantgraph serve` (embedded Postgres and Valkey,
the product's defaults but rate limits lifted) once and `langgraph dev` afresh for each of
its rounds, both with bench/graphs/store_once.py (one store write and one read per run), and
measures the two in alternating rounds:

  store.put_item / get_item / search_items (1k items, limit 10), threads.create and
  runs.wait on a fresh thread at one client: median ms;  runs/s of runs.wait on fresh
  threads at 8 and 32 clients, beside tenantgraph's in-process limit (runs_bench.py's).

Beside each, the CPU per call of what serves it (tenantgraph: server, Postgres, Valkey;
langgraph dev: its process tree), steadier than latency on a shared machine, and for the
one-client calls the bench client's own CPU per call and Postgres's and Valkey's. Each is
printed per round and as tenantgraph / langgraph dev with its median and spread.
bench/floor_bench.py measures how near langgraph dev a durable server can come at all.
`--soak-minutes N` instead runs a mixed load against tenantgraph alone and prints per-minute
medians and the first five minutes against the last five.

Run: .venv/bin/python bench/peer_bench.py [--rounds 5] [--soak-minutes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import NamedTuple

import psutil
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.runs_bench import (  # noqa: E402
    _UNLIMITED,
    CpuSplit,
    _tree_cpu_seconds,
    in_process_limit,
    rate,
)
from conformance.peers import (  # noqa: E402
    Server,
    start_langgraph_dev,
    start_tenantgraph,
    tenantgraph_key,
    write_config,
)

from tenantgraph import __version__  # noqa: E402
from tenantgraph.resources import open_resources  # noqa: E402
from tenantgraph.runtime.graphs import GraphRegistry  # noqa: E402
from tenantgraph.settings import Settings  # noqa: E402

REQUIREMENTS = ROOT / "conformance" / "requirements.txt"
GRAPH = "store_once"
GRAPH_FILE = ROOT / "bench" / "graphs" / "store_once.py"
INPUT = {"messages": [{"role": "user", "content": "hi"}]}
LATENCIES = ("put", "get", "search", "threads.create", "runs.wait")
PEER_VERSIONS = ("langgraph-cli", "langgraph-api", "langgraph-runtime-inmem", "langgraph")
OWN_VERSIONS = ("langgraph", "langgraph-sdk", "uvicorn", "psycopg")


async def run_once(client: LangGraphClient, thread_id: str) -> None:
    """One run of the bench graph on `thread_id`, waited for and checked."""
    result = await client.runs.wait(thread_id, GRAPH, input=INPUT)
    assert result["messages"][-1]["content"] == "stored: hi", result


def peer_venv(scratch: Path) -> Path:
    """The virtualenv with langgraph dev, reinstalled when the pinned requirements change."""
    venv = scratch / "venv"
    stamp = venv / ".requirements"
    wanted = REQUIREMENTS.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        print(f"installing langgraph-cli[inmem] into {venv} (about a minute)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    return venv


def start_empty_peer(
    venv: Path, config: Path, work: Path, inherited: dict[str, str], log: str
) -> Server:
    """`langgraph dev` from `venv`, started empty: it reloads what it pickled under its
    working directory (.langgraph_api), and its in-memory calls slow as that piles up (its
    threads.create most), so every round starts it afresh, as the issue's did."""
    shutil.rmtree(work / "langgraph-dev", ignore_errors=True)
    return start_langgraph_dev(venv / "bin" / "langgraph", config, work, inherited, log)


def versions(venv: Path | None) -> str:
    script = (
        "from importlib.metadata import version as v; import sys; print("
        + ", ".join(f"'{name} ' + v('{name}')" for name in PEER_VERSIONS)
        + ", 'python ' + sys.version.split()[0], sep=', ')"
    )
    peer = (
        "not run"
        if venv is None
        else subprocess.run(
            [str(venv / "bin" / "python"), "-c", script], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    own = ", ".join(f"{name} {version(name)}" for name in OWN_VERSIONS)
    return (
        f"langgraph dev: {peer}\n"
        f"tenantgraph:   {__version__} ({commit}), {own}, python {platform.python_version()}\n"
        f"client:        langgraph-sdk {version('langgraph-sdk')} (both servers); "
        f"{os.cpu_count()} cores"
    )


# Process groups of a CPU sample (CpuSplit's): the bench's own ("bench") serves nothing;
# Postgres and Valkey are what a tenantgraph call costs outside its server process.
BENCH, STORES = "bench", ("postgres", "valkey")


class Bench:
    """One server's measurements through one langgraph-sdk client. `cpu` reads the CPU
    seconds used so far by each process group (`CpuSplit.sample` for tenantgraph; the
    process tree for langgraph dev, which keeps everything in its process): CPU per call
    is steadier than latency on a shared machine."""

    def __init__(
        self,
        url: str,
        key: str | None,
        args: argparse.Namespace,
        cpu: Callable[[], dict[str, float]],
    ) -> None:
        self.client = get_client(url=url, api_key=key, timeout=120)
        self.args = args
        self.cpu = cpu

    async def timed_each(
        self, result: dict[str, float], name: str, items: Iterable, call: Callable[..., Awaitable]
    ) -> None:
        """Median ms of `call(item)` made one after the other, the serving CPU per call, and
        of it the stores' (Postgres and Valkey), and this client's own CPU per call (the
        same langgraph-sdk work against either server)."""
        samples = []
        before, own = self.cpu(), time.process_time()
        for item in items:
            start = time.perf_counter()
            await call(item)
            samples.append((time.perf_counter() - start) * 1000)
        used = _serving_ms(before, self.cpu(), len(samples))
        result[name] = statistics.median(samples)
        result[f"{name} cpu"] = sum(used.values())
        result[f"{name} client"] = (time.process_time() - own) / len(samples) * 1000
        result[f"{name} stores"] = sum(used.get(group, 0.0) for group in STORES)

    async def threads(self, count: int) -> list[str]:
        return [(await self.client.threads.create())["thread_id"] for _ in range(count)]

    async def wait(self, thread_id: str) -> None:
        await run_once(self.client, thread_id)

    async def warm_up(self, namespace: list[str]) -> None:
        for i in range(20):
            await self.client.store.put_item(namespace, f"warm-{i}", {"i": i})
            await self.client.store.get_item(namespace, f"warm-{i}")
        for thread_id in await self.threads(3):
            await self.wait(thread_id)

    async def latencies(self, namespace: list[str]) -> dict[str, float]:
        store, items, samples = self.client.store, self.args.items, self.args.samples
        await self.warm_up([*namespace, "warm"])
        result: dict[str, float] = {}
        await self.timed_each(
            result, "put", range(items), lambda i: store.put_item(namespace, f"item-{i}", {"n": i})
        )
        await self.timed_each(
            result,
            "get",
            range(samples),
            lambda i: store.get_item(namespace, f"item-{i * 7 % items}"),
        )
        await self.timed_each(
            result, "search", range(samples), lambda _: store.search_items(namespace, limit=10)
        )
        await self.timed_each(
            result, "threads.create", range(samples), lambda _: self.client.threads.create()
        )
        await self.timed_each(result, "runs.wait", await self.threads(self.args.waits), self.wait)
        return result

    async def throughput(self, result: dict[str, float], clients: int) -> str:
        """Runs/s at `clients` clients and the serving CPU per run, and the CPU per run of
        each process group as a line (the runs' threads are made before, not counted)."""
        fresh = await self.threads(self.args.runs)
        before = self.cpu()
        result[f"runs/s {clients}"] = await rate(
            clients, self.args.runs, lambda _: self.wait(fresh.pop())
        )
        after = self.cpu()
        runs = clients * max(1, self.args.runs // clients)
        result[f"runs/s {clients} cpu"] = sum(_serving_ms(before, after, runs).values())
        return CpuSplit.per_run(before, after, runs)


async def settle(quiet_percent: float = 15.0, deadline: float = 120.0) -> float:
    """Seconds waited for the machine to go quiet (CPU below `quiet_percent` over a second)
    before a side is measured: autovacuum and checkpoints after the in-process limit's runs,
    or a stopped peer's exit, would otherwise land on whichever side comes next."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if await asyncio.to_thread(psutil.cpu_percent, 1.0) < quiet_percent:
            break
    return time.monotonic() - started


def _serving_ms(before: dict[str, float], after: dict[str, float], calls: int) -> dict[str, float]:
    """CPU ms a call of each process group that serves the calls (all but the bench's)."""
    return {
        group: (after[group] - before[group]) / calls * 1000 for group in after if group != BENCH
    }


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


def report(rounds: list[dict[str, dict[str, float]]], clients: list[int]) -> None:
    """Per metric: each server's median [min-max] over rounds and the ratio's."""
    print(f"\nsummary over {len(rounds)} rounds: median [min-max]; ratio = tenantgraph / peer")
    print(f"{'':24} {'tenantgraph':>22} {'langgraph dev':>22} {'ratio':>22}")
    metrics = [*LATENCIES, *(f"runs/s {c}" for c in clients)]
    client_cpu = [f"{m} client" for m in LATENCIES]
    for metric in [*metrics, *(f"{m} cpu" for m in metrics), *client_cpu]:
        tg = [r["tenantgraph"][metric] for r in rounds]
        lg = [r["langgraph dev"][metric] for r in rounds]
        if metric.endswith("cpu"):
            name = f"{metric.removesuffix(' cpu')} CPU ms/call"
        elif metric.endswith("client"):
            name = f"{metric.removesuffix(' client')} client CPU ms"
        else:
            name = metric if metric.startswith("runs/s") else f"{metric} ms"
        # A process's CPU times tick in 10 ms: a short run can read 0 for the peer.
        ratios = [a / b for a, b in zip(tg, lg, strict=True) if b]
        shown = spread(ratios) if ratios else "no CPU measured"
        print(f"{name:24} {spread(tg):>22} {spread(lg):>22} {shown:>22}")
    for c in clients:
        limit = [r["limit"][f"runs/s {c}"] for r in rounds]
        ratios = [r["tenantgraph"][f"runs/s {c}"] / r["limit"][f"runs/s {c}"] for r in rounds]
        print(f"in-process limit {c:2d} cl {spread(limit):>22}", end="")
        print(f"  tenantgraph / limit {spread(ratios)}")


def print_round(number: int, first: str, result: dict[str, dict[str, float]]) -> None:
    print(f"\nround {number} ({first} first)")
    for metric, tg in result["tenantgraph"].items():
        lg = result["langgraph dev"][metric]
        limit = result["limit"].get(metric)
        beside = f"  in-process limit {limit:7.1f}" if limit else ""
        name = metric.replace(" cpu", " CPU ms")
        name = name.replace(" client", " client CPU ms").replace(" stores", " stores CPU ms")
        print(f"  {name:20} tenantgraph {tg:8.2f}  langgraph dev {lg:8.2f}{beside}")
    for line in result["cpu"]:
        print(f"  {line}")
    print(f"  measured once the machine was quiet: {', '.join(result['settled'])}")


async def one_round(
    number: int, tg: Server, key: str, peer: Callable[[], Server], res, args
) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {"limit": {}}
    cpu: list[str] = []
    registry = GraphRegistry({GRAPH: f"{GRAPH_FILE}:graph"}, ROOT)
    split = CpuSplit(res.settings.data_dir, tg)

    async def ours() -> None:
        bench = Bench(tg.url, key, args, split.sample)
        measured = await bench.latencies(["bench", f"round-{number}"])
        for clients in args.clients:
            cpu.append(f"{clients:2d} clients {await bench.throughput(measured, clients)}")
            limit, _ = await in_process_limit(res, clients, args.runs, split, registry, GRAPH)
            result["limit"][f"runs/s {clients}"] = limit
        result["tenantgraph"] = measured

    async def theirs() -> None:
        server = peer()
        try:
            server.wait_ready()
            process = psutil.Process(server.process.pid)
            bench = Bench(server.url, None, args, lambda: {"peer": _tree_cpu_seconds(process)})
            measured = await bench.latencies(["bench", f"round-{number}"])
            for clients in args.clients:
                await bench.throughput(measured, clients)
        finally:
            server.stop()
        result["langgraph dev"] = measured

    order = [theirs, ours] if number % 2 else [ours, theirs]
    settled = []
    for side in order:
        name = "langgraph dev" if side is theirs else "tenantgraph"
        settled.append(f"{name} after {await settle():.0f} s")
        await side()
    result["cpu"] = cpu  # type: ignore[assignment]
    result["settled"] = settled  # type: ignore[assignment]
    print_round(number, "langgraph dev" if number % 2 else "tenantgraph", result)
    return result


def machine_probe() -> float:
    """CPU ms of one fixed piece of pure Python in this thread: the VM's own speed, which
    swings on a shared host. A minute whose serving CPU per cycle rises with it had a slower
    machine, not a slower server."""
    started = time.thread_time()
    total = 0
    for i in range(300_000):
        total += i * i
    return (time.thread_time() - started) * 1000


class Minute(NamedTuple):
    """What the soak reads at each minute's end."""

    cpu: dict[str, float]  # CpuSplit.sample(): CPU seconds so far per process group
    load: float
    probe: float  # median of the minute's machine probes, one every PROBE_SECONDS


PROBE_SECONDS = 5  # one probe is noisy (13-25 ms minute to minute); twelve a minute agree


async def soak(tg: Server, key: str, args: argparse.Namespace, split: CpuSplit) -> None:
    """Mixed load for `--soak-minutes`: per-minute medians of each call, the CPU per cycle
    (put, get, search, threads.create, runs.wait) of the server, Postgres and Valkey, the
    machine probe and load average (a shared machine's speed moves them all), then the first
    five minutes against the last five (all of a minute's samples pooled), raw and divided
    by the probe's own last / first: the change the machine does not explain."""
    bench = Bench(tg.url, key, args, split.sample)
    client, store = bench.client, bench.client.store
    await bench.warm_up(["soak", "warm"])
    samples: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    start = time.monotonic()
    end = start + args.soak_minutes * 60

    probes: list[float] = []  # this minute's

    def mark() -> Minute:
        probe = statistics.median(probes or [machine_probe()])
        probes.clear()
        return Minute(split.sample(), os.getloadavg()[0], probe)

    marks = [mark()]  # at each minute's end

    async def mark_minutes() -> None:
        while time.monotonic() < end:
            next_mark = start + 60 * len(marks)
            while time.monotonic() < next_mark - PROBE_SECONDS:
                await asyncio.sleep(PROBE_SECONDS)
                probes.append(machine_probe())
            await asyncio.sleep(next_mark - time.monotonic())
            marks.append(mark())

    async def timed(name: str, call: Awaitable) -> object:
        began = time.perf_counter()
        result = await call
        samples[int((time.monotonic() - start) // 60)][name].append(
            (time.perf_counter() - began) * 1000
        )
        return result

    async def worker(index: int) -> None:
        namespace = ["soak", f"client-{index}"]
        for i in itertools.count():
            if time.monotonic() >= end:
                return
            await timed("put", store.put_item(namespace, f"item-{i % 1000}", {"n": i}))
            await timed("get", store.get_item(namespace, f"item-{i % 1000}"))
            await timed("search", store.search_items(namespace, limit=10))
            thread = await timed("threads.create", client.threads.create())
            await timed("runs.wait", bench.wait(thread["thread_id"]))  # type: ignore[index]

    marker = asyncio.create_task(mark_minutes())
    await asyncio.gather(*(worker(i) for i in range(args.soak_clients)))
    marker.cancel()
    minutes = sorted(m for m in samples if m < len(marks) - 1)
    groups = ("server", "postgres", "valkey")

    def cpu_per_cycle(span: list[int], group: str) -> float:
        cycles = sum(len(samples[m]["runs.wait"]) for m in span)
        used = marks[span[-1] + 1].cpu[group] - marks[span[0]].cpu[group]
        return used / cycles * 1000

    print(f"\nsoak: {args.soak_clients} clients, per-minute median ms; CPU ms per cycle")
    print(
        f"{'minute':>6} "
        + " ".join(f"{name:>15}" for name in LATENCIES)
        + "    runs  server postgres valkey  probe  load"
    )
    for m in minutes:
        row = " ".join(f"{statistics.median(samples[m][n]):15.2f}" for n in LATENCIES)
        cpu = " ".join(f"{cpu_per_cycle([m], g):{len(g)}.1f}" for g in groups)
        cycles = len(samples[m]["runs.wait"])
        after = marks[m + 1]
        print(f"{m + 1:6d} {row} {cycles:7d}  {cpu} {after.probe:6.1f} {after.load:5.1f}")
    window = min(5, len(minutes) // 2)
    if window:
        first_span, last_span = minutes[:window], minutes[-window:]
        spans = (first_span, last_span)
        probe = [statistics.median(marks[m + 1].probe for m in span) for span in spans]
        machine = probe[1] / probe[0]
        print(
            f"\nfirst {window} minutes against the last {window}: median ms, last / first, "
            "and that divided by the machine probe's last / first"
        )

        def compare(name: str, first: float, last: float) -> None:
            ratio = last / first
            print(f"  {name:16} {first:8.2f} {last:8.2f}  {ratio:5.2f}  {ratio / machine:5.2f}")

        for name in LATENCIES:
            first, last = (
                statistics.median(itertools.chain.from_iterable(samples[m][name] for m in span))
                for span in spans
            )
            compare(name, first, last)
        for group in groups:
            compare(group + " CPU ms", *(cpu_per_cycle(span, group) for span in spans))
        compare("machine probe", *probe)


async def run(args: argparse.Namespace) -> None:
    # Stopped unattended (SIGTERM, or SIGINT in the background), it still stops its servers.
    task = asyncio.current_task()
    assert task is not None
    for stop in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(stop, task.cancel)
    venv = None if args.soak_minutes else peer_venv(args.scratch)  # the soak has no peer
    work = args.scratch / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(versions(venv))
    config = write_config(work, {GRAPH: GRAPH_FILE})
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    tg_env = {**inherited, **_UNLIMITED, "TENANTGRAPH_DATA_DIR": str(work / "tenantgraph")}
    tenantgraph = [sys.executable, "-m", "tenantgraph.cli"]
    settings = Settings(data_dir=work / "tenantgraph", config=None)
    started = time.monotonic()
    # Opened first, as runs_bench does: the in-process limit shares the server's database.
    async with open_resources(settings) as res:
        key = tenantgraph_key(tenantgraph, tg_env, "bench", "bench")
        tg = start_tenantgraph(tenantgraph, config, work, tg_env)
        try:
            tg.wait_ready()
            print(f"tenantgraph serve: product defaults, rate limits lifted; logs in {work}")
            if args.soak_minutes:
                await soak(tg, key, args, CpuSplit(settings.data_dir, tg))
                return
            rounds = []
            for number in range(args.rounds):

                def peer(number: int = number, venv: Path = venv) -> Server:
                    return start_empty_peer(venv, config, work, inherited, f"lg-{number}.log")

                rounds.append(await one_round(number, tg, key, peer, res, args))
            report(rounds, args.clients)
        finally:
            tg.stop()
    print(f"\ntook {time.monotonic() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=1000, help="store items put (searched)")
    parser.add_argument("--samples", type=int, default=200, help="gets, searches, creates")
    parser.add_argument("--waits", type=int, default=20, help="runs.wait at one client")
    parser.add_argument("--runs", type=int, default=320, help="runs per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--soak-clients", type=int, default=4)
    parser.add_argument("--scratch", type=Path, default=ROOT / ".bench-peers")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
