"""How near `langgraph dev` a durable server can come on this machine, and which of
tenantgraph's parts take it past issue 18's 1.2x for the store calls and threads.create.

Starts, on the same embedded Postgres and Valkey, the least durable server
(bench/floor_server.py: Starlette, one autocommit statement a call), the same with
tenantgraph's rate limit, with its tenant transaction, with both one after the other (as
tenantgraph does) and overlapped (the least they can add), and tenantgraph itself
(`tenantgraph serve`, rate limits lifted), beside `langgraph dev` (in-memory, from
peer_bench.py's virtualenv, started empty for each round). The same langgraph-sdk client
measures each at one client in rounds whose order rotates: median ms of store put, get,
search (limit 10, over the items the round put) and threads.create, and each as a ratio
to langgraph dev's, median [min-max] over the rounds.

Run: .venv/bin/python bench/floor_bench.py [--rounds 5] [--calls 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from langgraph_sdk import get_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.floor_server import SCHEMA  # noqa: E402
from bench.peer_bench import (  # noqa: E402
    GRAPH,
    GRAPH_FILE,
    peer_venv,
    settle,
    spread,
    start_empty_peer,
    versions,
)
from bench.runs_bench import _UNLIMITED  # noqa: E402
from conformance.peers import (  # noqa: E402
    Server,
    free_port,
    start_tenantgraph,
    tenantgraph_key,
    write_config,
)

from tenantgraph.db.migrate import APP_ROLE  # noqa: E402
from tenantgraph.embedded import EmbeddedValkey  # noqa: E402
from tenantgraph.resources import open_resources, runtime_conninfo  # noqa: E402
from tenantgraph.settings import Settings  # noqa: E402

PEER = "langgraph dev"
# The floor servers: name -> the steps of bench/floor_server.py they run.
FLOORS = {
    "floor": "",
    "+ rate limit": "rate-limit",
    "+ tenant tx": "tenant-tx",
    "+ both": "rate-limit,tenant-tx",
    "+ both overlapped": "rate-limit,tenant-tx,overlap",
}
OPS = ("put", "get", "search", "threads.create")
BUDGET = 1.2  # issue 18: each of OPS at most 1.2x langgraph dev's median


async def medians(url: str, key: str | None, calls: int, namespace: list[str]) -> dict[str, float]:
    """Median ms of each of OPS, `calls` of each one after the other, after a warm-up."""
    client = get_client(url=url, api_key=key, timeout=120)
    store = client.store
    for i in range(50):
        await store.put_item([*namespace, "warm"], f"warm-{i}", {"i": i})
        await store.get_item([*namespace, "warm"], f"warm-{i}")
        await client.threads.create()
    each: dict[str, Callable[[int], Awaitable]] = {
        "put": lambda i: store.put_item(namespace, f"item-{i}", {"n": i}),
        "get": lambda i: store.get_item(namespace, f"item-{i * 7 % calls}"),
        "search": lambda _: store.search_items(namespace, limit=10),
        "threads.create": lambda _: client.threads.create(),
    }
    result = {}
    for op, call in each.items():
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            await call(i)
            samples.append((time.perf_counter() - start) * 1000)
        result[op] = statistics.median(samples)
    return result


def report(rounds: list[dict[str, dict[str, float]]], names: list[str]) -> None:
    print(f"\nsummary over {len(rounds)} rounds, median [min-max]: ms, and / {PEER}")
    for op in OPS:
        print(f"\n{op:20} {'ms':>18} {'/ ' + PEER:>22}")
        for name in names:
            ms = [r[name][op] for r in rounds]
            ratios = [r[name][op] / r[PEER][op] for r in rounds]
            mark = "" if statistics.median(ratios) <= BUDGET else f"  over {BUDGET}x"
            print(f"  {name:18} {spread(ms):>18} {spread(ratios):>22}{mark}")


async def run(args: argparse.Namespace) -> None:
    work = args.scratch / "floor"
    settings = Settings(data_dir=work / "tenantgraph", config=None)
    if settings.database_url or settings.redis_url:
        # The floor's steps without the tenant transaction connect as the embedded server's
        # superuser, whom RLS does not apply to; another server's admin role may be bound.
        sys.exit(
            "floor_bench.py runs on embedded Postgres and Valkey: unset DATABASE_URL, REDIS_URL"
        )
    venv = peer_venv(args.scratch)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(versions(venv))
    config = write_config(work, {GRAPH: GRAPH_FILE})
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    tg_env = {**inherited, **_UNLIMITED, "TENANTGRAPH_DATA_DIR": str(work / "tenantgraph")}
    servers: dict[str, tuple[Server, str | None]] = {}
    async with open_resources(settings) as res:
        async with await psycopg.AsyncConnection.connect(res.admin_conninfo) as conn:
            await conn.execute(SCHEMA.format(runtime_role=APP_ROLE))
            await conn.commit()
        floor_env = {
            **tg_env,
            "FLOOR_ADMIN_URL": res.admin_conninfo,
            "FLOOR_RUNTIME_URL": runtime_conninfo(settings, res.admin_conninfo),
            "FLOOR_VALKEY_URL": EmbeddedValkey(settings.data_dir).url,
        }
        tenantgraph = [sys.executable, "-m", "tenantgraph.cli"]
        key = tenantgraph_key(tenantgraph, tg_env, "bench", "bench")
        try:
            for name, steps in FLOORS.items():
                uvicorn = [sys.executable, "-m", "uvicorn", "bench.floor_server:app"]
                command = [*uvicorn, "--port", str(free_port()), "--no-access-log"]
                env = {**floor_env, "TENANTGRAPH_FLOOR_STEPS": steps}
                log = work / f"floor-{steps or 'none'}.log"
                servers[name] = (Server(name, command, log, ROOT, env), None)
            servers["tenantgraph"] = (start_tenantgraph(tenantgraph, config, work, tg_env), key)
            for server, _ in servers.values():
                server.wait_ready()
            names = [PEER, *servers]
            print(f"servers: {', '.join(names)}; logs in {work}")
            rounds = []
            for number in range(args.rounds):
                shift = number % len(names)
                print(f"\nround {number}")
                measured = {}
                for name in names[shift:] + names[:shift]:
                    waited = await settle()
                    namespace = ["floor", f"round-{number}"]
                    if name == PEER:
                        log = f"lg-{number}.log"
                        peer = start_empty_peer(venv, config, work, inherited, log)
                        try:
                            peer.wait_ready()
                            measured[name] = await medians(peer.url, None, args.calls, namespace)
                        finally:
                            peer.stop()
                    else:
                        server, api_key = servers[name]
                        measured[name] = await medians(server.url, api_key, args.calls, namespace)
                    ms = "  ".join(f"{op} {measured[name][op]:.3f}" for op in OPS)
                    print(f"  {name:18} {ms}  (quiet after {waited:.0f} s)", flush=True)
                rounds.append(measured)
            report(rounds, names)
        finally:
            for server, _ in servers.values():
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1500, help="calls of each op a round")
    parser.add_argument("--scratch", type=Path, default=ROOT / ".bench-peers")
    started = time.monotonic()
    asyncio.run(run(parser.parse_args()))
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
