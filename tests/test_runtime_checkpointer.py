"""The tenant checkpointer honours LangGraph's contract and never crosses orgs."""

from __future__ import annotations

import asyncio
import uuid
from typing import TypedDict

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.scope import Principal

from .runtime_fixtures import make_org, make_thread, registry


@pytest.fixture
async def orgs(resources, org_ids):
    return [await make_org(resources.db, org) for org in org_ids]


async def _hitl(resources, principal):
    graph = await registry().get("hitl")
    return graph.copy(update={"checkpointer": TenantCheckpointer(resources.db, principal)})


async def test_interrupt_resume_history_and_time_travel(resources, orgs):
    (alice, _, _), _ = orgs
    graph = await _hitl(resources, alice)
    thread_id = await make_thread(resources.db, alice)
    config = {"configurable": {"thread_id": str(thread_id)}}

    await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
    state = await graph.aget_state(config)
    assert state.next == ("review",)
    assert state.interrupts[0].value == {"question": "send the draft?"}

    result = await graph.ainvoke(Command(resume="yes"), config)
    assert result["approved"] is True
    assert [m.content for m in result["messages"]] == ["hi", "draft: ready to send", "sent"]

    history = [s async for s in graph.aget_state_history(config)]
    assert len(history) >= 4
    assert history[0].values["approved"] is True
    assert [s.config["configurable"]["checkpoint_id"] for s in history] == sorted(
        (s.config["configurable"]["checkpoint_id"] for s in history), reverse=True
    )
    # get_state at an older checkpoint, then fork from it with update_state.
    waiting = next(s for s in history if s.next == ("review",))
    past = await graph.aget_state(waiting.config)
    assert past.values.get("approved") is None and past.next == ("review",)
    forked = await graph.aupdate_state(waiting.config, {"approved": False}, as_node="draft")
    assert (await graph.aget_state(forked)).values["approved"] is False
    filtered = [s async for s in graph.aget_state_history(config, filter={"source": "update"})]
    assert len(filtered) == 1


async def test_copy_thread_and_delete(resources, orgs):
    (alice, _, _), _ = orgs
    graph = await _hitl(resources, alice)
    saver = graph.checkpointer
    source = await make_thread(resources.db, alice)
    target = await make_thread(resources.db, alice)
    await graph.ainvoke(
        {"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": str(source)}}
    )
    await saver.acopy_thread(str(source), str(target))
    copied = await graph.aget_state({"configurable": {"thread_id": str(target)}})
    assert copied.next == ("review",) and len(copied.values["messages"]) == 2
    await saver.adelete_thread(str(source))
    assert await saver.aget_tuple({"configurable": {"thread_id": str(source)}}) is None
    assert await saver.aget_tuple({"configurable": {"thread_id": str(target)}}) is not None


async def test_two_orgs_same_thread_id_never_see_each_other(resources, orgs):
    (alice_a, _, _), (alice_b, _, _) = orgs
    graph_a = await _hitl(resources, alice_a)
    graph_b = await _hitl(resources, alice_b)
    thread_id = await make_thread(resources.db, alice_a)
    # Org B has a thread with the very same id.
    async with resources.db.tenant(alice_b) as conn:
        await conn.execute(
            "INSERT INTO threads (org_id, thread_id, owner_id) VALUES (%s, %s, 'alice')",
            (alice_b.org_id, thread_id),
        )
    config = {"configurable": {"thread_id": str(thread_id)}}
    await graph_a.ainvoke({"messages": [HumanMessage("secret of a")]}, config)

    saver_b = graph_b.checkpointer
    assert await saver_b.aget_tuple(config) is None
    assert [t async for t in saver_b.alist(config)] == []
    assert [t async for t in saver_b.alist(None)] == []
    await graph_b.ainvoke({"messages": [HumanMessage("b")]}, config)
    state_a = await graph_a.aget_state(config)
    assert state_a.values["messages"][0].content == "secret of a"
    state_b = await graph_b.aget_state(config)
    assert state_b.values["messages"][0].content == "b"
    # B deleting or copying "its" thread touches only its own rows.
    await saver_b.adelete_thread(str(thread_id))
    assert await graph_a.checkpointer.aget_tuple(config) is not None


async def test_foreign_thread_cannot_be_written(resources, orgs):
    (alice_a, _, _), (alice_b, _, _) = orgs
    thread_a = await make_thread(resources.db, alice_a)
    graph_b = await _hitl(resources, alice_b)
    with pytest.raises(Exception, match="foreign key"):
        await graph_b.ainvoke(
            {"messages": [HumanMessage("x")]}, {"configurable": {"thread_id": str(thread_a)}}
        )
    assert (
        await (await _hitl(resources, alice_a)).checkpointer.aget_tuple(
            {"configurable": {"thread_id": str(thread_a)}}
        )
        is None
    )


async def test_subgraph_checkpoints_live_in_their_namespace(resources, orgs):
    (alice, _, _), _ = orgs

    class State(TypedDict):
        answer: str

    child = StateGraph(State)
    child.add_node("ask", lambda s: {"answer": interrupt("why?")})
    child.add_edge(START, "ask")
    parent = StateGraph(State)
    parent.add_node("child", child.compile())
    parent.add_edge(START, "child")
    graph = parent.compile(checkpointer=TenantCheckpointer(resources.db, alice))

    thread_id = await make_thread(resources.db, alice)
    config = {"configurable": {"thread_id": str(thread_id)}}
    await graph.ainvoke({"answer": ""}, config)
    state = await graph.aget_state(config, subgraphs=True)
    assert state.next == ("child",)
    sub = state.tasks[0].state
    assert sub.next == ("ask",)
    assert sub.config["configurable"]["checkpoint_ns"].startswith("child:")
    assert (await graph.ainvoke(Command(resume="because"), config)) == {"answer": "because"}


async def test_concurrent_writes_of_one_org_share_a_commit(resources, orgs):
    """A step's task writes and its checkpoint, sent together (as LangGraph sends them in
    the background), and a second user's checkpoint of the same org commit as one
    transaction; another org's write does not join it."""
    (alice, bob, _), (other, _, _) = orgs
    threads = [await make_thread(resources.db, p) for p in (alice, bob, other)]
    savers = [TenantCheckpointer(resources.db, p) for p in (alice, bob, other)]
    checkpoint = empty_checkpoint()
    configs = [
        {"configurable": {"thread_id": str(t), "checkpoint_ns": "", "checkpoint_id": None}}
        for t in threads
    ]
    after = {"configurable": {**configs[0]["configurable"], "checkpoint_id": checkpoint["id"]}}
    await asyncio.gather(
        savers[0].aput_writes(after, [("messages", "hi")], "task-1"),
        *(saver.aput(c, checkpoint, {}, {}) for saver, c in zip(savers, configs, strict=True)),
    )

    async def xmins(principal: Principal, table: str, thread_id: uuid.UUID) -> set[str]:
        async with resources.db.tenant(principal) as conn:
            cur = await conn.execute(
                f"SELECT xmin::text AS x FROM {table} WHERE thread_id = %s",
                (thread_id,),
            )
            return {row["x"] for row in await cur.fetchall()}

    shared = await xmins(alice, "checkpoint_writes", threads[0])
    assert len(shared) == 1
    assert await xmins(alice, "checkpoints", threads[0]) == shared
    assert await xmins(bob, "checkpoints", threads[1]) == shared
    assert await xmins(other, "checkpoints", threads[2]) != shared


async def test_blobs_and_writes_come_back_as_they_were_put(resources, orgs):
    """A checkpoint's blobs (a value, an emptied channel, none at all) and a task's writes
    come back as they were put; written twice (a retry), nothing doubles; of two writes with
    one idx in a call, a special-only call keeps the last, a mixed call the first."""
    (alice, _, _), _ = orgs
    saver = TenantCheckpointer(resources.db, alice)
    thread = str(await make_thread(resources.db, alice))
    root = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    first = empty_checkpoint()
    first["channel_values"] = {"a": [1, 2], "b": b"\x00raw"}
    first["channel_versions"] = {"a": "1", "b": "1", "gone": "1"}
    versions = dict(first["channel_versions"])
    for _ in range(2):  # the second is a retry of the same write
        saved = await saver.aput(root, first, {"step": 0}, versions)
    tuple_ = await saver.aget_tuple(saved)
    assert tuple_.checkpoint["channel_values"] == {"a": [1, 2], "b": b"\x00raw"}

    second = empty_checkpoint()  # no new channel versions: no blobs at all
    second["channel_versions"] = first["channel_versions"]
    later = await saver.aput(saved, second, {"step": 1}, {})
    assert (await saver.aget_tuple(later)).checkpoint["channel_values"] == {
        "a": [1, 2],
        "b": b"\x00raw",
    }
    assert (await saver.aget_tuple(later)).parent_config == saved

    await saver.aput_writes(later, [("x", 1), ("y", {"z": None})], "task-1", "path")
    await saver.aput_writes(later, [("x", 99)], "task-1", "path")  # a retry keeps the first
    await saver.aput_writes(later, [("__error__", "one"), ("__error__", "two")], "task-2")
    await saver.aput_writes(
        later, [("x", 5), ("__interrupt__", "first"), ("__interrupt__", "second")], "task-3"
    )
    writes = (await saver.aget_tuple(later)).pending_writes
    assert sorted(writes, key=repr) == sorted(
        [
            ("task-1", "x", 1),
            ("task-1", "y", {"z": None}),
            ("task-2", "__error__", "two"),
            ("task-3", "x", 5),
            ("task-3", "__interrupt__", "first"),
        ],
        key=repr,
    )
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s) AS blobs,"
            " (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS checkpoints",
            {"t": thread},
        )
        # a, b and the emptied channel's marker, once each; two checkpoints.
        assert await cur.fetchone() == {"blobs": 3, "checkpoints": 2}


async def test_held_writes_commit_together_and_in_order(resources, orgs):
    """With `hold`, a write returns before its commit; a read through the same saver
    commits what is held first, in one transaction; a held write that fails is raised by
    the next call, once; writes handed over to a caller's transaction that fails are
    committed on their own; a delete commits them first."""
    (alice, _, _), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    saver = TenantCheckpointer(resources.db, alice, hold=30.0)
    reader = TenantCheckpointer(resources.db, alice)
    thread = {"configurable": {"thread_id": str(thread_id), "checkpoint_ns": ""}}

    async def put(parent: str | None) -> str:
        checkpoint = empty_checkpoint()
        config = {"configurable": {**thread["configurable"], "checkpoint_id": parent}}
        await saver.aput(config, checkpoint, {}, {})
        return checkpoint["id"]

    first = await put(None)
    second = await put(first)
    assert await reader.aget_tuple(thread) is None  # held, not committed
    latest = await saver.aget_tuple(thread)
    assert latest is not None and latest.checkpoint["id"] == second
    assert latest.parent_config["configurable"]["checkpoint_id"] == first
    async with resources.db.tenant(alice) as conn:
        cur = await conn.execute(
            "SELECT count(DISTINCT xmin::text) AS n FROM checkpoints WHERE thread_id = %s",
            (thread_id,),
        )
        assert (await cur.fetchone())["n"] == 1

    nowhere = {"configurable": {"thread_id": str(uuid.uuid4()), "checkpoint_ns": ""}}
    await saver.aput(nowhere, empty_checkpoint(), {}, {})  # held: no error yet
    with pytest.raises(Exception, match="foreign key"):
        await saver.flush()
    await saver.flush()  # raised once, like a write of its own

    third = await put(second)
    with pytest.raises(RuntimeError):
        async with saver.handing_over() as write:
            async with resources.db.tenant(alice) as conn:
                await write(conn)
                raise RuntimeError("the caller's own statement failed")
    assert (await reader.aget_tuple(thread)).checkpoint["id"] == third

    await put(third)  # held, then the thread's checkpoints deleted: it does not come back
    await saver.adelete_thread(str(thread_id))
    await saver.flush()
    assert await reader.aget_tuple(thread) is None


async def test_a_held_write_cannot_reach_another_orgs_thread(resources, orgs):
    """Held, a write to another org's thread id is still written in the saver's own org:
    its commit fails on the foreign key, and the other org's thread stays as it was."""
    (alice_a, _, _), (alice_b, _, _) = orgs
    thread_a = await make_thread(resources.db, alice_a)
    config = {"configurable": {"thread_id": str(thread_a), "checkpoint_ns": ""}}
    foreign = TenantCheckpointer(resources.db, alice_b, hold=30.0)
    await foreign.aput(config, empty_checkpoint(), {}, {})
    with pytest.raises(Exception, match="foreign key"):
        await foreign.flush()
    assert await TenantCheckpointer(resources.db, alice_a).aget_tuple(config) is None


async def test_thousands_of_writes_and_blobs_are_stored_whole(resources, orgs):
    """One task's writes can number tens of thousands (a `Send` fan-out), and a checkpoint's
    new channel versions as many: more rows than one statement's 65,535 parameters carry,
    stored whole all the same."""
    (alice, _, _), _ = orgs
    saver = TenantCheckpointer(resources.db, alice)
    thread = str(await make_thread(resources.db, alice))
    root = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    count = 20_000
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {f"c{i}": i for i in range(count)}
    checkpoint["channel_versions"] = {f"c{i}": "1" for i in range(count)}
    saved = await saver.aput(root, checkpoint, {"step": 0}, dict(checkpoint["channel_versions"]))
    await saver.aput_writes(saved, [("fan", i) for i in range(count)], "task-1")

    stored = await saver.aget_tuple(saved)
    assert stored.checkpoint["channel_values"] == checkpoint["channel_values"]
    assert sorted(value for _, _, value in stored.pending_writes) == list(range(count))
