"""Runtime benchmarks against named baselines, on one embedded Postgres + Valkey.

  checkpointer  echo-graph turns (aget_tuple + aput + aput_writes per step), THREADS
                threads in parallel: TenantCheckpointer vs LangGraph's AsyncPostgresSaver
                (langgraph-checkpoint-postgres, same server, its own schema).
  runs          runs through the durable queue, a Worker and Valkey events (create +
                join) vs the same graph invoked in-process with TenantCheckpointer: the
                price of queueing, leases and streaming.

Run: .venv/bin/python bench/runs_bench.py [--turns 20] [--threads 8] [--runs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tenantgraph.db.database import Database
from tenantgraph.resources import Resources, open_resources
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.runs import RunCreate, Runs
from tenantgraph.runtime.worker import Worker
from tenantgraph.scope import Principal, Role
from tenantgraph.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = GraphRegistry({"agent": "./examples/echo.py:graph"}, ROOT)


async def seed(db: Database, principal: Principal, threads: int) -> tuple[uuid.UUID, list]:
    assistant = uuid.uuid4()
    thread_ids = [uuid.uuid4() for _ in range(threads)]
    async with db.tenant(principal) as conn:
        org = principal.org_id
        await conn.execute("INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)", (org,) * 3)
        await conn.execute(
            "INSERT INTO assistants (org_id, assistant_id, graph_id, name, config)"
            " VALUES (%s, %s, 'agent', 'agent', %s)",
            (org, assistant, Jsonb({})),
        )
        for thread_id in thread_ids:
            await conn.execute(
                "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, %s)",
                (org, thread_id, principal.user_id),
            )
    return assistant, thread_ids


async def turns(graph, thread_ids: list, count: int) -> float:
    """Turns per second: each thread talks `count` times, threads in parallel."""

    async def talk(thread_id) -> None:
        config = {"configurable": {"thread_id": str(thread_id)}}
        for i in range(count):
            await graph.ainvoke({"messages": [HumanMessage(f"m{i}")]}, config)

    start = time.perf_counter()
    await asyncio.gather(*(talk(t) for t in thread_ids))
    return len(thread_ids) * count / (time.perf_counter() - start)


async def bench_checkpointer(res: Resources, args: argparse.Namespace) -> None:
    graph = await REGISTRY.get("agent")
    principal = Principal(f"bench-{uuid.uuid4().hex[:8]}", "u", Role.ADMIN)
    _, thread_ids = await seed(res.db, principal, args.threads)
    ours = graph.copy(update={"checkpointer": TenantCheckpointer(res.db, principal)})

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
        baseline = await turns(theirs, [uuid.uuid4() for _ in range(args.threads)], args.turns)
    finally:
        await pool.close()
    measured = await turns(ours, thread_ids, args.turns)
    print(
        f"checkpointer  AsyncPostgresSaver {baseline:8.1f} turns/s"
        f"  TenantCheckpointer {measured:8.1f} turns/s  ratio {measured / baseline:5.2f}"
    )


async def bench_runs(res: Resources, args: argparse.Namespace) -> None:
    principal = Principal(f"bench-{uuid.uuid4().hex[:8]}", "u", Role.ADMIN)
    assistant, thread_ids = await seed(res.db, principal, args.threads)
    graph = (await REGISTRY.get("agent")).copy(
        update={"checkpointer": TenantCheckpointer(res.db, principal)}
    )
    per_thread = max(1, args.runs // args.threads)
    baseline = await turns(graph, thread_ids, per_thread)

    runs = Runs(res.db, res.redis)
    worker = Worker(res.db, res.redis, REGISTRY, concurrency=args.threads, poll_seconds=0.01)
    await worker.start()

    async def talk(thread_id) -> None:
        for i in range(per_thread):
            body = RunCreate(input={"messages": [{"role": "user", "content": f"m{i}"}]})
            run = await runs.create(principal, thread_id, assistant, body)
            worker.wake()
            await runs.join(principal, run["run_id"])

    try:
        start = time.perf_counter()
        await asyncio.gather(*(talk(t) for t in thread_ids))
        measured = len(thread_ids) * per_thread / (time.perf_counter() - start)
    finally:
        await worker.stop()
    print(
        f"runs          in-process ainvoke {baseline:8.1f} runs/s"
        f"  queue+worker+events {measured:8.1f} runs/s  ratio {measured / baseline:5.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=160)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), pg_shared_buffers_mb=256, config=None)
        async with open_resources(settings) as res:
            await bench_checkpointer(res, args)
            await bench_runs(res, args)


if __name__ == "__main__":
    asyncio.run(main())
