"""TenantStore against LangGraph's AsyncPostgresStore on the same embedded Postgres.

    python bench/store_bench.py [--sizes 10000 1000000] [--ops 2000] [--concurrency 16]

Both stores get the same data (items under ("memories", user, topic), a `text` field
embedded by the offline hashing embedder, a numeric `bucket`), bulk loaded by default
(`--load api` puts it through each store), and the same workload: get, search with a
filter, vector search, list_namespaces, put (new items) and update (an item put again
with its text unchanged). LangGraph's store
lives in its own database on the same server (connected as superuser, as it has no
roles); TenantStore runs as the runtime role with forced RLS, and once more as a
bench-only role with BYPASSRLS to show what the policy check costs (the two back to back in
each round; the cost is the median of their per-round ratios). Prints ops/s (best round)
and ratios; higher is better.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from langgraph.store.base import BaseStore, ListNamespacesOp, MatchCondition, PutOp
from langgraph.store.postgres import AsyncPostgresStore
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from tenantgraph.db.database import Database
from tenantgraph.db.migrate import APP_ROLE, SCHEMA
from tenantgraph.resources import open_resources
from tenantgraph.scope import Principal, Role
from tenantgraph.services.embeddings import HashingEmbeddings, StoreIndex
from tenantgraph.services.tenant_store import TenantStore
from tenantgraph.settings import Settings
from tenantgraph.stores import item_reads, vectors

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
MIN_SECONDS = 2
WARM_UP = 200  # operations per target before an operation's rounds
MAX_SECONDS = 10
_NEW_KEYS = itertools.count()


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


def _items(size: int, seed: int) -> Iterator[tuple[int, tuple[str, ...], str, dict[str, Any]]]:
    """The bench data set: (user, namespace, key, value), the same for every loader."""
    rng = random.Random(seed)
    for user in range(USERS):
        for n in range(size // USERS):
            yield (
                user,
                _namespace(user, n % TOPICS),
                f"k{n}",
                {"text": _text(rng), "bucket": n % 100},
            )


async def _load(target: Target, size: int, seed: int) -> None:
    """Load through the store API, 1000 items a call."""
    batch: list[PutOp] = []
    for user, namespace, key, value in _items(size, seed):
        batch.append(PutOp(namespace, key, value))
        if len(batch) == 1000:
            await target.store(user).abatch(batch)
            batch = []
    if batch:
        await target.store(user).abatch(batch)


# Bulk load: the rows each store's put would write, staged by COPY and moved with one
# INSERT … SELECT per table, with the HNSW index dropped and rebuilt around it (the same
# for both stores). Timestamps come from clock_timestamp(), increasing row by row as
# sequential puts would make them.
_STAGE = """
CREATE TEMP TABLE bench_stage (
    owner_id text, namespace text[], key text, value jsonb, embedding vector({dims})
) ON COMMIT DROP
"""
# Before the vectors go in: each vector row's foreign key check is planned from the
# parent's statistics, and stale ones (an emptied table) made it a scan per row (a 1M load
# stuck for 15 min in the check).
_ANALYZE_PARENT = "ANALYZE {table}"
_OURS_BULK = (
    f"SET LOCAL search_path = {SCHEMA}, public",
    """INSERT INTO store_items (org_id, owner_id, namespace, key, value,
           created_at, updated_at)
       SELECT %(org)s, owner_id, namespace, key, value, clock_timestamp(), clock_timestamp()
       FROM bench_stage""",
    _ANALYZE_PARENT.format(table="store_items"),
    """INSERT INTO store_namespaces (org_id, owner_id, namespace)
       SELECT DISTINCT %(org)s, owner_id, namespace FROM bench_stage""",
    # What puts leave behind: owners past the exact-search bound promoted, their vectors
    # in the HNSW index (the indexer has moved the early ones); the others counted.
    """INSERT INTO store_vectors (org_id, owner_id, ns_path, key, field, embedding, ann)
       SELECT %(org)s, owner_id, store_ns_path(namespace), key, 'text', embedding,
              count(*) OVER (PARTITION BY owner_id) > %(exact_max)s
       FROM bench_stage""",
    """INSERT INTO store_ann_owners (org_id, owner_id, pending)
       SELECT %(org)s, owner_id, false FROM bench_stage
       GROUP BY owner_id HAVING count(*) > %(exact_max)s""",
    """INSERT INTO store_vector_counts (org_id, owner_id, shard, added)
       SELECT %(org)s, owner_id, 0, count(*) FROM bench_stage
       GROUP BY owner_id HAVING count(*) <= %(exact_max)s""",
    """INSERT INTO store_usage AS u (org_id, shard, items, bytes)
       SELECT %(org)s, 0, count(*), sum(value_bytes) FROM store_items
       WHERE org_id = %(org)s
       ON CONFLICT (org_id, shard) DO UPDATE SET items = u.items + excluded.items,
           bytes = u.bytes + excluded.bytes""",
)
_THEIRS_BULK = (
    """INSERT INTO store (prefix, key, value, created_at, updated_at)
       SELECT array_to_string(namespace, '.'), key, value, clock_timestamp(), clock_timestamp()
       FROM bench_stage""",
    _ANALYZE_PARENT.format(table="store"),
    """INSERT INTO store_vectors (prefix, key, field_name, embedding, created_at, updated_at)
       SELECT array_to_string(namespace, '.'), key, 'text', embedding, clock_timestamp(),
              clock_timestamp()
       FROM bench_stage""",
)
_HNSW_INDEXES = """
SELECT format('%I.%I', schemaname, indexname), indexdef FROM pg_indexes
WHERE tablename = 'store_vectors' AND indexdef LIKE '%USING hnsw%'
"""
_OURS_TABLES = tuple(
    f"{SCHEMA}.{t}"
    for t in (
        "store_items",
        "store_namespaces",
        "store_vectors",
        "store_usage",
        "store_vector_counts",
        "store_ann_owners",
    )
)
_THEIRS_TABLES = ("store", "store_vectors")


async def _bulk_load(
    conninfo: str, statements: tuple[str, ...], tables: tuple[str, ...], org: str, size: int
) -> None:
    """Stage the data set by COPY, move it with `statements`, rebuild HNSW, VACUUM ANALYZE."""
    embeddings = HashingEmbeddings(DIMS)
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        await conn.execute("SET maintenance_work_mem = '4GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        indexes = await (await conn.execute(_HNSW_INDEXES)).fetchall()
        for name, _ in indexes:
            await conn.execute(f"DROP INDEX {name}")
        await conn.execute(_STAGE.format(dims=DIMS))
        async with conn.cursor().copy("COPY bench_stage FROM STDIN") as copy:
            for user, namespace, key, value in _items(size, seed=size):
                (vector,) = embeddings.embed_documents([value["text"]])
                await copy.write_row(
                    (f"user{user}", list(namespace), key, Jsonb(value), str(vector))
                )
        for statement in statements:
            await conn.execute(statement, {"org": org, "exact_max": vectors.EXACT_MAX})
        for _, definition in indexes:
            await conn.execute(definition)
        await conn.commit()
        await conn.set_autocommit(True)
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE {table}")


async def _vacuum(conninfo: str, tables: tuple[str, ...]) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for table in tables:
            await conn.execute(f"VACUUM ANALYZE {table}")


async def _check_loaded(target: Target, size: int) -> None:
    """Read a sample back through the store's API: values as loaded, and each item found by
    a vector search for its own text (same vector: score 1)."""
    sample = range(0, size, max(1, size // 20))
    for n, (user, namespace, key, value) in enumerate(_items(size, seed=size)):
        if n not in sample:
            continue
        store = target.store(user)
        item = await store.aget(namespace, key)
        assert item is not None and item.value == value, (target.name, namespace, key, item)
        hits = await store.asearch(namespace, query=value["text"], limit=10)
        assert any(h.key == key and h.score > 0.999 for h in hits), (target.name, key, hits)


async def _measure(
    op: Callable[[random.Random], Awaitable[object]], ops: int, concurrency: int, min_seconds: float
) -> float:
    """Ops/s over at least `ops` operations and `min_seconds` (a get takes ~0.1 ms: 2,000 of
    them alone were a window too short for a stable rate), or over those done in MAX_SECONDS
    (a scan of 1M items at ~10 ops/s would otherwise take minutes a measurement)."""
    started = time.perf_counter()
    at_least, deadline = started + min_seconds, started + MAX_SECONDS
    done = 0

    async def worker(n: int) -> None:
        nonlocal done
        rng = random.Random(n)
        while True:
            await op(rng)
            done += 1
            now = time.perf_counter()
            if now > deadline or (done >= ops and now > at_least):
                return

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done / (time.perf_counter() - started)


def _workload(
    target: Target, size: int, texts: list[str]
) -> dict[str, Callable[[random.Random], Awaitable]]:
    """The measured operations; `texts` are the loaded items' texts, in `_items` order."""
    per_user = size // USERS

    async def put(rng: random.Random) -> None:
        user = rng.randrange(USERS)
        key = f"new{next(_NEW_KEYS)}"  # never an item any target has written
        value = {"text": _text(rng), "bucket": rng.randrange(100)}
        await target.store(user).aput(_namespace(user, rng.randrange(TOPICS)), key, value)

    async def update(rng: random.Random) -> None:
        """A loaded item put again with its text unchanged and one more field."""
        user, n = rng.randrange(USERS), rng.randrange(per_user)
        value = {"text": texts[user * per_user + n], "bucket": n % 100, "seen": next(_NEW_KEYS)}
        await target.store(user).aput(_namespace(user, n % TOPICS), f"k{n}", value)

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
        "update": update,
    }


async def _baseline_database(admin: str) -> str:
    """A fresh database for LangGraph's store on the same server; returns its conninfo."""
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {BASELINE_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BASELINE_DB}")
    params = conninfo_to_dict(admin)
    params["dbname"] = BASELINE_DB
    return make_conninfo(**params)


async def _baseline_store(conninfo: str, stack_pools: list[AsyncConnectionPool]) -> Target:
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


async def main(
    sizes: list[int],
    ops: int,
    concurrency: int,
    rounds: int,
    data_dir: Path,
    only: list[str],
    load: str,
) -> None:
    index = StoreIndex(dims=DIMS, embeddings=HashingEmbeddings(DIMS), fields=("text",))
    settings = Settings(data_dir=data_dir, pool_max_size=POOL_SIZE)
    results: dict[int, dict[str, dict[str, float]]] = {}
    rls: dict[int, dict[str, list[float]]] = {}  # per round: with RLS / bypassed
    hits: dict[int, dict[str, float]] = {}
    listing: dict[int, int] = {}
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
                baseline_conninfo = await _baseline_database(resources.admin_conninfo)
                baseline = await _baseline_store(baseline_conninfo, pools)
                async with await psycopg.AsyncConnection.connect(
                    resources.admin_conninfo, autocommit=True
                ) as conn:  # our HNSW index exists before the first put, as in the server
                    await conn.execute(
                        f"SELECT {SCHEMA}.ensure_store_vector_index(%s, %s, %s)",
                        (DIMS, index.m, index.ef_construction),
                    )
                bypass = await _tenant_target("TenantStore, RLS bypassed", bypass_db, org, index)
                started = time.perf_counter()
                if load == "api":
                    for target in (ours, baseline):
                        await _load(target, size, seed=size)
                    await _vacuum(resources.admin_conninfo, _OURS_TABLES)
                    await _vacuum(baseline_conninfo, _THEIRS_TABLES)
                else:
                    await _bulk_load(resources.admin_conninfo, _OURS_BULK, _OURS_TABLES, org, size)
                    await _bulk_load(baseline_conninfo, _THEIRS_BULK, _THEIRS_TABLES, org, size)
                print(f"loaded {size} items into both stores ({load}) in"
                      f" {time.perf_counter() - started:.0f}s", flush=True)  # fmt: skip
                for target in (ours, baseline):
                    await _check_loaded(target, size)
                # The machine is shared: targets take turns, each op runs `rounds` times,
                # and the best round counts.
                results[size] = {}
                texts = [value["text"] for *_, value in _items(size, seed=size)]
                workloads = {t.name: _workload(t, size, texts) for t in (ours, baseline, bypass)}
                for name in workloads[ours.name]:
                    if only and name not in only:
                        continue
                    # Untimed first: every pooled connection prepares its statements and
                    # the pages come into memory (the first round ran 6-25% slower).
                    for target in (ours, bypass, baseline):
                        await _measure(workloads[target.name][name], WARM_UP, concurrency, 0)
                    for round_ in range(rounds):
                        # Ours and the RLS-bypassing role run back to back, first one then
                        # the other, so the machine's drift between rounds cancels out of
                        # their ratio (best-of-N alone left ±15% of noise in the RLS cost).
                        pair = (ours, bypass) if round_ % 2 == 0 else (bypass, ours)
                        rates: dict[str, float] = {}
                        for target in (*pair, baseline):
                            # Writes: a fixed count, so the store stays near its size.
                            writes = name in ("put", "update")
                            rate = await _measure(
                                workloads[target.name][name],
                                ops // 2 if writes else ops,
                                concurrency,
                                0 if writes else MIN_SECONDS,
                            )
                            rates[target.name] = rate
                            best = results[size].setdefault(name, {})
                            best[target.name] = max(rate, best.get(target.name, 0.0))
                        rls.setdefault(size, {}).setdefault(name, []).append(
                            rates[ours.name] / rates[bypass.name]
                        )
                    for target, rate in results[size][name].items():
                        print(f"  {size:>8} {target:<30} {name:<16} {rate:>9.0f} ops/s",
                              flush=True)  # fmt: skip
                for target in (ours, baseline, bypass):
                    if not target.vector_hits:
                        continue
                    mean = sum(target.vector_hits) / len(target.vector_hits)
                    hits.setdefault(size, {})[target.name] = mean
                    print(f"  {size:>8} {target.name:<30} vector search returned"
                          f" {mean:.2f} of 10 hits on average", flush=True)  # fmt: skip
                listing[size] = await _listing_buffers(ours.stores[0])
                # The baseline gets a fresh database per size; so do we: drop this size's
                # items, so the next size's indexes hold only its own data.
                async with await psycopg.AsyncConnection.connect(
                    resources.admin_conninfo, autocommit=True
                ) as conn:
                    await conn.execute(
                        f"DELETE FROM {SCHEMA}.store_items WHERE org_id = %s", (org,)
                    )
        finally:
            for pool in pools:
                await pool.close()
            await bypass_db.close()
    _report(results, rls, hits, listing)


async def _listing_buffers(store: TenantStore) -> int:
    """Shared buffers one list_namespaces call touches (EXPLAIN ANALYZE of the statement the
    store builds, under RLS, generic plan): the work per call, whatever the machine does."""
    op = ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("memories", "u0")),))
    # The store's own builder: the measured SQL.
    sql, params = item_reads.list_namespaces_statement(store.principal, op)
    async with store.db.tenant(store.principal, settings=item_reads.read_settings([op])) as conn:
        for _ in range(6):  # past psycopg's prepare threshold: the plan the store runs
            cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        row = await cur.fetchone()
    assert row is not None
    plan = next(iter(row.values()))[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


def _report(
    results: dict[int, dict[str, dict[str, float]]],
    rls: dict[int, dict[str, list[float]]],
    hits: dict[int, dict[str, float]],
    listing: dict[int, int],
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
            cost = (1 - statistics.median(rls[size][name])) * 100
            print(
                f"{size:>8} {name:<16} {rates[ours]:>12.0f} {rates[theirs]:>12.0f} "
                f"{rates[ours] / rates[theirs]:>6.2f}x {rates[bypass]:>9.0f} {cost:>8.1f}%"
            )
    print("(ops/s: best round; RLS cost: 1 - median over rounds of with-RLS / bypassed ops/s,")
    print(" the two measured back to back)")
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
    if len(results) > 1 and all("list_namespaces" in ops for ops in results.values()):
        sizes = sorted(results)
        small, large = results[sizes[0]], results[sizes[-1]]
        flat = large["list_namespaces"][ours] / small["list_namespaces"][ours]
        print(
            f"\nlist_namespaces at {sizes[-1]} items runs at {flat:.2f}x its rate at"
            f" {sizes[0]} items (1.00x = flat in the number of items)"
        )
    for size, buffers in listing.items():
        print(f"list_namespaces at {size:>8} items touches {buffers} shared buffers a call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--ops", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many runs")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--load",
        choices=["copy", "api"],
        default="copy",
        help="copy: bulk load the same rows into both stores; api: put through each store",
    )
    parser.add_argument("--only", nargs="+", default=[], help="measure only these operations")
    args = parser.parse_args()
    # Without --data-dir the servers' data (GBs at 1M items) goes when the bench ends.
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tenantgraph-bench-"))
        )
        sizes, ops, clients, rounds = args.sizes, args.ops, args.concurrency, args.rounds
        asyncio.run(main(sizes, ops, clients, rounds, data_dir, args.only, args.load))
