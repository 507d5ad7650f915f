"""Runs through the HTTP API, against the same graph invoked in-process as the limit.

  limit      the echo graph `ainvoke`d in-process with TenantCheckpointer on the server's
             database, each call on a fresh thread: what a run costs without HTTP,
             queue, worker or event stream.
  latency    median / p99 of `client.runs.wait` on a fresh thread (created beforehand;
             langgraph-sdk against a `tenantgraph serve` process), one client, and the
             server process's CPU time per run.
  runs/s     `runs.wait` on fresh threads with 8 and 32 concurrent clients, as a ratio of the
             in-process limit at the same concurrency, each with the CPU per run of the
             server processes, Postgres (all backends), Valkey and this process (which
             runs the in-process limit and the langgraph-sdk clients).
  checkpoint echo-graph turns: TenantCheckpointer vs LangGraph's AsyncPostgresSaver (same
             server, its own schema), 8 threads in parallel.

Run: .venv/bin/python bench/runs_bench.py [--runs 200] [--latency 100] [--server-workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api_fixtures import Tenants, start_api_server  # noqa: E402
from tests.servers import ServerProcess  # noqa: E402

from tenantgraph.api.state import YOUNG_GC_THRESHOLD  # noqa: E402
from tenantgraph.db.database import Database  # noqa: E402
from tenantgraph.db.embedded import EmbeddedPostgres  # noqa: E402
from tenantgraph.embedded import EmbeddedValkey  # noqa: E402
from tenantgraph.resources import Resources, open_resources  # noqa: E402
from tenantgraph.runtime.checkpointer import TenantCheckpointer  # noqa: E402
from tenantgraph.runtime.graphs import GraphRegistry  # noqa: E402
from tenantgraph.scope import Principal, Role  # noqa: E402
from tenantgraph.settings import Settings  # noqa: E402

REGISTRY = GraphRegistry({"agent": "./examples/echo.py:graph"}, ROOT)
MESSAGE = {"messages": [{"role": "user", "content": "hi"}]}
_UNLIMITED = {
    f"TENANTGRAPH_EPHEMERAL__RATE_LIMITS__{bucket}__{field}": value
    for bucket in ("USER_RUNS", "ORG_RUNS", "USER_REQUESTS", "ORG_REQUESTS", "API_KEY_REQUESTS")
    for field, value in (("LIMIT", "1000000"), ("WINDOW_SECONDS", "60"))
}
SERVER_ENV = {
    **_UNLIMITED,
    "TENANTGRAPH_WORKER_CONCURRENCY": "32",
    "TENANTGRAPH_POOL_MAX_SIZE": "40",
}


async def seed_org(db: Database, principal: Principal) -> None:
    async with db.tenant(principal) as conn:
        org = principal.org_id
        await conn.execute("INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)", (org,) * 3)


async def fresh_threads(db: Database, principal: Principal, count: int) -> list[uuid.UUID]:
    thread_ids = [uuid.uuid4() for _ in range(count)]
    async with db.tenant(principal) as conn:
        for thread_id in thread_ids:
            await conn.execute(
                "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, %s)",
                (principal.org_id, thread_id, principal.user_id),
            )
    return thread_ids


async def rate(clients: int, total: int, call) -> float:
    """Calls per second with `clients` concurrent callers making `total` calls in all."""
    per_client = max(1, total // clients)

    async def client(index: int) -> None:
        for _ in range(per_client):
            await call(index)

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return clients * per_client / (time.perf_counter() - start)


async def in_process_limit(
    res: Resources,
    clients: int,
    total: int,
    split: CpuSplit,
    registry: GraphRegistry = REGISTRY,
    graph_id: str = "agent",
) -> tuple[float, str]:
    """The limit's runs/s and its CPU split (thread creation excluded), with the store a
    served run gets (the server's store, bound to the run's principal)."""
    principal = Principal(f"bench-{uuid.uuid4().hex[:8]}", "u", Role.ADMIN)
    await seed_org(res.db, principal)
    graph = (await registry.get(graph_id)).copy(
        update={
            "checkpointer": TenantCheckpointer(res.db, principal),
            "store": res.store_config.store(res.db, principal),
        }
    )
    threads = await fresh_threads(res.db, principal, total + clients)

    async def call(_: int) -> None:
        config = {"configurable": {"thread_id": str(threads.pop())}}
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)

    before = split.sample()
    measured = await rate(clients, total, call)
    return measured, split.per_run(before, split.sample(), clients * max(1, total // clients))


class CpuSplit:
    """CPU seconds of each process group over a measured phase: where a run's CPU goes.

    Postgres counts the postmaster and all its backends (the server's and this process's
    pools alike); "server" counts the serve process and its worker processes.
    """

    def __init__(self, data_dir: Path, server: ServerProcess) -> None:
        self.groups = {
            "server": psutil.Process(server.process.pid),
            "postgres": psutil.Process(EmbeddedPostgres(data_dir).pid()),
            "valkey": psutil.Process(EmbeddedValkey(data_dir).pid()),
            "bench": psutil.Process(),
        }

    def sample(self) -> dict[str, float]:
        cpu = {name: _tree_cpu_seconds(p) for name, p in self.groups.items()}
        cpu["bench"] = _cpu_seconds(self.groups["bench"])  # the server is its child
        return cpu

    @staticmethod
    def per_run(before: dict[str, float], after: dict[str, float], runs: int) -> str:
        parts = [f"{k} {(after[k] - before[k]) / runs * 1000:4.1f}" for k in before]
        total = sum(after[k] - before[k] for k in before) / runs * 1000
        return f"CPU ms/run: {', '.join(parts)}, all {total:4.1f}"


def _tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of `process` and every descendant, including those that have exited: a
    process's own `children_*` times hold its reaped children's, so the sum does not drop
    when one exits (a Postgres backend or autovacuum worker ending mid-measurement made a
    soak minute's Postgres CPU negative)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += _cpu_seconds(p, reaped=True)
        except psutil.NoSuchProcess:
            pass
    return total


async def bench_http(
    res: Resources, server: ServerProcess, split: CpuSplit, args: argparse.Namespace
) -> None:
    client = Tenants.create(server.url).a_member.sdk
    cpu = psutil.Process(server.process.pid)

    async def threads(count: int) -> list[str]:
        return [(await client.threads.create())["thread_id"] for _ in range(count)]

    async def wait(thread_id: str) -> None:
        result = await client.runs.wait(thread_id, "agent", input=MESSAGE)
        assert result["messages"][-1]["content"] == "echo: hi", result

    for thread_id in await threads(10):  # warm-up: imports, pools, prepared statements
        await wait(thread_id)
    samples = []
    fresh = await threads(args.latency)
    used = _tree_cpu_seconds(cpu)
    for thread_id in fresh:
        start = time.perf_counter()
        await wait(thread_id)
        samples.append((time.perf_counter() - start) * 1000)
    used = (_tree_cpu_seconds(cpu) - used) / args.latency * 1000
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    print(
        f"latency  runs.wait on a fresh thread  median {statistics.median(samples):6.1f} ms"
        f"  p99 {p99:6.1f} ms  server CPU {used:5.1f} ms/run"
    )
    for clients in args.clients:
        limit, limit_cpu = await in_process_limit(res, clients, args.runs, split)
        fresh = await threads(args.runs)
        start = split.sample()
        measured = await rate(clients, args.runs, lambda _, fresh=fresh: wait(fresh.pop()))
        end = split.sample()
        print(
            f"runs/s   {clients:2d} clients  in-process ainvoke {limit:7.1f} runs/s"
            f"  runs.wait over HTTP {measured:7.1f} runs/s  ratio {measured / limit:5.2f}"
        )
        runs = clients * max(1, args.runs // clients)
        print(f"         in-process {limit_cpu}")
        print(f"         HTTP       {split.per_run(start, end, runs)}")


def _env_line(env: dict[str, str]) -> str:
    shown = ("TENANTGRAPH_WORKER_CONCURRENCY", "TENANTGRAPH_POOL_MAX_SIZE")
    return ", ".join(f"{k.removeprefix('TENANTGRAPH_')}={env[k]}" for k in shown) + (
        " (per process), rate limits 1e6/min"
    )


def _cpu_seconds(process: psutil.Process, *, reaped: bool = False) -> float:
    """CPU seconds of `process`; `reaped`: with its exited children's, which its own times
    hold once it has waited for them."""
    times = process.cpu_times()
    own = times.user + times.system
    return own + times.children_user + times.children_system if reaped else own


async def bench_checkpointer(res: Resources, turns: int, threads: int) -> None:
    graph = await REGISTRY.get("agent")
    principal = Principal(f"bench-{uuid.uuid4().hex[:8]}", "u", Role.ADMIN)
    await seed_org(res.db, principal)
    thread_ids = await fresh_threads(res.db, principal, threads)
    ours = graph.copy(update={"checkpointer": TenantCheckpointer(res.db, principal)})

    async def talk(graph, thread_id) -> None:
        config = {"configurable": {"thread_id": str(thread_id)}}
        for i in range(turns):
            await graph.ainvoke({"messages": [HumanMessage(f"m{i}")]}, config)

    async def timed(graph, ids) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(talk(graph, t) for t in ids))
        return len(ids) * turns / (time.perf_counter() - start)

    async with await AsyncConnection.connect(res.admin_conninfo, autocommit=True) as conn:
        await conn.execute("DROP SCHEMA IF EXISTS lgbench CASCADE; CREATE SCHEMA lgbench")
    # The baseline gets a pool as large as ours, configured as its docs say.
    pool = AsyncConnectionPool(
        make_conninfo(res.admin_conninfo, options="-c search_path=lgbench"),
        max_size=res.settings.pool_max_size,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    )
    await pool.open()
    try:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        theirs = graph.copy(update={"checkpointer": saver})
        baseline = await timed(theirs, [uuid.uuid4() for _ in range(threads)])
    finally:
        await pool.close()
    measured = await timed(ours, thread_ids)
    print(
        f"checkpoint AsyncPostgresSaver {baseline:7.1f} turns/s"
        f"  TenantCheckpointer {measured:7.1f} turns/s  ratio {measured / baseline:5.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=256, help="runs per concurrency level")
    parser.add_argument("--latency", type=int, default=100, help="sequential runs.wait samples")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument(
        "--server-workers", type=int, default=1, help="`tenantgraph serve --workers` processes"
    )
    parser.add_argument("--skip-checkpointer", action="store_true")
    args = parser.parse_args()
    # The server runs with this young-GC threshold (api/app.py); the in-process limit (and
    # the SDK clients) run with it too, so the comparison is of the same Python.
    gc.set_threshold(YOUNG_GC_THRESHOLD)
    print(f"gc       young threshold {YOUNG_GC_THRESHOLD} in the server and in this process")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir, pg_shared_buffers_mb=256, config=None)
        async with open_resources(settings) as res:
            env = {**SERVER_ENV, "TENANTGRAPH_SERVE_WORKERS": str(args.server_workers)}
            print(f"server   tenantgraph serve --workers {args.server_workers}, {_env_line(env)}")
            server = start_api_server(data_dir, **env)
            try:
                await bench_http(res, server, CpuSplit(data_dir, server), args)
            finally:
                server.terminate()
            if not args.skip_checkpointer:
                await bench_checkpointer(res, args.turns, 8)


if __name__ == "__main__":
    asyncio.run(main())
