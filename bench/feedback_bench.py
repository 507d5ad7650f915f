"""Feedback at scale: ingest over HTTP and `GET /feedback/stats` over a large org.

  seed       1,000,000 events in the measured org over the last 365 days (keys `thumbs`,
             0/1 scores, and `stars`, 1-5) and 10,000 in each of 100 other orgs, written
             with one INSERT … SELECT generate_series per org (no HTTP), then VACUUM ANALYZE.
  ingest     `POST /runs/{id}/feedback` from 16 concurrent clients: events/s.
  stats      `GET /feedback/stats?key=thumbs&since=<30 days ago>` as the org's admin over
             HTTP (median, p95), and the statement it runs in Postgres timed twice in this
             process: as the server runs it (runtime role, tenant set, RLS forced) and the
             same statement with RLS bypassed (the superuser, `row_security = off`): the
             difference is what RLS costs. Then the plan (EXPLAIN ANALYZE) of the RLS run.
  fresh      an event written just before a stats call is counted by it (no roll-up).

Run: .venv/bin/python bench/feedback_bench.py [--events 1000000] [--orgs 100]
     [--per-org 10000] [--ingest 4000] [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg import AsyncConnection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.runs_bench import SERVER_ENV  # noqa: E402
from tests.api_fixtures import Tenants, start_api_server  # noqa: E402

from tenantgraph.resources import open_resources  # noqa: E402
from tenantgraph.scope import Principal, Role  # noqa: E402
from tenantgraph.settings import Settings  # noqa: E402
from tenantgraph.stores import feedback as store  # noqa: E402

HI = {"messages": [{"role": "user", "content": "hi"}]}
# One statement per org: `n` events spread over the last year, half `thumbs` (0/1), half
# `stars` (1-5), from 50 users, attributed to one run of the org.
SEED = """
INSERT INTO tenantgraph.feedback (org_id, feedback_id, run_id, thread_id, assistant_id,
    assistant_version, user_id, key, score, created_at)
SELECT %(org)s, gen_random_uuid(), %(run)s, %(thread)s, %(assistant)s, 1,
       'user-' || (i %% 50), CASE WHEN i %% 2 = 0 THEN 'thumbs' ELSE 'stars' END,
       CASE WHEN i %% 2 = 0 THEN (i / 2 %% 3 > 0)::int ELSE 1 + i %% 5 END,
       now() - (i::double precision / %(n)s) * interval '365 days'
FROM generate_series(1, %(n)s) AS i
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def seed(admin_conninfo: str, main_org: str, run: dict, args: argparse.Namespace) -> None:
    """The measured org's events and the other orgs (created here) with theirs."""
    started = time.perf_counter()
    async with await AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        ids = {"run": run["run_id"], "thread": run["thread_id"], "assistant": run["assistant_id"]}
        await conn.execute(SEED, {"org": main_org, "n": args.events, **ids})
        for i in range(args.orgs):
            org = f"other-{i}-{uuid.uuid4().hex[:6]}"
            await conn.execute(
                "INSERT INTO tenantgraph.orgs (org_id, name, slug) VALUES (%s, %s, %s)", (org,) * 3
            )
            await conn.execute(SEED, {"org": org, "n": args.per_org, **ids})
        await conn.execute("VACUUM ANALYZE tenantgraph.feedback")
    total = args.events + args.orgs * args.per_org
    print(
        f"seed     {args.events:,} events in the measured org, {args.per_org:,} in each of"
        f" {args.orgs} others ({total:,} rows) in {time.perf_counter() - started:.0f} s"
    )


async def per_second(total: int, clients: int, call) -> float:
    """Calls per second of `clients` concurrent callers making `total` calls in all."""
    per_client = total // clients

    async def client(index: int) -> None:
        for i in range(per_client):
            await call(index + i)

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return clients * per_client / (time.perf_counter() - start)


async def ingest(admin, run: dict, total: int, clients: int = 16) -> None:
    """Feedback events/s, beside the same clients reading the run's thread (`GET
    /threads/{id}`, one indexed row): what any authenticated request costs here."""

    async def give(i: int) -> None:
        sent = await admin.http.post(
            f"/runs/{run['run_id']}/feedback",
            json={"key": "ingest", "score": i % 2, "source": {"tool": "bench"}},
        )
        assert sent.status_code == 200, sent.text

    async def read(_: int) -> None:
        got = await admin.http.get(f"/threads/{run['thread_id']}")
        assert got.status_code == 200, got.text

    events = await per_second(total, clients, give)
    reads = await per_second(total, clients, read)
    print(
        f"ingest   {clients} clients, {total:,} events: {events:7.0f} events/s"
        f"  (GET /threads/{{id}} by the same clients: {reads:7.0f} requests/s)"
    )


async def timed_sql(
    conns: list[AsyncConnection], statement: str, params: dict, samples: int
) -> list[float]:
    """Median ms of the statement on each of `conns`, the runs interleaved (so a change of
    the machine's load falls on both alike), after 3 warm-up runs each."""
    times: list[list[float]] = [[] for _ in conns]
    for i in range(samples + 3):
        for conn, timed in zip(conns, times, strict=True):
            start = time.perf_counter()
            await (await conn.execute(statement, params)).fetchall()
            if i >= 3:
                timed.append((time.perf_counter() - start) * 1000)
    return [statistics.median(t) for t in times]


async def stats(res, admin, main_org: str, samples: int) -> None:
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    query = {"key": "thumbs", "since": since}
    for _ in range(3):
        await admin.http.get("/feedback/stats", params=query)
    http = []
    for _ in range(samples):
        start = time.perf_counter()
        answer = await admin.http.get("/feedback/stats", params=query)
        http.append((time.perf_counter() - start) * 1000)
    [group] = answer.json()
    print(
        f"stats    HTTP GET /feedback/stats (30 days, {group['count']:,} events):"
        f" median {statistics.median(http):5.1f} ms  p95 {percentile(http, 0.95):5.1f} ms"
    )
    principal = Principal(main_org, admin.user, Role.ADMIN)
    statement, params = store.stats_query(
        principal, {"key": "thumbs", "since": datetime.fromisoformat(since)}, None
    )
    async with (
        res.db.tenant(principal) as conn,
        await AsyncConnection.connect(res.admin_conninfo, autocommit=True) as bypass,
    ):
        await bypass.execute("SET search_path = tenantgraph; SET row_security = off")
        with_rls, bypassed = await timed_sql([conn, bypass], statement, params, samples)
        plan = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        plan_lines = [row["QUERY PLAN"] for row in await plan.fetchall()]
    print(
        f"stats    SQL in Postgres: RLS {with_rls:5.2f} ms  RLS bypassed {bypassed:5.2f} ms"
        f"  RLS cost {(with_rls / bypassed - 1) * 100:+5.1f}%"
    )
    print("plan     (runtime role, RLS forced)")
    for line in plan_lines:
        print("         " + line)


async def fresh(admin, run_id: str) -> None:
    key = f"fresh{uuid.uuid4().hex[:8]}"
    before = (await admin.http.get("/feedback/stats", params={"key": key})).json()
    await admin.http.post(f"/runs/{run_id}/feedback", json={"key": key, "score": 1})
    [after] = (await admin.http.get("/feedback/stats", params={"key": key})).json()
    assert before == [] and after["count"] == 1, (before, after)
    print("fresh    an event written just before GET /feedback/stats is counted: yes")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--per-org", type=int, default=10_000)
    parser.add_argument("--ingest", type=int, default=4000)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir, pg_shared_buffers_mb=256, config=None)
        async with open_resources(settings) as res:
            server = start_api_server(data_dir, **SERVER_ENV)
            try:
                admin = Tenants.create(server.url).a_admin
                thread = await admin.sdk.threads.create()
                run = await admin.sdk.runs.wait(thread["thread_id"], "agent", input=HI)
                [run] = await admin.sdk.runs.list(thread["thread_id"])
                await seed(res.admin_conninfo, admin.org, run, args)
                await ingest(admin, run, args.ingest)
                await stats(res, admin, admin.org, args.samples)
                await fresh(admin, run["run_id"])
            finally:
                server.terminate()


if __name__ == "__main__":
    asyncio.run(main())
