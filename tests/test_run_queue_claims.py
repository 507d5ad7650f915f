"""Claims: fair (a backlog of one org, or of one user, does not hold back anyone else's
runs), and only of the graphs the claiming worker has. In a database of their own, so no
worker of another test claims (or loses) these runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tenantgraph.db.database import Database
from tenantgraph.db.migrate import migrate
from tenantgraph.resources import runtime_conninfo
from tenantgraph.runtime.worker import claim_runs
from tenantgraph.scope import Principal, Role
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.runs import RunCreate, Runs

GRAPHS = ["agent", "memory"]
BACKLOG = 500
WORKER_CONCURRENCY = 4  # a claim of four runs: alice gets two of them, bob and carol one each


@pytest.fixture
async def queue_db(fresh_database, settings) -> AsyncIterator[Database]:
    await migrate(fresh_database)
    db = Database(runtime_conninfo(settings, fresh_database), min_size=1, max_size=4)
    await db.open()
    yield db
    await db.close()


async def _queue(
    runs: Runs, principal: Principal, count: int, graph: str = "agent"
) -> list[uuid.UUID]:
    body = RunCreate(input={"messages": []})
    created = []
    for _ in range(count):
        run = await runs.create(principal, None, None, body, default_graph=graph)
        created.append(run["run_id"])
    return created


async def test_a_backlog_of_one_org_and_one_user_delays_no_one_else(resources, queue_db):
    orgs, runs = Orgs(queue_db, resources.redis), Runs(queue_db, resources.redis, resources.streams)
    alice, bob = Principal("fair-a", "alice"), Principal("fair-a", "bob")
    carol = Principal("fair-b", "carol")
    for org, owner in (("fair-a", "alice"), ("fair-b", "carol")):
        await orgs.create_org(org, org, owner=owner)
    await orgs.set_member(Principal("fair-a", "alice", Role.OWNER), "bob", Role.MEMBER)

    backlog = await _queue(runs, alice, BACKLOG)  # queued first: FIFO would take these
    (bobs,) = await _queue(runs, bob, 1)
    (carols,) = await _queue(runs, carol, 1)

    claimed = await claim_runs(queue_db, "fair-worker", WORKER_CONCURRENCY, 30, GRAPHS)
    claimed_ids = [c.run_id for c in claimed]
    assert len(claimed_ids) == WORKER_CONCURRENCY
    assert bobs in claimed_ids  # another user of the same org
    assert carols in claimed_ids  # another org
    # Alice still gets her turns, oldest first.
    assert [r for r in claimed_ids if r in set(backlog)] == backlog[:2]

    # Claimed runs are not claimed again; the next claim goes on with alice's backlog.
    again = [c.run_id for c in await claim_runs(queue_db, "fair-worker", 4, 30, GRAPHS)]
    assert again == backlog[2:6]


async def test_a_worker_claims_only_runs_of_graphs_it_has(resources, queue_db):
    orgs, runs = Orgs(queue_db, resources.redis), Runs(queue_db, resources.redis, resources.streams)
    alice = Principal("claims-a", "alice")
    await orgs.create_org("claims-a", "claims-a", owner="alice")
    (memory_run,) = await _queue(runs, alice, 1, graph="memory")
    (agent_run,) = await _queue(runs, alice, 1, graph="agent")

    # A worker started with an older config, without the `memory` graph.
    older = await claim_runs(queue_db, "older-worker", 10, 30, ["agent"])
    assert [c.run_id for c in older] == [agent_run]
    assert (await runs.get(alice, memory_run))["status"] == "pending"
    # A worker that has the graph takes the run the other one left.
    newer = await claim_runs(queue_db, "newer-worker", 10, 30, ["agent", "memory"])
    assert [c.run_id for c in newer] == [memory_run]
