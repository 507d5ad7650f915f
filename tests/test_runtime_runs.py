"""Runs end to end: queue, worker, events in Valkey, interrupts, multitask, cancel, crash."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from langgraph.pregel import Pregel
from langgraph.store.memory import InMemoryStore

from tenantgraph.runtime import checkpointer, executor
from tenantgraph.runtime.events import RunEvent
from tenantgraph.runtime.worker import Worker, claim_runs
from tenantgraph.scope import Principal
from tenantgraph.services import thread_state as state_service
from tenantgraph.services.runs import RunConflict, RunCreate, RunNotFound, Runs
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.services.threads import Threads
from tenantgraph.stores import runs as run_store

from .runtime_fixtures import (
    GRAPHS,
    make_org,
    make_thread,
    make_worker,
    registry,
    said,
    wait_for,
)


class Stores:
    """One InMemoryStore per principal: what the tenant store's binding guarantees."""

    def __init__(self) -> None:
        self.by_principal: dict[tuple[str, str], InMemoryStore] = {}

    def __call__(self, principal: Principal) -> InMemoryStore:
        return self.by_principal.setdefault((principal.org_id, principal.user_id), InMemoryStore())


@pytest.fixture
async def orgs(resources, org_ids):
    return [await make_org(resources.db, org) for org in org_ids]


@pytest.fixture
def runs(resources) -> Runs:
    return Runs(resources.db, resources.redis, resources.streams)


@pytest.fixture
def states(resources) -> ThreadStates:
    return ThreadStates(resources.db, registry())


@pytest.fixture
def stores() -> Stores:
    return Stores()


@pytest.fixture
async def worker(resources, stores) -> AsyncIterator[Worker]:
    started = make_worker(resources, stores)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def holding_worker(resources, monkeypatch) -> AsyncIterator[Worker]:
    """A worker whose runs hold their checkpoint writes for 30 s, longer than any run
    here: what is committed before then was committed by something else than the timer."""
    monkeypatch.setattr(executor, "CHECKPOINT_HOLD_SECONDS", 30.0)
    started = make_worker(resources)
    await started.start()
    yield started
    await started.stop()


async def all_events(resources, principal, run_id, last=None) -> list[RunEvent]:
    return [e async for e in resources.streams.read(principal, run_id, last)]


def body(**fields) -> RunCreate:
    return RunCreate.model_validate(fields)


async def test_run_streams_events_in_the_wire_format(resources, orgs, runs, states, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["agent"],
        body(
            input={"messages": [{"role": "user", "content": "hi"}]},
            stream_mode=["values", "updates", "messages-tuple"],
        ),
    )
    assert run["status"] == "pending"
    result = await runs.join(alice, run["run_id"])
    assert [m["content"] for m in result["messages"]] == ["hi", "echo: hi"]
    assert (await runs.get(alice, run["run_id"]))["status"] == "success"

    received = await all_events(resources, alice, run["run_id"])
    assert received[0].event == "metadata"
    assert received[0].json() == {"run_id": str(run["run_id"]), "attempt": 1}
    names = [e.event for e in received]
    assert {"values", "updates", "messages"} <= set(names)
    message, meta = next(e.json() for e in received if e.event == "messages")
    assert message["type"] in ("ai", "AIMessageChunk") and message["content"] == "echo: hi"
    assert meta["langgraph_node"] == "echo"
    assert received[-1].event == "values"
    assert received[-1].json()["messages"][-1]["content"] == "echo: hi"

    # After the fact, from a last id: exactly the events after it.
    rest = await all_events(resources, alice, run["run_id"], received[1].id)
    assert rest == received[2:]

    state = await states.get(alice, thread_id)
    assert state["values"]["messages"][-1]["content"] == "echo: hi"
    assert state["next"] == []
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT status, values FROM threads WHERE thread_id = %s", (thread_id,)
        )
        thread = await cur.fetchone()
    assert thread["status"] == "idle"
    assert thread["values"]["messages"][-1]["content"] == "echo: hi"


async def test_custom_and_subgraph_free_modes(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    run = await runs.create(
        alice,
        None,
        assistants["custom"],
        body(input={}, stream_mode=["custom"], config={"configurable": {"steps": 2}}),
    )
    await runs.join(alice, run["run_id"])
    received = await all_events(resources, alice, run["run_id"])
    assert [(e.event, e.json()) for e in received[1:]] == [
        ("custom", {"step": 1, "of": 2}),
        ("custom", {"step": 2, "of": 2}),
    ]
    # A stateless run's temporary thread (and with it the run) is gone afterwards.
    with pytest.raises(RunNotFound):
        await runs.get(alice, run["run_id"])


async def test_graph_error_becomes_an_error_event(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["custom"],
        body(input={}, config={"configurable": {"steps": "x"}}),
    )
    result = await runs.join(alice, run["run_id"])
    assert result["__error__"]["error"] == "ValueError"
    assert "invalid literal" in result["__error__"]["message"]
    assert (await runs.get(alice, run["run_id"]))["status"] == "error"
    events = await all_events(resources, alice, run["run_id"])
    assert events[-1].event == "error"


async def test_config_injection_overrides_the_client(resources, orgs, runs, stores, worker):
    (alice, _, assistants), (alice_b, _, _) = orgs
    thread_id = await make_thread(resources.db, alice)
    forged = {
        "org_id": alice_b.org_id,
        "user_id": "mallory",
        "assistant_id": str(uuid.uuid4()),
        "thread_id": str(uuid.uuid4()),
        "run_id": "forged",
    }
    run = await runs.create(
        alice,
        thread_id,
        assistants["memory"],
        body(
            input={"messages": [{"role": "user", "content": "I like tea"}]},
            config={"configurable": {**forged, "langgraph_auth_user_id": "mallory", "keep": "me"}},
        ),
    )
    configurable = run["kwargs"]["config"]["configurable"]
    assert configurable["keep"] == "me"
    assert {k: configurable[k] for k in forged} == {
        "org_id": alice.org_id,
        "user_id": "alice",
        "assistant_id": str(assistants["memory"]),
        "thread_id": str(thread_id),
        "run_id": str(run["run_id"]),
    }
    assert configurable["langgraph_auth_user_id"] == "alice"
    result = await runs.join(alice, run["run_id"])
    assert result["messages"][-1]["content"] == "alice told me 1: ['I like tea']"
    # The store the graph got is alice's in org A, under this assistant's namespace.
    assert set(stores.by_principal) == {(alice.org_id, "alice")}
    items = await stores.by_principal[(alice.org_id, "alice")].asearch(
        (str(assistants["memory"]), "memories")
    )
    assert [i.value for i in items] == [{"text": "I like tea", "user_id": "alice"}]
    # The checkpoint carries the real scope.
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT metadata FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id DESC",
            (thread_id,),
        )
        meta = (await cur.fetchone())["metadata"]
    assert meta["org_id"] == alice.org_id and meta["user_id"] == "alice"
    assert meta["run_id"] == str(run["run_id"]) and meta["assistant_id"] == str(
        assistants["memory"]
    )


async def test_interrupt_then_resume(resources, orgs, runs, states, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await runs.create(
        alice,
        thread_id,
        assistants["hitl"],
        body(input={"messages": [{"role": "user", "content": "go"}]}),
    )
    result = await runs.join(alice, first["run_id"])
    assert result["__interrupt__"][0]["value"] == {"question": "send the draft?"}
    assert (await runs.get(alice, first["run_id"]))["status"] == "success"
    state = await states.get(alice, thread_id)
    assert state["next"] == ["review"]
    assert state["interrupts"][0]["value"] == {"question": "send the draft?"}
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT status, interrupts FROM threads WHERE thread_id = %s", (thread_id,)
        )
        thread = await cur.fetchone()
    assert thread["status"] == "interrupted"
    assert next(iter(thread["interrupts"].values()))[0]["value"] == {"question": "send the draft?"}

    second = await runs.create(
        alice, thread_id, assistants["hitl"], body(command={"resume": "yes"})
    )
    result = await runs.join(alice, second["run_id"])
    assert result["approved"] is True
    assert result["messages"][-1]["content"] == "sent"
    history = await states.history(alice, thread_id, limit=100)
    assert history[0]["values"]["approved"] is True and history[0]["next"] == []
    assert any(h["next"] == ["review"] for h in history)
    # Time travel: the state at the interrupted checkpoint, then update_state from it.
    waiting = next(h for h in history if h["next"] == ["review"])
    past = await states.get(alice, thread_id, waiting["checkpoint"])
    assert past["next"] == ["review"] and "approved" not in past["values"]
    updated = await states.update(alice, thread_id, {"approved": False}, as_node="review")
    assert updated["checkpoint"]["thread_id"] == str(thread_id)
    assert (await states.get(alice, thread_id))["values"]["approved"] is False


async def _slow(runs, principal, thread_id, assistants, **fields):
    return await runs.create(
        principal,
        thread_id,
        assistants["custom"],
        body(input={}, config={"configurable": {"steps": 40, "delay": 0.05}}, **fields),
    )


async def test_multitask_reject_and_enqueue(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await _slow(runs, alice, thread_id, assistants)
    await wait_for(runs, alice, first["run_id"], {"running"})
    with pytest.raises(RunConflict):
        await _slow(runs, alice, thread_id, assistants, multitask_strategy="reject")
    second = await runs.create(
        alice,
        thread_id,
        assistants["custom"],
        body(input={}, multitask_strategy="enqueue", config={"configurable": {"steps": 1}}),
    )
    assert (await runs.get(alice, second["run_id"]))["status"] == "pending"
    assert (await wait_for(runs, alice, first["run_id"]))["status"] == "success"
    assert (await wait_for(runs, alice, second["run_id"]))["status"] == "success"
    first_run = await runs.get(alice, first["run_id"])
    second_run = await runs.get(alice, second["run_id"])
    assert second_run["updated_at"] >= first_run["updated_at"]
    listed = await runs.list(alice, thread_id)
    assert {r["run_id"] for r in listed} == {first["run_id"], second["run_id"]}


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_multitask_interrupt_and_rollback(resources, orgs, runs, states, worker, strategy):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await _slow(runs, alice, thread_id, assistants)
    await wait_for(runs, alice, first["run_id"], {"running"})
    second = await runs.create(
        alice,
        thread_id,
        assistants["agent"],
        body(input={"messages": [{"role": "user", "content": "x"}]}, multitask_strategy=strategy),
    )
    result = await runs.join(alice, second["run_id"])
    assert result["messages"][-1]["content"] == "echo: x"
    if strategy == "interrupt":
        assert (await runs.get(alice, first["run_id"]))["status"] == "interrupted"
    else:
        with pytest.raises(RunNotFound):
            await runs.get(alice, first["run_id"])
        async with resources.db.tenant(alice) as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM checkpoints WHERE run_id = %s", (str(first["run_id"]),)
            )
            assert (await cur.fetchone())["n"] == 0
    assert (await runs.get(alice, second["run_id"]))["status"] == "success"


async def test_cancel_a_running_run(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await _slow(runs, alice, thread_id, assistants, stream_mode=["custom"])
    await wait_for(runs, alice, run["run_id"], {"running"})
    assert await runs.cancel(alice, [run["run_id"]], thread_id=thread_id) == [run["run_id"]]
    assert (await wait_for(runs, alice, run["run_id"]))["status"] == "interrupted"
    received = await all_events(resources, alice, run["run_id"])  # ends: the stream is closed
    assert len([e for e in received if e.event == "custom"]) < 40
    with pytest.raises(RunNotFound):
        await runs.cancel(alice, [run["run_id"]])
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute("SELECT status FROM threads WHERE thread_id = %s", (thread_id,))
        # As in the LangGraph API: the cancelled node is still to run, so the thread waits.
        assert (await cur.fetchone())["status"] == "interrupted"


async def test_cancel_a_pending_run(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants["agent"], body(input={}, after_seconds=60))
    # after_seconds: the worker leaves it alone however often it polls meanwhile.
    for _ in range(5):
        worker.wake()
        await asyncio.sleep(0.05)
    assert (await runs.get(alice, run["run_id"]))["status"] == "pending"
    await runs.cancel(alice, thread_id=thread_id)
    assert (await runs.get(alice, run["run_id"]))["status"] == "interrupted"
    assert await all_events(resources, alice, run["run_id"]) == []


async def _ended_by_a_new_worker(resources, runs, principal, run_id) -> dict:
    """Start a worker, wait for the run to end, stop the worker: the run as it ended."""
    worker = make_worker(resources)
    await worker.start()
    try:
        return await wait_for(runs, principal, run_id)
    finally:
        await worker.stop()


async def test_a_run_whose_worker_died_is_retried_once(resources, orgs, runs):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["agent"],
        body(input={"messages": [{"role": "user", "content": "x"}]}),
    )
    # A worker claims it and dies: nothing renews its lease.
    claimed = await claim_runs(resources.db, "dead-1", 100, 0.2, list(GRAPHS))
    assert run["run_id"] in {c.run_id for c in claimed}
    assert (await runs.get(alice, run["run_id"]))["status"] == "running"
    await asyncio.sleep(0.3)
    # Two live workers race for it after the lease expired: it runs once, as attempt 2.
    workers = [make_worker(resources), make_worker(resources)]
    for w in workers:
        await w.start()
    try:
        assert (await wait_for(runs, alice, run["run_id"]))["status"] == "success"
    finally:
        for w in workers:
            await w.stop()
    metadata = [
        e.json() for e in await all_events(resources, alice, run["run_id"]) if e.event == "metadata"
    ]
    assert metadata == [{"run_id": str(run["run_id"]), "attempt": 2}]


async def test_a_run_lost_twice_is_marked_error(resources, orgs, runs):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants["agent"], body(input={}))
    for dead in ("dead-1", "dead-2"):
        claimed = await claim_runs(resources.db, dead, 100, 0.2, list(GRAPHS))
        assert run["run_id"] in {c.run_id for c in claimed}
        await asyncio.sleep(0.3)
    ended = await _ended_by_a_new_worker(resources, runs, alice, run["run_id"])
    assert ended["status"] == "error"
    received = await all_events(resources, alice, run["run_id"])
    assert [e.event for e in received] == ["error"]
    assert "abandoned" in received[0].json()["message"]
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute("SELECT status FROM threads WHERE thread_id = %s", (thread_id,))
        assert (await cur.fetchone())["status"] == "error"


async def test_stopping_a_worker_hands_its_runs_back(resources, orgs, runs):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = make_worker(resources)
    await first.start()
    run = await _slow(runs, alice, thread_id, assistants, stream_mode=["custom"])
    async for event in resources.streams.read(alice, run["run_id"]):
        if event.event == "custom":  # the graph is under way
            break
    await first.stop()
    assert (await runs.get(alice, run["run_id"]))["status"] == "pending"
    ended = await _ended_by_a_new_worker(resources, runs, alice, run["run_id"])
    assert ended["status"] == "success"
    attempts = [
        e.json()["attempt"]
        for e in await all_events(resources, alice, run["run_id"])
        if e.event == "metadata"
    ]
    assert attempts == [1, 1]


async def _after_update(resources, principal, run_id, node: str) -> None:
    """Wait for the run's `updates` event of `node`: that step has run."""
    async for event in resources.streams.read(principal, run_id):
        if event.event == "updates" and node in event.json():
            return


def _slow_body(**fields) -> RunCreate:
    config = {"configurable": {"steps": 2, "delay": 0.5}}
    return body(input={}, stream_mode=["updates"], config=config, **fields)


async def test_a_runs_checkpoints_commit_while_it_runs(resources, orgs, runs, states, worker):
    """A run's checkpoint writes are held for a moment (durability "async"), not until
    its end: the state after its first step is committed while the next step runs."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants["slow"], _slow_body())
    await _after_update(resources, alice, run["run_id"], "start")
    for _ in range(50):
        if (await states.get(alice, thread_id))["values"].get("started"):
            break
        await asyncio.sleep(0.01)
    assert (await states.get(alice, thread_id))["values"]["started"] == [f"{run['run_id']}:1"]
    assert (await runs.get(alice, run["run_id"]))["status"] == "running"
    assert (await wait_for(runs, alice, run["run_id"]))["status"] == "success"


@pytest.mark.parametrize("graph", ["agent", "hitl"])
async def test_a_run_ends_with_every_checkpoint_committed(
    resources, orgs, runs, states, holding_worker, graph
):
    """Held longer than the run takes, its checkpoint writes are all committed by the time
    its end is recorded: those of a graph that ran to its end in the same transaction, and
    before the state is read back for one that stopped at an interrupt."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants[graph], body(input=said("go")))
    assert (await wait_for(runs, alice, run["run_id"]))["status"] == "success"
    state = await states.get(alice, thread_id)
    thread = await Threads(resources.db).get(alice, thread_id)
    assert thread["values"] == state["values"]
    if graph == "hitl":
        assert state["next"] == ["review"] and thread["status"] == "interrupted"
        return
    assert state["next"] == [] and thread["status"] == "idle"
    assert [m["content"] for m in state["values"]["messages"]] == ["go", "echo: go"]
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT (SELECT xmin::text FROM runs WHERE run_id = %s)"
            " = (SELECT xmin::text FROM checkpoints WHERE thread_id = %s AND checkpoint_id = %s)"
            " AS together",
            (run["run_id"], thread_id, state["checkpoint"]["checkpoint_id"]),
        )
        assert (await cur.fetchone())["together"]


async def test_stopping_a_worker_commits_what_its_run_held(
    resources, orgs, runs, states, monkeypatch
):
    """A run stopped mid-way commits its held writes before it is handed back, so the
    next execution continues after the steps that ran (as LangGraph's own exit waits for
    the writes it has in flight)."""
    monkeypatch.setattr(executor, "CHECKPOINT_HOLD_SECONDS", 30.0)
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = make_worker(resources)
    await first.start()
    run = await runs.create(alice, thread_id, assistants["slow"], _slow_body())
    started = [f"{run['run_id']}:1"]
    await _after_update(resources, alice, run["run_id"], "start")
    await first.stop()
    assert (await states.get(alice, thread_id))["values"]["started"] == started
    ended = await _ended_by_a_new_worker(resources, runs, alice, run["run_id"])
    assert ended["status"] == "success"
    values = (await states.get(alice, thread_id))["values"]
    assert values["started"] == started  # its first step did not run again
    assert values["finished"] == [str(run["run_id"])]


async def test_a_sync_run_commits_each_checkpoint_before_its_next_step(
    resources, orgs, runs, states, holding_worker
):
    """Durability "sync" holds nothing: LangGraph waits for each checkpoint's commit."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants["slow"], _slow_body(durability="sync"))
    await _after_update(resources, alice, run["run_id"], "tick")
    state = await states.get(alice, thread_id)
    assert state["values"]["started"] == [f"{run['run_id']}:1"]
    assert (await wait_for(runs, alice, run["run_id"]))["status"] == "success"


async def test_events_mode_and_subgraphs_through_the_worker(resources, orgs, runs, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["agent"],
        body(
            input={"messages": [{"role": "user", "content": "e"}]},
            stream_mode=["events", "values"],
            stream_subgraphs=True,
        ),
    )
    await runs.join(alice, run["run_id"])
    received = await all_events(resources, alice, run["run_id"])
    kinds = {e.json()["event"] for e in received if e.event == "events"}
    assert {"on_chain_start", "on_chain_end"} <= kinds
    values = [e.json() for e in received if e.event == "values"]
    assert values[-1]["messages"][-1]["content"] == "echo: e"


async def test_join_a_stateless_run_after_it_deleted_itself(resources, orgs, runs, worker):
    (alice, bob, assistants), _ = orgs
    run = await runs.create(
        alice,
        None,
        assistants["agent"],
        body(input={"messages": [{"role": "user", "content": "s"}]}),
    )
    for _ in range(400):  # until the run finished and its temporary thread took it along
        try:
            await runs.get(alice, run["run_id"])
        except RunNotFound:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the stateless run was not deleted")
    result = await runs.join(alice, run["run_id"])
    assert result["messages"][-1]["content"] == "echo: s"
    with pytest.raises(RunNotFound):
        await runs.join(bob, run["run_id"])


async def test_interrupt_before_a_node_then_continue(resources, orgs, runs, states, worker):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await runs.create(
        alice,
        thread_id,
        assistants["agent"],
        body(input={"messages": [{"role": "user", "content": "wait"}]}, interrupt_before=["echo"]),
    )
    await runs.join(alice, first["run_id"])
    assert (await states.get(alice, thread_id))["next"] == ["echo"]
    second = await runs.create(alice, thread_id, assistants["agent"], body(input=None))
    result = await runs.join(alice, second["run_id"])
    assert [m["content"] for m in result["messages"]] == ["wait", "echo: wait"]


async def _claimed(runs, principal, thread_id, assistant_id, worker, **fields) -> dict:
    """A run the local `worker` took at its creation. The database is shared with the rest
    of the suite: the worker may be busy with a run another test left queued, so runs it
    did not take are waited out and asked again."""
    for _ in range(20):
        run = await runs.create(principal, thread_id, assistant_id, body(**fields), worker=worker)
        if run["status"] == "running":
            return run
        await wait_for(runs, principal, run["run_id"])
    raise AssertionError("the worker never took a run at its creation")


async def test_a_run_created_beside_a_free_worker_starts_claimed(resources, orgs, runs):
    """Runs.create with the process's worker: inserted running (attempt 1) and handed over;
    a full worker or a busy thread queues it instead; stop() hands it back like any run."""
    (alice, _, assistants), _ = orgs
    local = make_worker(resources, concurrency=1)
    await local.start()
    try:
        busy = await make_thread(resources.db, alice)
        slow = body(input={}, config={"configurable": {"steps": 40, "delay": 0.05}})
        first = await runs.create(alice, busy, assistants["custom"], slow, worker=local)
        assert first["status"] == "running" and first["assistant"]["graph_id"] == "custom"
        # The only slot is taken: the next run is queued, even on another thread.
        other = await make_thread(resources.db, alice)
        queued = await runs.create(
            alice, other, assistants["agent"], body(input={"messages": []}), worker=local
        )
        assert queued["status"] == "pending" and "assistant" not in queued
        # A busy thread queues too, whatever the worker's slots.
        await local.stop()
        await local.start()
        behind = await runs.create(
            alice, busy, assistants["agent"], body(input={"messages": []}), worker=local
        )
        assert behind["status"] == "pending"
        for run in (first, queued, behind):
            await wait_for(runs, alice, run["run_id"])
        # A free worker must take the run at creation.
        again = await _claimed(
            runs, alice, other, assistants["agent"], local, input={"messages": []}
        )
        assert again["status"] == "running" and again["assistant"]["graph_id"] == "agent"
        assert (await wait_for(runs, alice, again["run_id"]))["status"] == "success"
    finally:
        await local.stop()
    attempts = [
        e.json()["attempt"]
        for e in await all_events(resources, alice, again["run_id"])
        if e.event == "metadata"
    ]
    assert attempts == [1]


async def test_a_run_reads_its_thread_in_the_transaction_that_claims_it(
    resources, orgs, runs, states, monkeypatch
):
    """A run taken at its creation starts from the thread's latest checkpoint as read in
    that transaction (a queued run: in the one that loads it): its graph makes no read of
    its own for it, and still continues the conversation. A run asked for an earlier
    checkpoint (time travel) reads that one."""
    (alice, _, assistants), _ = orgs
    reads: list[tuple[str, str | None]] = []
    select = checkpointer.store.select_checkpoint

    async def counted(conn, org_id, thread_id, checkpoint_ns, checkpoint_id=None):
        # Only the graph's reads, through its checkpointer (not the claiming transaction's).
        if sys._getframe(1).f_code.co_qualname.startswith("TenantCheckpointer."):
            reads.append((thread_id, checkpoint_id))
        return await select(conn, org_id, thread_id, checkpoint_ns, checkpoint_id)

    monkeypatch.setattr(checkpointer.store, "select_checkpoint", counted)
    local = make_worker(resources, concurrency=1)
    await local.start()
    try:
        thread_id = await make_thread(resources.db, alice)
        agent = assistants["agent"]

        first = await _claimed(runs, alice, thread_id, agent, local, input=said("one"))
        assert (await wait_for(runs, alice, first["run_id"]))["status"] == "success"
        after_first = (await states.get(alice, thread_id))["checkpoint"]["checkpoint_id"]
        reads.clear()
        second = await _claimed(runs, alice, thread_id, agent, local, input=said("two"))
        assert (await wait_for(runs, alice, second["run_id"]))["status"] == "success"
        assert (str(thread_id), None) not in reads
        texts = [m["content"] for m in (await states.get(alice, thread_id))["values"]["messages"]]
        assert texts == ["one", "echo: one", "two", "echo: two"]

        reads.clear()
        again = await _claimed(
            runs, alice, thread_id, agent, local, input=said("three"), checkpoint_id=after_first
        )
        assert (await wait_for(runs, alice, again["run_id"]))["status"] == "success"
        assert (str(thread_id), after_first) in reads
        texts = [m["content"] for m in (await states.get(alice, thread_id))["values"]["messages"]]
        assert texts == ["one", "echo: one", "three", "echo: three"]

        # A run queued for a worker: the transaction that loads it reads the thread too.
        reads.clear()
        queued = await runs.create(alice, thread_id, agent, body(input=said("four")))
        assert queued["status"] == "pending"
        assert (await wait_for(runs, alice, queued["run_id"]))["status"] == "success"
        assert (str(thread_id), None) not in reads
        texts = [m["content"] for m in (await states.get(alice, thread_id))["values"]["messages"]]
        assert texts[-4:] == ["three", "echo: three", "four", "echo: four"]
    finally:
        await local.stop()


async def test_ending_a_run_writes_nothing_unless_this_worker_holds_it(resources, orgs, runs):
    """The end of a run (status, queue row, thread status and values) is one statement
    that applies only while the finishing worker holds the run's lease."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(alice, thread_id, assistants["agent"], body(input={}))
    claimed: set = set()
    while run["run_id"] not in claimed:  # runs other tests left queued are claimed first
        batch = await claim_runs(resources.db, "w-1", 10, 30.0, list(GRAPHS))
        assert batch, "the run was never claimed"
        claimed |= {c.run_id for c in batch}
    ending = {"thread_id": thread_id, "thread_status": "idle", "values": {"done": True}}

    async def end(worker_id: str) -> bool:
        async with resources.db.tenant(alice) as conn:
            cur = await run_store.finish_and_settle(
                conn, alice.org_id, run["run_id"], "success", worker_id=worker_id, **ending
            )
        return await cur.fetchone() is not None

    assert not await end("w-2")  # the lease is w-1's: nothing changes
    assert (await runs.get(alice, run["run_id"]))["status"] == "running"
    assert (await Threads(resources.db).get(alice, thread_id))["status"] == "busy"
    assert await end("w-1")
    assert (await runs.get(alice, run["run_id"]))["status"] == "success"
    thread = await Threads(resources.db).get(alice, thread_id)
    assert thread["status"] == "idle" and thread["values"] == {"done": True}


async def test_a_run_created_during_a_state_update_starts_from_the_update(
    resources, orgs, runs, states, worker, monkeypatch
):
    """A state update checks that its thread is free and writes its checkpoint in one
    transaction holding the thread's lock: a run created meanwhile waits for the update's
    commit and continues from it (never from the state before it, with the update landing
    under the running graph). A reader (its state, its runs) meanwhile waits for neither: it
    sees the thread as it was before the update."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    agent = assistants["agent"]

    first = await runs.create(alice, thread_id, agent, body(input=said("one")))
    assert (await wait_for(runs, alice, first["run_id"]))["status"] == "success"

    checked, release = asyncio.Event(), asyncio.Event()
    update_state = Pregel.aupdate_state

    async def held(self, *args, **kwargs):
        checked.set()  # past the busy check
        await release.wait()
        return await update_state(self, *args, **kwargs)

    monkeypatch.setattr(Pregel, "aupdate_state", held)
    update = asyncio.create_task(
        states.update(alice, thread_id, {"messages": [{"role": "ai", "content": "edited"}]})
    )
    try:
        await asyncio.wait_for(checked.wait(), 10)
        create = asyncio.create_task(runs.create(alice, thread_id, agent, body(input=said("two"))))
        await asyncio.sleep(0.3)
        assert not create.done()  # waiting for the thread's lock
        read = await asyncio.wait_for(states.get(alice, thread_id), 5)
        assert [m["content"] for m in read["values"]["messages"]] == ["one", "echo: one"]
        listed = await asyncio.wait_for(runs.list(alice, thread_id), 5)
        assert [r["run_id"] for r in listed] == [first["run_id"]]
    finally:
        release.set()
    await update
    second = await create
    assert (await wait_for(runs, alice, second["run_id"]))["status"] == "success"
    texts = [m["content"] for m in (await states.get(alice, thread_id))["values"]["messages"]]
    assert texts == ["one", "echo: one", "edited", "two", "echo: two"]


async def test_a_state_update_failing_half_way_leaves_the_thread_as_it_was(
    resources, orgs, runs, states, worker, monkeypatch
):
    """The update's checkpoint and the thread's values commit together or not at all."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await runs.create(
        alice, thread_id, assistants["agent"], body(input={"messages": [("user", "one")]})
    )
    assert (await wait_for(runs, alice, first["run_id"]))["status"] == "success"
    before = await states.get(alice, thread_id)
    history = await states.history(alice, thread_id, limit=100)

    async def lost(*args, **kwargs):
        raise RuntimeError("connection lost half way")

    monkeypatch.setattr(state_service.store, "settle_thread", lost)
    with pytest.raises(RuntimeError, match="half way"):
        await states.update(alice, thread_id, {"messages": [("ai", "edited")]})
    assert await states.get(alice, thread_id) == before
    assert await states.history(alice, thread_id, limit=100) == history


async def test_concurrent_state_updates_all_land_one_on_top_of_another(
    resources, orgs, runs, states, worker
):
    """Updates of one thread wait for each other (the thread's lock): each starts from the
    one before, so none is lost to another that read the same parent checkpoint."""
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    first = await runs.create(
        alice, thread_id, assistants["agent"], body(input={"messages": [("user", "one")]})
    )
    assert (await wait_for(runs, alice, first["run_id"]))["status"] == "success"
    edits = [f"edit {i}" for i in range(6)]
    await asyncio.gather(
        *(states.update(alice, thread_id, {"messages": [("ai", edit)]}) for edit in edits)
    )
    texts = [m["content"] for m in (await states.get(alice, thread_id))["values"]["messages"]]
    assert texts[:2] == ["one", "echo: one"] and sorted(texts[2:]) == edits
    history = await states.history(alice, thread_id, limit=100)
    parents = [h["parent_checkpoint"]["checkpoint_id"] for h in history if h["parent_checkpoint"]]
    assert len(parents) == len(set(parents))  # a chain, no fork
