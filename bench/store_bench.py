"""TenantStore against LangGraph's AsyncPostgresStore on the same embedded Postgres.

    python bench/store_bench.py [--sizes 10000 100000] [--ops 2000] [--concurrency 16]

Both stores get the same data (items under ("memories", user, topic), a `text` field
embedded by the offline hashing embedder, a numeric `bucket`) and the same workload: put
(new items), get, search with a filter, vector search, list_namespaces. LangGraph's store
lives in its own database on the same server (connected as superuser, as it has no
roles); TenantStore runs as the runtime role with forced RLS, and once more as a
bench-only role with BYPASSRLS to show what the policy check costs. Prints ops/s and
ratios; higher is better.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.postgres import AsyncPostgresStore
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tenantgraph.db.database import Database
from tenantgraph.db.migrate import APP_ROLE, SCHEMA
from tenantgraph.resources import open_resources
from tenantgraph.scope import Principal, Role
from tenantgraph.settings import Settings
from tenantgraph.stores.embeddings import HashingEmbeddings, StoreIndex
from tenantgraph.stores.items import TenantStore

USERS = 10
TOPICS = 10
DIMS = 64
WORDS = (
    "apple river engine violin market glacier robot bakery garden rocket storm bridge "
    "tulip circuit pastry song price star bread winter school dawn harbour lantern"
).split()
BASELINE_DB = "langgraph_bench"
BYPASS_ROLE = "tenantgraph_bench_bypassrls"
POOL_SIZE = 20


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(8))


def _namespace(user: int, topic: int) -> tuple[str, ...]:
    return ("memories", f"u{user}", f"t{topic}")


class Target:
    """One store under test: a store per user (TenantStore) or one shared (LangGraph)."""

    def __init__(self, name: str, stores: dict[int, BaseStore]) -> None:
        self.name = name
        self.stores = stores
        self.vector_hits: list[int] = []

    def store(self, user: int) -> BaseStore:
        return self.stores.get(user) or self.stores[-1]


async def _load(target: Target, size: int, seed: int) -> None:
    rng = random.Random(seed)
    per_user = size // USERS
    for user in range(USERS):
        for start in range(0, per_user, 1000):
            ops = [
                PutOp(
                    _namespace(user, n % TOPICS),
                    f"k{n}",
                    {"text": _text(rng), "bucket": n % 100},
                )
                for n in range(start, min(per_user, start + 1000))
            ]
            await target.store(user).abatch(ops)


async def _measure(
    op: Callable[[random.Random], Awaitable[object]], ops: int, concurrency: int
) -> float:
    async def worker(n: int) -> None:
        rng = random.Random(n)
        for _ in range(ops // concurrency):
            await op(rng)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return (ops // concurrency) * concurrency / (time.perf_counter() - started)


def _workload(target: Target, size: int) -> dict[str, Callable[[random.Random], Awaitable]]:
    per_user = size // USERS
    counter = iter(range(10**9))

    async def put(rng: random.Random) -> None:
        user = rng.randrange(USERS)
        key = f"new{next(counter)}-{rng.randrange(10**9)}"
        value = {"text": _text(rng), "bucket": rng.randrange(100)}
        await target.store(user).aput(_namespace(user, rng.randrange(TOPICS)), key, value)

    async def get(rng: random.Random) -> None:
        user, n = rng.randrange(USERS), rng.randrange(per_user)
        assert await target.store(user).aget(_namespace(user, n % TOPICS), f"k{n}")

    async def search_filter(rng: random.Random) -> None:
        user = rng.randrange(USERS)
        await target.store(user).asearch(
            ("memories", f"u{user}"), filter={"bucket": rng.randrange(100)}, limit=10
        )

    async def search_vector(rng: random.Random) -> None:
        user = rng.randrange(USERS)
        hits = await target.store(user).asearch(
            ("memories", f"u{user}"), query=_text(rng), limit=10
        )
        target.vector_hits.append(len(hits))

    async def list_namespaces(rng: random.Random) -> None:
        user = rng.randrange(USERS)
        names = await target.store(user).alist_namespaces(prefix=("memories", f"u{user}"))
        assert len(names) == TOPICS

    return {
        "get": get,
        "search(filter)": search_filter,
        "search(vector)": search_vector,
        "list_namespaces": list_namespaces,
        "put": put,
    }


async def _baseline_store(admin: str, stack_pools: list[AsyncConnectionPool]) -> Target:
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {BASELINE_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BASELINE_DB}")
    params = conninfo_to_dict(admin)
    params["dbname"] = BASELINE_DB
    conninfo = make_conninfo(**params)
    pool = AsyncConnectionPool(
        conninfo,
        max_size=POOL_SIZE,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    )
    await pool.open(wait=True)
    stack_pools.append(pool)
    store = AsyncPostgresStore(
        pool, index={"dims": DIMS, "embed": HashingEmbeddings(DIMS), "fields": ["text"]}
    )
    await store.setup()
    return Target("langgraph AsyncPostgresStore", {-1: store})


async def _bypass_database(admin: str) -> Database:
    """A bench-only role like the runtime role but with BYPASSRLS: what RLS costs."""
    params = conninfo_to_dict(admin)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (BYPASS_ROLE,))
        if await cur.fetchone() is None:
            await conn.execute(f"CREATE ROLE {BYPASS_ROLE} LOGIN BYPASSRLS")
            await conn.execute(f"GRANT {APP_ROLE} TO {BYPASS_ROLE}")
        await conn.execute(
            f"ALTER ROLE {BYPASS_ROLE} IN DATABASE {params['dbname']}"
            f" SET search_path = {SCHEMA}, public"
        )
    params["user"] = BYPASS_ROLE
    params.pop("password", None)
    db = Database(make_conninfo(**params), max_size=POOL_SIZE)
    await db.open()
    return db


async def _tenant_target(name: str, db: Database, org: str, index: StoreIndex) -> Target:
    stores: dict[int, BaseStore] = {
        u: TenantStore(db, Principal(org, f"user{u}", Role.MEMBER), index_config=index)
        for u in range(USERS)
    }
    return Target(name, stores)


async def main(sizes: list[int], ops: int, concurrency: int, rounds: int, data_dir: Path) -> None:
    index = StoreIndex(dims=DIMS, embeddings=HashingEmbeddings(DIMS), fields=("text",))
    settings = Settings(data_dir=data_dir, pool_max_size=POOL_SIZE)
    results: dict[int, dict[str, dict[str, float]]] = {}
    hits: dict[int, dict[str, float]] = {}
    async with open_resources(settings) as resources:
        bypass_db = await _bypass_database(resources.admin_conninfo)
        pools: list[AsyncConnectionPool] = []
        try:
            for size in sizes:
                org = f"bench-{size}-{random.randrange(10**6)}"
                async with resources.db.tenant(Principal(org, "setup")) as conn:
                    await conn.execute(
                        "INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)",
                        (org, org, org),
                    )
                ours = await _tenant_target("tenantgraph TenantStore", resources.db, org, index)
                baseline = await _baseline_store(resources.admin_conninfo, pools)
                bypass = await _tenant_target("TenantStore, RLS bypassed", bypass_db, org, index)
                for target in (ours, baseline):
                    started = time.perf_counter()
                    await _load(target, size, seed=size)
                    print(
                        f"loaded {size} items into {target.name} in"
                        f" {time.perf_counter() - started:.1f}s",
                        flush=True,
                    )
                async with await psycopg.AsyncConnection.connect(
                    resources.admin_conninfo, autocommit=True
                ) as conn:
                    await conn.execute("VACUUM ANALYZE tenantgraph.store_items")
                    await conn.execute("VACUUM ANALYZE tenantgraph.store_vectors")
                # The machine is shared: targets take turns, each op runs `rounds` times,
                # and the best round counts.
                results[size] = {}
                workloads = {t.name: _workload(t, size) for t in (ours, baseline, bypass)}
                for name in workloads[ours.name]:
                    for _ in range(rounds):
                        for target in (ours, baseline, bypass):
                            n = ops if name != "put" else ops // 2
                            rate = await _measure(workloads[target.name][name], n, concurrency)
                            best = results[size].setdefault(name, {})
                            best[target.name] = max(rate, best.get(target.name, 0.0))
                    for target, rate in results[size][name].items():
                        print(f"  {size:>8} {target:<30} {name:<16} {rate:>9.0f} ops/s",
                              flush=True)  # fmt: skip
                for target in (ours, baseline, bypass):
                    mean = sum(target.vector_hits) / len(target.vector_hits)
                    hits.setdefault(size, {})[target.name] = mean
                    print(f"  {size:>8} {target.name:<30} vector search returned"
                          f" {mean:.2f} of 10 hits on average", flush=True)  # fmt: skip
                # The baseline gets a fresh database per size; so do we: drop this size's
                # items, so the next size's indexes hold only its own data.
                async with await psycopg.AsyncConnection.connect(
                    resources.admin_conninfo, autocommit=True
                ) as conn:
                    await conn.execute(
                        "DELETE FROM tenantgraph.store_items WHERE org_id = %s", (org,)
                    )
        finally:
            for pool in pools:
                await pool.close()
            await bypass_db.close()
    _report(results, hits)


def _report(
    results: dict[int, dict[str, dict[str, float]]], hits: dict[int, dict[str, float]]
) -> None:
    ours, theirs, bypass = (
        "tenantgraph TenantStore",
        "langgraph AsyncPostgresStore",
        "TenantStore, RLS bypassed",
    )
    print()
    print(f"{'items':>8} {'operation':<16} {'tenantgraph':>12} {'langgraph':>12} "
          f"{'ratio':>7} {'no-RLS':>9} {'RLS cost':>9}")  # fmt: skip
    for size, ops in results.items():
        for name, rates in ops.items():
            cost = (rates[bypass] - rates[ours]) / rates[bypass] * 100
            print(
                f"{size:>8} {name:<16} {rates[ours]:>12.0f} {rates[theirs]:>12.0f} "
                f"{rates[ours] / rates[theirs]:>6.2f}x {rates[bypass]:>9.0f} {cost:>8.1f}%"
            )
    # A store that returns fewer than the 10 hits asked for does less work per search:
    # compare what each delivers.
    print()
    for size, mean in hits.items():
        rates = results[size]["search(vector)"]
        ours_hits, theirs_hits = rates[ours] * mean[ours], rates[theirs] * mean[theirs]
        print(
            f"{size:>8} search(vector) hits/s: tenantgraph {ours_hits:.0f}"
            f" ({mean[ours]:.2f}/search), langgraph {theirs_hits:.0f}"
            f" ({mean[theirs]:.2f}/search), ratio {ours_hits / theirs_hits:.2f}x"
        )
    if len(results) > 1:
        sizes = sorted(results)
        small, large = results[sizes[0]], results[sizes[-1]]
        flat = large["list_namespaces"][ours] / small["list_namespaces"][ours]
        print(
            f"\nlist_namespaces at {sizes[-1]} items runs at {flat:.2f}x its rate at"
            f" {sizes[0]} items (1.00x = flat in the number of items)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--ops", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tenantgraph-bench-"))
    asyncio.run(main(args.sizes, args.ops, args.concurrency, args.rounds, data_dir))
