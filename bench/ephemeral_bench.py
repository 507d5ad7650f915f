"""Throughput of the ephemeral state against named baselines, on embedded Valkey/Postgres.

1. Rate-limit checks/s (one Lua script, 2 or 3 buckets) vs. baseline `GET` (one plain
   Valkey round trip), at 1 and at 64 commands in flight.
2. POST over real HTTP (uvicorn + httpx, rate limiting on in every variant) vs. baseline
   "POST without Idempotency-Key": a fresh key per request (claim + store, two Postgres
   transactions) and a replay.

Each figure is the median of 3 interleaved runs. Run:
`.venv/bin/python bench/ephemeral_bench.py [--quick]`
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

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ephemeral_app import SideEffects, build_app, caller, serve  # noqa: E402

from tenantgraph.ephemeral.client import connect  # noqa: E402
from tenantgraph.ephemeral.ratelimit import RateLimiter  # noqa: E402
from tenantgraph.resources import open_resources  # noqa: E402
from tenantgraph.scope import KeyKind, Principal, redis_key  # noqa: E402
from tenantgraph.services.idempotency import Idempotency  # noqa: E402
from tenantgraph.services.limits import OrgLimits  # noqa: E402
from tenantgraph.settings import (  # noqa: E402
    EphemeralSettings,
    Limit,
    RateLimits,
    Settings,
)

ORG = "bench-org"
HUGE = Limit(limit=1_000_000_000, window_seconds=1)


async def medians(
    n: int, concurrency: int, ops: list[Callable[[int], Awaitable[object]]], rounds: int = 3
) -> list[float]:
    """Median ops/s of each op over `rounds` interleaved runs (the machine is shared, so
    a baseline and its variants are measured side by side, not one after the other)."""
    runs = [[await rate(n, concurrency, op) for op in ops] for _ in range(rounds)]
    return [statistics.median(run[i] for run in runs) for i in range(len(ops))]


async def rate(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> float:
    """Operations per second for `n` calls of `op` with `concurrency` in flight."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def main(quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    with tempfile.TemporaryDirectory(prefix="tg-bench-") as tmp:
        async with open_resources(Settings(data_dir=Path(tmp))) as resources:
            async with resources.db.tenant(Principal(ORG, "setup")) as conn:
                await conn.execute(
                    "INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)", (ORG, ORG, ORG)
                )
            url = resources.redis.connection_pool.connection_kwargs["path"]
            redis = connect(f"unix://{url}", max_connections=64)
            conf = EphemeralSettings(
                rate_limits=RateLimits(
                    org_requests=HUGE, user_requests=HUGE, org_runs=HUGE, user_runs=HUGE
                )
            )
            limiter = RateLimiter(redis, OrgLimits(resources.db).get, conf)
            alice = Principal(ORG, "alice")
            probe = redis_key(ORG, KeyKind.CACHE, "bench")
            await redis.set(probe, b"x", ex=600)
            await limiter.check_request(alice)  # warm the override cache and script

            print("== rate-limit checks (embedded Valkey, unix socket)")
            for concurrency in (1, 64):
                n = int((3000 if concurrency == 1 else 10000) * scale)
                base, req, run = await medians(
                    n,
                    concurrency,
                    [
                        lambda _: redis.get(probe),
                        lambda _: limiter.check_request(alice),
                        lambda _: limiter.check_run(alice),
                    ],
                )
                print(
                    f"in flight {concurrency:>2}: baseline GET {base:8.0f}/s | "
                    f"check_request {req:8.0f}/s ({req / base:.2f}x) | "
                    f"check_run {run:8.0f}/s ({run / base:.2f}x)"
                )

            store = Idempotency(resources.db, conf)
            path = Path(tmp) / "http.sock"
            # A unix socket: loopback TCP adds a 40 ms delayed-ACK stall per request between
            # httpx and uvicorn on this VM, which would hide everything measured.
            async with serve(build_app(limiter, store, SideEffects()), path) as url:
                transport = httpx.AsyncHTTPTransport(uds=str(path))
                async with httpx.AsyncClient(
                    base_url=url, transport=transport, headers=caller(ORG, "alice")
                ) as client:
                    body = {"name": "x" * 200}

                    async def plain(_: int) -> None:
                        r = await client.post("/items", json=body)
                        assert r.status_code == 201

                    async def fresh(i: int) -> None:
                        headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
                        r = await client.post("/items", json=body, headers=headers)
                        assert r.status_code == 201

                    await client.post("/items", json=body, headers={"Idempotency-Key": "same"})

                    async def replay(_: int) -> None:
                        headers = {"Idempotency-Key": "same"}
                        r = await client.post("/items", json=body, headers=headers)
                        assert r.headers.get("idempotent-replayed") == "true"

                    print(
                        "== POST /items over HTTP on a unix socket (uvicorn, httpx, rate limits on)"
                    )
                    for concurrency in (1, 8):
                        n = int(1000 * scale)
                        await rate(100, concurrency, plain)  # warm up
                        base, new, again = await medians(n, concurrency, [plain, fresh, replay])
                        print(
                            f"in flight {concurrency}: baseline POST without key {base:6.0f}/s | "
                            f"with fresh key {new:6.0f}/s ({new / base:.2f}x, "
                            f"+{(1 / new - 1 / base) * 1e6:.0f} µs/request) | "
                            f"replay {again:6.0f}/s ({again / base:.2f}x)"
                        )
            await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the iterations")
    asyncio.run(main(parser.parse_args().quick))
