"""Adversarial: another org, and a member who is not the owner, try every runtime path on
alice's thread and run. Every path answers as for an unknown id, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.services.runs import InvalidRun, RunCreate, RunNotFound, Runs
from tenantgraph.services.thread_state import EMPTY_STATE, ThreadStates

from .runtime_fixtures import make_org, make_thread, make_worker, registry, said, wait_for


@pytest.fixture
async def world(resources, org_ids) -> dict[str, Any]:
    """Org A: alice (admin) ran the echo graph on her thread. Org B: a thread with the
    same id and its own assistant. bob is a member of org A."""
    alice, bob, assistants = await make_org(resources.db, org_ids[0])
    alice_b, _, assistants_b = await make_org(resources.db, org_ids[1])
    runs = Runs(resources.db, resources.redis, resources.streams)
    thread_id = await make_thread(resources.db, alice)
    async with resources.db.tenant(alice_b) as conn:
        await conn.execute(
            "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, 'alice')",
            (alice_b.org_id, thread_id),
        )
    worker = make_worker(resources)
    await worker.start()
    try:
        run = await runs.create(
            alice,
            thread_id,
            assistants["agent"],
            RunCreate(input=said("secret")),
        )
        await wait_for(runs, alice, run["run_id"])
    finally:
        await worker.stop()
    return {
        "alice": alice,
        "bob": bob,
        "foreign": alice_b,
        "assistants": assistants,
        "assistants_b": assistants_b,
        "thread_id": thread_id,
        "run_id": run["run_id"],
        "runs": runs,
        "states": ThreadStates(resources.db, registry()),
    }


Attack = Callable[[dict[str, Any], Any], Awaitable[Any]]

ATTACKS: dict[str, Attack] = {
    "get run": lambda w, p: w["runs"].get(p, w["run_id"]),
    "get run on thread": lambda w, p: w["runs"].get(p, w["run_id"], w["thread_id"]),
    "list runs": lambda w, p: w["runs"].list(p, w["thread_id"]),
    "delete run": lambda w, p: w["runs"].delete(p, w["run_id"]),
    "cancel run": lambda w, p: w["runs"].cancel(p, [w["run_id"]]),
    "cancel thread": lambda w, p: w["runs"].cancel(p, thread_id=w["thread_id"]),
    "join run": lambda w, p: w["runs"].join(p, w["run_id"]),
    "run on thread with own assistant": lambda w, p: w["runs"].create(
        p,
        w["thread_id"],
        w["assistants_b" if p.org_id != w["alice"].org_id else "assistants"]["agent"],
        RunCreate(input={}, multitask_strategy="enqueue"),
    ),
    "get state": lambda w, p: w["states"].get(p, w["thread_id"]),
    "history": lambda w, p: w["states"].history(p, w["thread_id"]),
    "update state": lambda w, p: w["states"].update(p, w["thread_id"], {"messages": []}),
    "copy state": lambda w, p: _copy_into_own_thread(w, p),
}


async def _copy_into_own_thread(w: dict[str, Any], principal: Any) -> None:
    copied = await w["states"].copy_thread(principal, w["thread_id"])
    state = await w["states"].get(principal, copied["thread_id"])
    assert "secret" not in str(state)


# Org B owns a thread with alice's thread id: on it these paths work on B's own (empty)
# thread, which is no leak; what they must never show or touch is org A's data.
FOREIGN_SAME_ID: dict[str, Any] = {
    "list runs": [],
    "get state": EMPTY_STATE,
    "history": [],
    "update state": InvalidRun,
    "run on thread with own assistant": None,
    "copy state": None,
}


@pytest.mark.parametrize("attacker", ["foreign", "bob"])
@pytest.mark.parametrize("path", sorted(ATTACKS))
async def test_foreign_caller_gets_not_found(resources, world, attacker, path):
    principal = world[attacker]
    expected = FOREIGN_SAME_ID.get(path, RunNotFound) if attacker == "foreign" else RunNotFound
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected):
            await ATTACKS[path](world, principal)
    else:
        result = await ATTACKS[path](world, principal)
        if expected is not None:
            assert result == expected
    # Nothing of alice's changed.
    run = await world["runs"].get(world["alice"], world["run_id"])
    assert run["status"] == "success"
    state = await world["states"].get(world["alice"], world["thread_id"])
    assert [m["content"] for m in state["values"]["messages"]] == ["secret", "echo: secret"]
    assert [r["run_id"] for r in await world["runs"].list(world["alice"], world["thread_id"])] == [
        world["run_id"]
    ]


async def test_another_orgs_assistant_is_missing_for_a_run_and_shared_within_the_org(world):
    """Org B naming org A's assistant UUID gets the missing assistant's error and no run;
    bob, a member of org A, runs the same assistant: the refusal is the org, not the id."""
    runs, foreign = world["runs"], world["foreign"]
    own_thread = await make_thread(runs.db, foreign)
    for thread_id in (None, own_thread):
        with pytest.raises(RunNotFound) as refused:
            await runs.create(foreign, thread_id, world["assistants"]["agent"], RunCreate(input={}))
        with pytest.raises(RunNotFound) as missing:
            await runs.create(foreign, thread_id, uuid.uuid4(), RunCreate(input={}))
        assert str(refused.value) == str(missing.value)
    assert await runs.list(foreign, own_thread) == []
    shared = await runs.create(
        world["bob"], None, world["assistants"]["agent"], RunCreate(input={})
    )
    assert shared["assistant_id"] == world["assistants"]["agent"]
    assert (await runs.get(world["bob"], shared["run_id"]))["status"] == "pending"


async def test_events_and_checkpoints_are_per_org(resources, world):
    foreign = world["foreign"]
    for other in (foreign, world["bob"]):
        assert [e async for e in resources.streams.read(other, world["run_id"])] == []
    mine = [e async for e in resources.streams.read(world["alice"], world["run_id"])]
    assert mine[0].event == "metadata"
    saver = TenantCheckpointer(resources.db, foreign)
    config = {"configurable": {"thread_id": str(world["thread_id"])}}
    assert await saver.aget_tuple(config) is None
    assert [t async for t in saver.alist(None)] == []


async def test_a_run_on_the_same_thread_id_in_another_org_starts_from_its_own_state(
    resources, world
):
    """The thread state a run starts from is read in the transaction that claims it (at its
    creation) or loads it (queued): org B's runs on org A's thread id see only org B's
    thread, by either path, and org A's thread is left as it was."""
    foreign, thread_id = world["foreign"], world["thread_id"]
    runs, states = world["runs"], world["states"]
    agent_b = world["assistants_b"]["agent"]
    before = await states.get(world["alice"], thread_id)
    worker = make_worker(resources)
    await worker.start()
    try:
        claimed = await runs.create(
            foreign,
            thread_id,
            agent_b,
            RunCreate(input=said("mine")),
            worker=worker,
        )
        await wait_for(runs, foreign, claimed["run_id"])
        queued = await runs.create(
            foreign,
            thread_id,
            agent_b,
            RunCreate(input=said("again")),
        )
        assert queued["status"] == "pending"
        await wait_for(runs, foreign, queued["run_id"])
    finally:
        await worker.stop()
    texts = [m["content"] for m in (await states.get(foreign, thread_id))["values"]["messages"]]
    assert texts == ["mine", "echo: mine", "again", "echo: again"]
    assert await states.get(world["alice"], thread_id) == before


async def test_admin_sees_members_runs_and_state(resources, world):
    bob, alice = world["bob"], world["alice"]
    runs = world["runs"]
    thread_id = await make_thread(resources.db, bob)
    worker = make_worker(resources)
    await worker.start()
    try:
        run = await runs.create(
            bob, thread_id, world["assistants"]["agent"], RunCreate(input=said("bob's"))
        )
        await wait_for(runs, bob, run["run_id"])
    finally:
        await worker.stop()
    assert (await runs.get(alice, run["run_id"]))["status"] == "success"
    state = await world["states"].get(alice, thread_id)
    assert [m["content"] for m in state["values"]["messages"]] == ["bob's", "echo: bob's"]
    queued = await runs.create(bob, thread_id, world["assistants"]["agent"], RunCreate(input={}))
    listed = [r["run_id"] for r in await runs.list(alice, thread_id)]
    assert sorted(listed) == sorted([run["run_id"], queued["run_id"]])
    assert await runs.cancel(alice, thread_id=thread_id) == [queued["run_id"]]
    with pytest.raises(RunNotFound):
        await runs.get(bob, uuid.uuid4())
