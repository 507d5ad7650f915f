"""Latency of the HTTP API through langgraph-sdk, against the same calls made in-process.

Baseline ("in-process"): the same store and thread operations called directly on
`TenantStore` / the `Threads` service in this process, on the same embedded Postgres, so the
ratio is what HTTP, auth and JSON cost on top of the database work.

    .venv/bin/python bench/api_bench.py [--n 300] [--clients 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from langgraph_sdk import get_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api_fixtures import mint, start_api_server

from tenantgraph.resources import open_resources
from tenantgraph.scope import Principal, Role
from tenantgraph.services.memory import Memory
from tenantgraph.services.threads import Threads
from tenantgraph.settings import Settings

Op = Callable[[int], Awaitable[object]]
# The benchmark measures latency, not the default per-user budgets.
BENCH_LIMITS = {
    f"TENANTGRAPH_EPHEMERAL__RATE_LIMITS__{bucket}__{field}": value
    for bucket in ("ORG_REQUESTS", "USER_REQUESTS", "API_KEY_REQUESTS", "ORG_RUNS", "USER_RUNS")
    for field, value in (("LIMIT", "100000000"), ("WINDOW_SECONDS", "60"))
}


async def sequential(op: Op, n: int) -> list[float]:
    timings = []
    for i in range(n):
        started = time.perf_counter()
        await op(i)
        timings.append(time.perf_counter() - started)
    return timings


async def concurrent(op: Op, n: int, clients: int) -> float:
    """Operations per second with `clients` callers each doing n // clients calls."""
    per_client = max(1, n // clients)

    async def client(c: int) -> None:
        for i in range(per_client):
            await op(c * per_client + i)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return per_client * clients / (time.perf_counter() - started)


def ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if q < 100 else max(values)


async def main(n: int, clients: int, data: Path) -> None:
    settings = Settings(data_dir=data, pg_shared_buffers_mb=1024)
    async with open_resources(settings) as resources:
        server = start_api_server(data, **BENCH_LIMITS)
        try:
            org = f"bench-{uuid.uuid4().hex[:6]}"
            principal = Principal(org, "u1", Role.MEMBER)
            token = mint(org, "u1")
            sdk = get_client(url=server.url, headers={"Authorization": f"Bearer {token}"})
            await sdk.threads.count()  # creates the org (claims mode)
            store = Memory(resources.db, resources.store_config).store(principal)
            threads = Threads(resources.db)
            ns = ("bench", "items")
            value = {"text": "a memory worth keeping", "n": 1}

            http_ops: dict[str, Op] = {
                "threads.create": lambda i: sdk.threads.create(),
                "store.put": lambda i: sdk.store.put_item(ns, f"k{i}", value),
                "store.get": lambda i: sdk.store.get_item(ns, f"k{i % 50}"),
                "store.search": lambda i: sdk.store.search_items(ns, filter={"n": 1}, limit=10),
            }
            local_ops: dict[str, Op] = {
                "threads.create": lambda i: threads.create(principal),
                "store.put": lambda i: store.aput(ns, f"l{i}", value),
                "store.get": lambda i: store.aget(ns, f"l{i % 50}"),
                "store.search": lambda i: store.asearch(ns, filter={"n": 1}, limit=10),
            }
            print(f"n={n} sequential calls per op, {clients} concurrent clients")
            header = (
                f"{'operation':16} {'http p50':>9} {'http p99':>9} {'local p50':>10}"
                f" {'p50 ratio':>9} {'http ops/s':>11} {'local ops/s':>12} {'ratio':>6}"
            )
            print(header)
            for name in http_ops:
                remote = await sequential(http_ops[name], n)
                local = await sequential(local_ops[name], n)
                remote_rate = await concurrent(http_ops[name], n, clients)
                local_rate = await concurrent(local_ops[name], n, clients)
                print(
                    f"{name:16} {ms(remote, 50):8.2f}ms {ms(remote, 99):8.2f}ms"
                    f" {ms(local, 50):9.2f}ms {ms(remote, 50) / ms(local, 50):8.1f}x"
                    f" {remote_rate:11.0f} {local_rate:12.0f} {remote_rate / local_rate:5.2f}"
                )
        finally:
            server.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-api-bench-") as tmp:
        asyncio.run(main(args.n, args.clients, Path(tmp)))
