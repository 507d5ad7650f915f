"""Postgres out of reach is `Unavailable` at once (the breaker), and a checkpoint write that
meets a dropped connection is retried on a fresh one."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tenantgraph.db.database import Database
from tenantgraph.errors import Unavailable
from tenantgraph.resources import runtime_conninfo
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.scope import Principal

from .runtime_fixtures import make_org, make_thread


@pytest.fixture
async def tagged_db(resources):
    """A one-connection pool whose backend a test can find (and terminate) by its name."""
    name = f"outage-{uuid.uuid4().hex[:8]}"
    conninfo = runtime_conninfo(resources.settings, resources.admin_conninfo)
    db = Database(
        make_conninfo(**{**conninfo_to_dict(conninfo), "application_name": name}),
        min_size=1,
        max_size=1,
    )
    await db.open()
    yield db, name
    await db.close()


async def _terminate(resources, application_name: str) -> int:
    """pg_terminate_backend every backend of `application_name`, waiting for each to exit."""
    async with await psycopg.AsyncConnection.connect(
        resources.admin_conninfo, autocommit=True
    ) as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) FROM"
            " pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        return (await cur.fetchone())[0]


async def test_checkpoint_writes_survive_a_dropped_connection(resources, org_ids, tagged_db):
    db, name = tagged_db
    alice, _, _ = await make_org(resources.db, org_ids[0])
    thread_id = await make_thread(resources.db, alice)
    saver = TenantCheckpointer(db, alice)
    config = {"configurable": {"thread_id": str(thread_id), "checkpoint_ns": ""}}

    first = await saver.aput(config, empty_checkpoint(), {"step": -1}, {})
    assert await _terminate(resources, name) == 1
    await saver.aput_writes(first, [("answer", 42)], task_id="task-1")
    assert await _terminate(resources, name) == 1
    second = empty_checkpoint()
    second_config = await saver.aput(first, second, {"step": 0}, {})
    assert await _terminate(resources, name) == 1

    latest = await saver.aget_tuple(config)
    assert latest.config == second_config
    parent = await saver.aget_tuple(first)
    assert parent.pending_writes == [("task-1", "answer", 42)]


async def test_a_lost_connection_is_unavailable_not_a_driver_error(resources, tagged_db):
    db, name = tagged_db
    principal = Principal("org-outage", "alice")
    async with db.tenant(principal) as conn:
        await conn.execute("SELECT 1")
    assert await _terminate(resources, name) == 1
    with pytest.raises(Unavailable):
        async with db.tenant(principal) as conn:
            await conn.execute("SELECT 1")
    # One lost connection is not an outage: the next call is served.
    async with db.tenant(principal) as conn:
        await (await conn.execute("SELECT 1")).fetchone()
    assert not db.breaker.is_open


async def test_a_server_out_of_reach_opens_the_breaker(tmp_path):
    """Nothing listens on this socket: the first call waits out the pool (here 0.5 s), the
    breaker's probe fails, and every later call fails at once, however long the pool waits."""
    down = make_conninfo(host=str(tmp_path), port=5999, dbname="x", user="x")
    db = Database(down, min_size=1, max_size=2, timeout=0.5)
    await db.pool.open(wait=False)
    try:
        with pytest.raises(Unavailable):
            async with db.tenant(Principal("org-x", "alice")):
                pass
        for _ in range(200):
            if db.breaker.is_open:
                break
            await asyncio.sleep(0.05)
        assert db.breaker.is_open
        db.pool.timeout = 3600  # a call that reached the pool now would hang
        with pytest.raises(Unavailable):
            await asyncio.wait_for(db.ping(60), 120)
        with pytest.raises(Unavailable):
            async with db.system():
                pass
    finally:
        await db.close()
