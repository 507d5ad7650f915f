"""A run executed again (its worker died) resumes from the last checkpoint it saved, and its
stream says so before the replayed steps."""

from __future__ import annotations

import asyncio

from tenantgraph.runtime.executor import Executor
from tenantgraph.runtime.worker import claim_runs
from tenantgraph.services.runs import RunCreate, Runs
from tenantgraph.services.thread_state import ThreadStates

from .runtime_fixtures import GRAPHS, make_org, make_thread, make_worker, registry, wait_for


async def test_a_retried_run_resumes_from_its_last_checkpoint(resources, org_ids):
    alice, _, assistants = await make_org(resources.db, org_ids[0])
    thread_id = await make_thread(resources.db, alice)
    runs = Runs(resources.db, resources.redis, resources.streams)
    run = await runs.create(
        alice,
        thread_id,
        assistants["slow"],
        RunCreate.model_validate(
            {"input": {"finished": []}, "config": {"configurable": {"steps": 30, "delay": 0.05}}}
        ),
    )
    run_id = run["run_id"]
    # A worker claims it, executes a few steps and dies: its lease is never renewed.
    claimed = await claim_runs(resources.db, "dead-1", 100, 0.5, list(GRAPHS))
    assert run_id in {c.run_id for c in claimed}
    executor = Executor(resources.db, resources.redis, registry(), lambda principal: None)
    loaded = await executor.load(alice, run_id)
    assert loaded is not None
    claimed_run, latest = loaded
    execution = asyncio.create_task(executor.execute(alice, claimed_run, attempt=1, latest=latest))
    async for event in resources.streams.read(alice, run_id):
        if event.event == "values" and event.json().get("ticks", 0) >= 5:
            break
    execution.cancel()
    await asyncio.gather(execution, return_exceptions=True)
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT max(checkpoint_id) AS id FROM checkpoints WHERE run_id = %s AND"
            " checkpoint_ns = ''",
            (str(run_id),),
        )
        saved = (await cur.fetchone())["id"]

    worker = make_worker(resources)
    await worker.start()
    try:
        assert (await wait_for(runs, alice, run_id))["status"] == "success"
    finally:
        await worker.stop()

    state = await ThreadStates(resources.db, registry()).get(alice, thread_id)
    assert state["values"]["started"] == [f"{run_id}:1"], "the graph ran again from its input"
    assert state["values"]["ticks"] == 30
    received = [e async for e in resources.streams.read(alice, run_id)]
    metadata = [(i, e.json()) for i, e in enumerate(received) if e.event == "metadata"]
    assert [m for _, m in metadata] == [
        {"run_id": str(run_id), "attempt": 1},
        {"run_id": str(run_id), "attempt": 2, "resumed_from": saved},
    ]
    replayed = [e.json() for e in received[metadata[1][0] :] if e.event == "values"]
    assert replayed and all(v["ticks"] >= 5 for v in replayed), "the stream went back"
