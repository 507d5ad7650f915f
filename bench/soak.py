"""Soak with injected faults: langgraph-sdk clients loop threads.create → runs.wait → store
put/get against a real `tenantgraph serve` while its embedded Valkey and then its embedded
Postgres are killed (`kill -9` of the pid their data dir records).

The killed server comes back through the server's own supervision, or, with `--outage N`,
the server runs unsupervised and this script restarts it after N seconds. Clients retry
what failed (after `Retry-After`), with the same thread id and `Idempotency-Key`, the way
a careful client would. At the end it reports:

  runs       started (threads given a run), finished (success), failed (error: the echo
             graph never fails, so every one is the server's), duplicated (a thread with
             more than one run), and what runs.wait answered the clients
  writes     acknowledged thread creates and store puts, and how many of them are missing
  faults     per kill: time to the first 503 after it, time from the server's return (its
             new pid) to the first request served, and the statuses seen while it was down

Targets (issue #15): 0 failed, 0 duplicated, 0 lost, first 503 ≤ 1 s, service ≤ 2 s.

Run: .venv/bin/python bench/soak.py [--minutes 10] [--clients 8] [--outage 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api_fixtures import caller, start_api_server  # noqa: E402

from tenantgraph.db.embedded import EmbeddedPostgres  # noqa: E402
from tenantgraph.embedded import EmbeddedValkey, SharedServer  # noqa: E402

MESSAGE = {"messages": [{"role": "user", "content": "hi"}]}
_UNLIMITED = {
    f"TENANTGRAPH_EPHEMERAL__RATE_LIMITS__{bucket}__{field}": value
    for bucket in ("USER_RUNS", "ORG_RUNS", "USER_REQUESTS", "ORG_REQUESTS")
    for field, value in (("LIMIT", "1000000"), ("WINDOW_SECONDS", "60"))
}


@dataclass
class Fault:
    name: str
    killed_at: float
    returned_at: float | None = None
    first_503: float | None = None
    served_at: float | None = None
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass
class Tally:
    threads: list[str] = field(default_factory=list)  # acknowledged creates
    items: dict[tuple[int, str], int] = field(default_factory=dict)  # (client, key): put
    waits: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)

    def seen(self, status: str) -> None:
        """A response status (or error kind) a client or the probe saw, now."""
        now = time.monotonic()
        for fault in self.faults:
            if fault.served_at is None:
                fault.statuses[status] += 1
                if status == "503" and fault.first_503 is None:
                    fault.first_503 = now
        if status != "ok":
            self.errors[status] += 1


def _status(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return str(exc.response.status_code)
    return type(exc).__name__


def _retry_after(exc: BaseException) -> float:
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            return float(exc.response.headers.get("Retry-After", 0.5))
        except ValueError:
            return 0.5
    return 0.5


async def _until_ok(tally: Tally, stop: asyncio.Event, call) -> tuple[Any] | None:
    """`call()` until it succeeds: `(its result,)`, or None when the soak ends first;
    sleeping Retry-After between tries."""
    while not stop.is_set():
        try:
            result = await call()
        except Exception as exc:
            tally.seen(_status(exc))
            await asyncio.sleep(_retry_after(exc))
            continue
        tally.seen("ok")
        return (result,)
    return None


async def client(url: str, org: str, n: int, tally: Tally, stop: asyncio.Event) -> None:
    sdk = caller(url, org, f"user-{n}", "member").sdk
    i = 0
    while not stop.is_set():
        i += 1
        thread_id = str(uuid.uuid4())
        created = await _until_ok(
            tally,
            stop,
            partial(sdk.threads.create, thread_id=thread_id, if_exists="do_nothing"),
        )
        if created is None:
            return
        tally.threads.append(thread_id)
        key = str(uuid.uuid4())
        output = await _until_ok(
            tally,
            stop,
            partial(
                sdk.runs.wait, thread_id, "agent", input=MESSAGE, headers={"Idempotency-Key": key}
            ),
        )
        if output is None:
            return
        failed = isinstance(output[0], dict) and "__error__" in output[0]
        tally.waits["__error__" if failed else "ok"] += 1
        item = f"{n}-{i}"
        if (
            await _until_ok(tally, stop, partial(sdk.store.put_item, ["soak"], item, {"i": i}))
            is None
        ):
            return
        tally.items[n, item] = i
        await _until_ok(tally, stop, partial(sdk.store.get_item, ["soak"], item))


async def probe(http: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """A cheap authenticated read every 50 ms: it needs Valkey (rate limits) and Postgres."""
    while not stop.is_set():
        try:
            response = await http.get("/store/items", params={"namespace": "soak", "key": "none"})
            status = "ok" if response.status_code in (200, 404) else str(response.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        tally.seen(status)
        if status == "ok":
            for fault in tally.faults:
                if fault.returned_at is not None and fault.served_at is None:
                    fault.served_at = time.monotonic()
        await asyncio.sleep(0.05)


def _accepts(server: SharedServer) -> bool:
    """The restarted server takes connections (Postgres is done recovering)."""
    try:
        if isinstance(server, EmbeddedPostgres):
            psycopg.connect(server.conninfo(), connect_timeout=2).close()
        else:
            redis.Redis.from_url(EmbeddedValkey(server.directory.parent).url).ping()
    except Exception:
        return False
    return True


async def inject(server: SharedServer, pidfile: Path, tally: Tally, outage: float) -> Fault:
    """kill -9 the server; wait for it to take connections again, restarted by the server's
    supervision or, after `outage` seconds, by this script."""
    fault = Fault(server.name, time.monotonic())
    tally.faults.append(fault)
    killed = int((await asyncio.to_thread(pidfile.read_text)).splitlines()[0])
    os.kill(killed, signal.SIGKILL)
    if outage > 0:
        await asyncio.sleep(outage)
        await asyncio.to_thread(server.revive)
    while True:  # another process: nothing to wait on but its pid file and socket
        if server.pid() not in (None, killed) and await asyncio.to_thread(_accepts, server):
            break
        await asyncio.sleep(0.02)
    fault.returned_at = time.monotonic()
    return fault


async def audit(
    http: httpx.AsyncClient, readers: list[httpx.AsyncClient], tally: Tally
) -> dict[str, int]:
    """Runs per thread and their statuses; acknowledged writes that cannot be read back."""
    statuses: Counter[str] = Counter()
    duplicated = missing_threads = missing_items = 0
    for thread_id in tally.threads:
        found = await http.get(f"/threads/{thread_id}")
        if found.status_code != 200:
            missing_threads += 1
            continue
        runs = (await http.get(f"/threads/{thread_id}/runs", params={"limit": 100})).json()
        duplicated += max(0, len(runs) - 1)
        statuses.update(run["status"] for run in runs)
    for (n, key), i in tally.items.items():  # an item is its writer's: read as that user
        got = await readers[n].get("/store/items", params={"namespace": "soak", "key": key})
        if got.status_code != 200 or got.json()["value"] != {"i": i}:
            missing_items += 1
    return {
        "started": sum(statuses.values()) - duplicated,
        "finished": statuses["success"],
        "failed": statuses["error"],
        "unfinished": sum(n for s, n in statuses.items() if s not in ("success", "error")),
        "duplicated": duplicated,
        "threads lost": missing_threads,
        "items lost": missing_items,
    }


def _seconds(start: float, end: float | None) -> str:
    return "never" if end is None else f"{end - start:.2f} s"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SDK clients")
    parser.add_argument(
        "--outage",
        type=float,
        default=0.0,
        help="seconds each killed server stays down (0: the server's supervision restarts it)",
    )
    args = parser.parse_args()
    seconds = args.minutes * 60

    with tempfile.TemporaryDirectory(prefix="tenantgraph-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {**_UNLIMITED, "TENANTGRAPH_SUPERVISE_EMBEDDED": str(args.outage <= 0).lower()}
        server = start_api_server(data_dir, **env)
        org = f"soak-{uuid.uuid4().hex[:6]}"
        http = caller(server.url, org, "auditor", "admin").http
        tally, stop = Tally(), asyncio.Event()
        began = time.monotonic()
        tasks = [
            asyncio.create_task(client(server.url, org, n, tally, stop))
            for n in range(args.clients)
        ]
        tasks.append(asyncio.create_task(probe(http, tally, stop)))
        try:
            plan = [
                (0.3, EmbeddedValkey(data_dir), data_dir / "valkey" / "valkey.pid"),
                (0.65, EmbeddedPostgres(data_dir), data_dir / "pg" / "postmaster.pid"),
            ]
            for at, embedded, pidfile in plan:
                await asyncio.sleep(max(0.0, began + at * seconds - time.monotonic()))
                print(f"{time.monotonic() - began:7.1f} s  kill -9 {embedded.name}", flush=True)
                fault = await inject(embedded, pidfile, tally, args.outage)
                print(
                    f"{time.monotonic() - began:7.1f} s  {embedded.name} back"
                    f" ({_seconds(fault.killed_at, fault.returned_at)} after the kill)",
                    flush=True,
                )
            await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        readers = [caller(server.url, org, f"user-{n}", "member").http for n in range(args.clients)]
        report = await audit(http, readers, tally)
        for reader in [http, *readers]:
            await reader.aclose()
        server.terminate()

    print(f"\nsoak: {args.minutes:g} min, {args.clients} clients, outage {args.outage:g} s")
    print("runs    " + ", ".join(f"{k} {v}" for k, v in report.items() if "lost" not in k))
    print(f"        runs.wait answered: {dict(tally.waits)}")
    print(
        f"writes  acknowledged: {len(tally.threads)} threads, {len(tally.items)} store items;"
        f" lost: {report['threads lost']} threads, {report['items lost']} items"
    )
    print(f"errors  seen by clients and probe: {dict(tally.errors)}")
    for fault in tally.faults:
        print(
            f"fault   {fault.name}: first 503 {_seconds(fault.killed_at, fault.first_503)} after"
            f" the kill; back {_seconds(fault.killed_at, fault.returned_at)} after it; served"
            f" {_seconds(fault.returned_at or fault.killed_at, fault.served_at)} after its"
            f" return; statuses meanwhile {dict(fault.statuses)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
