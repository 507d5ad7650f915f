"""Rows the runtime tests need: an org with two users, an assistant per example graph."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from psycopg.types.json import Jsonb

from tenantgraph.db.database import Database
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.worker import Worker
from tenantgraph.scope import Principal, Role
from tenantgraph.services.crons import Crons
from tenantgraph.services.runs import Runs

TERMINAL = {"success", "error", "interrupted", "timeout"}
ROOT = Path(__file__).resolve().parent.parent
GRAPHS = {
    "agent": "./examples/echo.py:graph",
    "memory": "./examples/memory.py:graph",
    "hitl": "./examples/interrupt.py:graph",
    "custom": "./examples/custom_stream.py:graph",
    "probe": "./tests/probe_graph.py:graph",
    "slow": "./examples/slow.py:graph",
}


def said(text: str) -> dict:
    """A user's message as a run's input."""
    return {"messages": [{"role": "user", "content": text}]}


def registry() -> GraphRegistry:
    return GraphRegistry(GRAPHS, ROOT)


async def make_org(db: Database, org: str) -> tuple[Principal, Principal, dict[str, uuid.UUID]]:
    """An org with alice (admin) and bob (member) and one assistant per graph id."""
    alice = Principal(org, "alice", Role.ADMIN)
    bob = Principal(org, "bob", Role.MEMBER)
    assistants = {graph_id: uuid.uuid4() for graph_id in GRAPHS}
    async with db.tenant(alice) as conn:
        await conn.execute(
            "INSERT INTO orgs (org_id, name, slug) VALUES (%s, %s, %s)", (org, org, org)
        )
        for graph_id, assistant_id in assistants.items():
            await conn.execute(
                "INSERT INTO assistants (org_id, assistant_id, graph_id, name, config)"
                " VALUES (%s, %s, %s, %s, %s)",
                (org, assistant_id, graph_id, graph_id, Jsonb({"configurable": {}})),
            )
    return alice, bob, assistants


async def make_thread(db: Database, principal: Principal) -> uuid.UUID:
    thread_id = uuid.uuid4()
    async with db.tenant(principal) as conn:
        await conn.execute(
            "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, %s)",
            (principal.org_id, thread_id, principal.user_id),
        )
    return thread_id


def make_worker(resources, stores=None, **options) -> Worker:
    """A worker that polls often and fires crons, as the app and `tenantgraph worker` build."""
    crons = Crons(resources.db, Runs(resources.db, resources.redis, resources.streams))
    defaults = {
        "poll_seconds": 0.05,
        "heartbeat_seconds": 0.1,
        "lease_seconds": 5.0,
        "cron_seconds": 0.1,
        "fire_crons": crons.fire_due,
    }
    return Worker(
        resources.db,
        resources.redis,
        registry(),
        stores or (lambda principal: None),
        **{**defaults, **options},
    )


async def wait_for(runs: Runs, principal: Principal, run_id, statuses=TERMINAL) -> dict:
    for _ in range(400):
        run = await runs.get(principal, run_id)
        if run["status"] in statuses:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} stayed {run['status']}")
