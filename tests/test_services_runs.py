"""Run creation is one use case in one transaction, also when it creates the org's
default assistant of the graph the run names."""

from __future__ import annotations

import uuid

import pytest

from tenantgraph.services.runs import RunConflict, RunCreate, RunNotFound, Runs
from tenantgraph.stores.assistants import default_assistant_id

from .runtime_fixtures import make_org, make_thread
from .store_support import admin_execute

# Due in an hour: no worker touches the run's row, so its xmin stays its creator's.
LATER = 3600.0


async def _xmin(resources, table: str, org: str, column: str, row_id: uuid.UUID) -> list[str]:
    """The creating transaction of a row, read as the superuser ([] if there is none)."""
    rows = await admin_execute(
        resources,
        f"SELECT xmin::text FROM tenantgraph.{table} WHERE org_id = %s AND {column} = %s",
        (org, row_id),
    )
    return [r[0] for r in rows]


async def test_the_first_run_naming_a_graph_creates_its_assistant_in_its_transaction(
    resources, org_ids
):
    alice, bob, _ = await make_org(resources.db, org_ids[0])  # no default assistant yet
    runs = Runs(resources.db, resources.redis, resources.streams)
    assistant_id = default_assistant_id("agent")
    thread_id = await make_thread(resources.db, bob)
    run = await runs.create(
        bob, thread_id, None, RunCreate(input={}, after_seconds=LATER), default_graph="agent"
    )
    assert run["status"] == "pending" and run["assistant_id"] == assistant_id
    assert run["metadata"]["graph_id"] == "agent"

    org = alice.org_id
    created = await _xmin(resources, "runs", org, "run_id", run["run_id"])
    assert len(created) == 1
    assert await _xmin(resources, "assistants", org, "assistant_id", assistant_id) == created
    assert await _xmin(resources, "assistant_versions", org, "assistant_id", assistant_id) == (
        created
    )

    # Later runs find the assistant: it is not written again.
    again = await runs.create(
        alice, None, None, RunCreate(input={}, after_seconds=LATER), default_graph="agent"
    )
    assert again["assistant_id"] == assistant_id
    assert await _xmin(resources, "runs", org, "run_id", again["run_id"]) != created
    assert await _xmin(resources, "assistants", org, "assistant_id", assistant_id) == created


@pytest.mark.parametrize("failure", ["missing thread", "busy thread"])
async def test_a_failed_first_run_leaves_no_default_assistant(resources, org_ids, failure):
    alice, _, assistants = await make_org(resources.db, org_ids[0])
    runs = Runs(resources.db, resources.redis, resources.streams)
    if failure == "missing thread":
        thread_id, body = uuid.uuid4(), RunCreate(input={}, if_not_exists="reject")
        expected: type[Exception] = RunNotFound
    else:  # a pending run of another assistant keeps the thread busy
        thread_id = await make_thread(resources.db, alice)
        pending = RunCreate(input={}, after_seconds=LATER)
        await runs.create(alice, thread_id, assistants["memory"], pending)
        body, expected = RunCreate(input={}, multitask_strategy="reject"), RunConflict
    with pytest.raises(expected):
        await runs.create(alice, thread_id, None, body, default_graph="agent")
    default = default_assistant_id("agent")
    assert await _xmin(resources, "assistants", alice.org_id, "assistant_id", default) == []
    assert await _xmin(resources, "assistant_versions", alice.org_id, "assistant_id", default) == []
