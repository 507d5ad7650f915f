"""Thread copy is one use case in one transaction: the new thread and its checkpoints."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.services.runs import RunNotFound
from tenantgraph.services.thread_state import ThreadStates
from tenantgraph.stores import checkpoints as checkpoint_store

from .runtime_fixtures import make_org, make_thread, registry
from .store_support import admin_execute


async def _threads_and_checkpoints(resources, org: str) -> tuple[int, dict[str, int]]:
    """The org's thread count and its checkpoint rows per thread, read as the superuser."""
    threads = await admin_execute(
        resources, "SELECT count(*) FROM tenantgraph.threads WHERE org_id = %s", (org,)
    )
    checkpoints = await admin_execute(
        resources,
        "SELECT thread_id::text, count(*) FROM tenantgraph.checkpoints WHERE org_id = %s"
        " GROUP BY thread_id",
        (org,),
    )
    return threads[0][0], dict(checkpoints)


async def test_a_copy_failing_half_way_leaves_no_partial_copy(resources, org_ids, monkeypatch):
    alice, _, _ = await make_org(resources.db, org_ids[0])
    states = ThreadStates(resources.db, registry())
    source = await make_thread(resources.db, alice)
    graph = (await registry().get("agent")).copy(
        update={"checkpointer": TenantCheckpointer(resources.db, alice)}
    )
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": source}})
    before = await _threads_and_checkpoints(resources, alice.org_id)
    assert before[0] == 1 and before[1][str(source)] > 0

    # The thread row is inserted and every checkpoint statement ran; then the copy fails.
    copy_checkpoints = checkpoint_store.copy_thread

    async def copy_then_fail(conn, *args):
        await copy_checkpoints(conn, *args)
        raise RuntimeError("connection lost half way")

    monkeypatch.setattr(checkpoint_store, "copy_thread", copy_then_fail)
    with pytest.raises(RuntimeError, match="half way"):
        await states.copy_thread(alice, source)
    assert await _threads_and_checkpoints(resources, alice.org_id) == before

    # The same copy without the failure: a second thread with the same checkpoints.
    monkeypatch.undo()
    copied = await states.copy_thread(alice, source)
    threads, checkpoints = await _threads_and_checkpoints(resources, alice.org_id)
    assert threads == 2
    assert checkpoints == {**before[1], str(copied["thread_id"]): before[1][str(source)]}
    state = await graph.aget_state({"configurable": {"thread_id": str(copied["thread_id"])}})
    assert [m.content for m in state.values["messages"]] == ["hi", "echo: hi"]


async def test_copying_a_thread_one_may_not_see_copies_nothing(resources, org_ids):
    alice, bob, _ = await make_org(resources.db, org_ids[0])
    states = ThreadStates(resources.db, registry())
    source = await make_thread(resources.db, alice)
    with pytest.raises(RunNotFound):
        await states.copy_thread(bob, source)  # a member, not the owner
    assert (await _threads_and_checkpoints(resources, alice.org_id))[0] == 1
