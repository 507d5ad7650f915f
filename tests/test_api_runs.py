"""Runs through langgraph-sdk against a `tenantgraph serve` process, as users call them:
create / stream / wait (stateful and stateless), batch, get, list, delete, cancel, join,
multitask strategies and the run options of the LangGraph API."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from langgraph_sdk.schema import Command

from .run_helpers import HI, slow, until_status


def _said(result: dict) -> str:
    return result["messages"][-1]["content"]


async def test_create_get_list_join_delete(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    created = [
        await sdk.runs.create(thread, "agent", input={"messages": [{"role": "user", "content": m}]})
        for m in ("one", "two", "three")
    ]
    assert {r["status"] for r in created} <= {"pending", "running", "success"}
    assert _said(await sdk.runs.join(thread, created[-1]["run_id"])) == "echo: three"
    run = await sdk.runs.get(thread, created[0]["run_id"])
    assert run["status"] == "success" and run["thread_id"] == thread
    assert run["assistant_id"] and run["metadata"]["graph_id"] == "agent"
    listed = await sdk.runs.list(thread)
    assert [r["run_id"] for r in listed] == [r["run_id"] for r in reversed(created)]
    page = await sdk.runs.list(thread, limit=1, offset=1)
    assert [r["run_id"] for r in page] == [created[1]["run_id"]]
    assert len(await sdk.runs.list(thread, status="success")) == 3
    assert await sdk.runs.list(thread, status="pending") == []
    await sdk.runs.delete(thread, created[0]["run_id"])
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await sdk.runs.get(thread, created[0]["run_id"])
    assert missing.value.response.status_code == 404
    assert len(await sdk.runs.list(thread)) == 2
    state = await sdk.threads.get_state(thread)
    assert [m["content"] for m in state["values"]["messages"]][-1] == "echo: three"
    assert (await sdk.threads.get(thread))["status"] == "idle"


async def test_wait_and_stream_on_a_thread(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    assert _said(await sdk.runs.wait(thread, "agent", input=HI)) == "echo: hi"
    events = [p async for p in sdk.runs.stream(thread, "agent", input=HI)]
    assert events[0].event == "metadata"
    assert [p.event for p in events[1:]] == ["values", "values"]
    assert _said(events[-1].data) == "echo: hi"
    assert len(events[-1].data["messages"]) == 4  # the thread kept the first turn


async def test_the_example_graph_reads_content_blocks_as_a_chat_ui_sends_them(tenants):
    blocks = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]}
    assert _said(await tenants.a_member.sdk.runs.wait(None, "agent", input=blocks)) == (
        "echo: hello"
    )


async def test_a_graph_error_langgraph_api_shows_is_shown_with_its_message(tenants):
    """As langgraph-api's serialiser: LangGraph's own errors keep their message; an
    arbitrary exception of graph code is named but its message is not sent."""
    thread = (await tenants.a_member.sdk.threads.create())["thread_id"]
    failed = await tenants.a_member.sdk.runs.wait(thread, "agent", input=None, raise_error=False)
    assert failed["__error__"]["error"] == "EmptyInputError"
    assert failed["__error__"]["message"] != "An internal error occurred"


async def test_stateless_runs_delete_or_keep_their_thread(tenants):
    sdk = tenants.a_member.sdk
    assert _said(await sdk.runs.wait(None, "agent", input=HI)) == "echo: hi"
    streamed = [p async for p in sdk.runs.stream(None, "agent", input=HI)]
    assert _said(streamed[-1].data) == "echo: hi"
    kept = await sdk.runs.create(None, "agent", input=HI, on_completion="keep")
    gone = await sdk.runs.create(None, "agent", input=HI, on_completion="delete")
    for run in (kept, gone):
        joined = await tenants.a_member.http.get(f"/runs/{run['run_id']}/join")
        assert _said(joined.json()) == "echo: hi"
    state = await sdk.threads.get_state(kept["thread_id"])
    assert _said(state["values"]) == "echo: hi"
    with pytest.raises(httpx.HTTPStatusError) as deleted:
        await sdk.threads.get(gone["thread_id"])
    assert deleted.value.response.status_code == 404


async def test_create_batch(tenants):
    sdk = tenants.a_member.sdk
    payloads = [
        {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": m}]}}
        for m in ("x", "y")
    ]
    runs = await sdk.runs.create_batch(payloads)
    assert len(runs) == 2 and len({r["run_id"] for r in runs}) == 2
    for run, text in zip(runs, ("x", "y"), strict=True):
        joined = await tenants.a_member.http.get(f"/runs/{run['run_id']}/join")
        assert _said(joined.json()) == f"echo: {text}"


async def test_if_not_exists_creates_the_thread(tenants):
    sdk = tenants.a_member.sdk
    thread_id = str(uuid.uuid4())
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await sdk.runs.wait(thread_id, "agent", input=HI)
    assert missing.value.response.status_code == 404
    result = await sdk.runs.wait(thread_id, "agent", input=HI, if_not_exists="create")
    assert _said(result) == "echo: hi"
    thread = await sdk.threads.get(thread_id)
    assert thread["status"] == "idle" and thread["metadata"]["graph_id"] == "agent"


async def test_metadata_and_after_seconds(tenants):
    """A run an hour ahead stays pending while a later run with a short delay completes:
    the delay is the run's, not the worker's speed (and no stall flips either)."""
    sdk = tenants.a_member.sdk
    thread, later = [(await sdk.threads.create())["thread_id"] for _ in range(2)]
    held = await sdk.runs.create(later, "agent", input=HI, after_seconds=3600)
    run = await sdk.runs.create(
        thread,
        "agent",
        input=HI,
        metadata={"tag": "mine", "run_id": "forged"},
        after_seconds=1,
    )
    assert run["metadata"]["tag"] == "mine"
    assert "run_id" not in run["metadata"]
    assert (await sdk.threads.get(later))["status"] == "busy"
    assert _said(await sdk.runs.join(thread, run["run_id"])) == "echo: hi"
    assert (await sdk.runs.get(thread, run["run_id"]))["status"] == "success"
    assert (await sdk.runs.get(later, held["run_id"]))["status"] == "pending"
    await sdk.runs.cancel(later, held["run_id"])


async def test_errors_end_the_run_and_mark_the_thread(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    result = await sdk.runs.wait(
        thread, "slow", input={}, config=slow(1, 0, fail=True), raise_error=False
    )
    assert result["__error__"] == {"error": "ValueError", "message": "told to fail"}
    (run,) = await sdk.runs.list(thread)
    assert run["status"] == "error"
    assert (await sdk.threads.get(thread))["status"] == "error"
    assert _said(await sdk.runs.wait(thread, "agent", input=HI)) == "echo: hi"
    assert (await sdk.threads.get(thread))["status"] == "idle"


async def test_wait_and_join_give_the_same_result(tenants):
    """`wait` takes the result from the worker that ran the run in this server process,
    `join` reads it back from the run's event stream: both bodies must be the same, for a
    success, an error and an interrupt."""
    sdk = tenants.a_member.sdk
    cases = [
        ("agent", {"input": HI}, "messages"),
        ("slow", {"input": {}, "config": slow(1, 0, fail=True), "raise_error": False}, "__error__"),
        ("hitl", {"input": {"messages": []}}, "__interrupt__"),
    ]
    for graph, options, key in cases:
        thread = (await sdk.threads.create())["thread_id"]
        waited = await sdk.runs.wait(thread, graph, **options)
        assert key in waited, (graph, waited)
        (run,) = await sdk.runs.list(thread)
        assert await sdk.runs.join(thread, run["run_id"]) == waited, graph


# --- interrupts, commands, checkpoints --------------------------------------------------


async def test_interrupt_then_resume_with_command(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    paused = await sdk.runs.wait(thread, "hitl", input={"messages": []})
    assert paused["__interrupt__"][0]["value"] == {"question": "send the draft?"}
    assert (await sdk.threads.get(thread))["status"] == "interrupted"
    state = await sdk.threads.get_state(thread)
    assert state["next"] == ["review"]
    assert state["tasks"][0]["interrupts"][0]["value"] == {"question": "send the draft?"}
    done = await sdk.runs.wait(thread, "hitl", command=Command(resume="yes"))
    assert done["approved"] is True and _said(done) == "sent"
    assert (await sdk.threads.get(thread))["status"] == "idle"
    assert (await sdk.threads.get_state(thread))["next"] == []


async def test_resume_needs_a_thread(tenants):
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await tenants.a_member.sdk.runs.wait(None, "hitl", command=Command(resume="yes"))
    assert refused.value.response.status_code == 400


async def test_interrupt_before_and_after(tenants):
    sdk = tenants.a_member.sdk
    before = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(before, "hitl", input={"messages": []}, interrupt_before=["review"])
    state = await sdk.threads.get_state(before)
    assert state["next"] == ["review"] and _said(state["values"]) == "draft: ready to send"
    assert (await sdk.threads.get(before))["status"] == "interrupted"
    after = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(after, "hitl", input={"messages": []}, interrupt_after=["draft"])
    assert (await sdk.threads.get_state(after))["next"] == ["review"]
    # Continuing (no input) reaches the interrupt inside `review`.
    paused = await sdk.runs.wait(after, "hitl", input=None)
    assert paused["__interrupt__"][0]["value"] == {"question": "send the draft?"}


async def test_command_update_and_goto(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, "agent", input=HI)
    update = {"messages": [{"role": "user", "content": "via command"}]}
    result = await sdk.runs.wait(thread, "agent", command=Command(update=update, goto="echo"))
    assert _said(result) == "echo: via command"
    assert len(result["messages"]) == 4


async def test_run_from_an_earlier_checkpoint(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, "agent", input={"messages": [{"role": "user", "content": "a"}]})
    first = await sdk.threads.get_state(thread)
    await sdk.runs.wait(thread, "agent", input={"messages": [{"role": "user", "content": "b"}]})
    branch = {"messages": [{"role": "user", "content": "c"}]}
    by_id = await sdk.runs.wait(
        thread, "agent", input=branch, checkpoint_id=first["checkpoint"]["checkpoint_id"]
    )
    assert [m["content"] for m in by_id["messages"]] == ["a", "echo: a", "c", "echo: c"]
    by_checkpoint = await sdk.runs.wait(
        thread, "agent", input=branch, checkpoint=first["checkpoint"]
    )
    assert [m["content"] for m in by_checkpoint["messages"]] == ["a", "echo: a", "c", "echo: c"]


# --- cancel and multitasking --------------------------------------------------------------


@pytest.mark.parametrize("wait", [True, False])
async def test_cancel_interrupt_keeps_the_checkpoints(tenants, wait):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, "slow", input={}, config=slow(200, 0.05))
    await until_status(sdk, thread, run["run_id"], "running")
    await sdk.runs.cancel(thread, run["run_id"], wait=wait)
    await until_status(sdk, thread, run["run_id"], "interrupted")
    # The thread stopped between ticks: its checkpoint has a next node, so it is interrupted
    # (a run with no input continues it).
    state = await sdk.threads.get_state(thread)
    assert state["next"] == ["tick"]
    assert (await sdk.threads.get(thread))["status"] == "interrupted"
    values = state["values"]
    assert values["started"] == [f"{run['run_id']}:1"] and not values["finished"]
    assert (await sdk.runs.join(thread, run["run_id"]))["started"] == values["started"]


async def test_cancel_rollback_removes_the_run_and_its_checkpoints(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, "slow", input={}, config=slow(200, 0.05))
    await until_status(sdk, thread, run["run_id"], "running")
    await sdk.runs.cancel(thread, run["run_id"], wait=True, action="rollback")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await sdk.runs.get(thread, run["run_id"])
    assert gone.value.response.status_code == 404
    assert await sdk.threads.get_history(thread) == []
    assert (await sdk.threads.get(thread))["status"] == "idle"


async def test_cancel_many(tenants):
    sdk = tenants.a_member.sdk
    one = (await sdk.threads.create())["thread_id"]
    two = (await sdk.threads.create())["thread_id"]
    running = await sdk.runs.create(one, "slow", input={}, config=slow(200, 0.05))
    queued = await sdk.runs.create(one, "agent", input=HI)
    await until_status(sdk, one, running["run_id"], "running")
    await sdk.runs.cancel_many(thread_id=one)
    await until_status(sdk, one, running["run_id"], "interrupted")
    assert (await sdk.runs.get(one, queued["run_id"]))["status"] == "interrupted"

    later = await sdk.runs.create(two, "agent", input=HI, after_seconds=60)
    await sdk.runs.cancel_many(run_ids=[later["run_id"]])
    assert (await sdk.runs.get(two, later["run_id"]))["status"] == "interrupted"

    pending = await sdk.runs.create(two, "agent", input=HI, after_seconds=60)
    await sdk.runs.cancel_many(status="pending")
    assert (await sdk.runs.get(two, pending["run_id"]))["status"] == "interrupted"
    with pytest.raises(httpx.HTTPStatusError) as nothing:
        await sdk.runs.cancel_many(status="pending")
    assert nothing.value.response.status_code == 404


async def test_multitask_reject(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(thread, "slow", input={}, config=slow(200, 0.05))
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sdk.runs.create(thread, "agent", input=HI, multitask_strategy="reject")
    assert refused.value.response.status_code == 409
    await sdk.runs.cancel(thread, first["run_id"], wait=True)


async def test_multitask_enqueue_runs_in_order(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(thread, "slow", input={}, config=slow(3, 0.1))
    second = await sdk.runs.create(
        thread, "slow", input={}, config=slow(1, 0), multitask_strategy="enqueue"
    )
    values = await sdk.runs.join(thread, second["run_id"])
    assert values["finished"] == [first["run_id"], second["run_id"]]
    assert (await sdk.runs.get(thread, first["run_id"]))["status"] == "success"


async def test_multitask_interrupt(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(thread, "slow", input={}, config=slow(200, 0.05))
    await until_status(sdk, thread, first["run_id"], "running")
    second = await sdk.runs.create(
        thread, "slow", input={}, config=slow(1, 0), multitask_strategy="interrupt"
    )
    values = await sdk.runs.join(thread, second["run_id"])
    assert (await sdk.runs.get(thread, first["run_id"]))["status"] == "interrupted"
    # The interrupted run's checkpoints stay: both runs started on this thread.
    assert values["started"] == [f"{first['run_id']}:1", f"{second['run_id']}:1"]
    assert values["finished"] == [second["run_id"]]


async def test_multitask_rollback(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(thread, "slow", input={}, config=slow(200, 0.05))
    await until_status(sdk, thread, first["run_id"], "running")
    second = await sdk.runs.create(
        thread, "slow", input={}, config=slow(1, 0), multitask_strategy="rollback"
    )
    values = await sdk.runs.join(thread, second["run_id"])
    assert values["started"] == [f"{second['run_id']}:1"]
    assert [r["run_id"] for r in await sdk.runs.list(thread)] == [second["run_id"]]


async def test_join_stream_of_a_running_run(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(
        thread,
        "custom",
        input={},
        config={"configurable": {"steps": 4, "delay": 0.1}},
        stream_mode=["custom", "values"],
    )
    joined = [(p.event, p.data) async for p in sdk.runs.join_stream(thread, run["run_id"])]
    assert [d for e, d in joined if e == "custom"] == [{"step": i, "of": 4} for i in range(1, 5)]
    assert joined[-1] == ("values", {"done": 4})
    only_custom = [
        p.event async for p in sdk.runs.join_stream(thread, run["run_id"], stream_mode="custom")
    ]
    assert set(only_custom) <= {"metadata", "custom"} and only_custom.count("custom") == 4


@pytest.mark.parametrize(
    "graph, options",
    [
        ("agent", {}),
        ("agent", {"stream_mode": "updates"}),
        ("agent", {"stream_mode": ["checkpoints", "values"]}),
        ("nested", {"stream_mode": "updates", "stream_subgraphs": True}),
    ],
)
async def test_the_thread_settles_on_the_state_the_run_left(tenants, graph, options):
    """A run that ends its graph settles the thread from the last checkpoint the graph
    streamed (not read back); it must be the state a read gives, and the client sees
    `checkpoints` events only when it asked for them. The nested graph stops at its
    question: that end is read back and carries the interrupt."""
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    given = HI if graph == "agent" else {"topic": "tea"}
    parts = [p async for p in sdk.runs.stream(thread, graph, input=given, **options)]
    kinds = {p.event.split("|")[0] for p in parts}
    assert ("checkpoints" in kinds) == ("checkpoints" in options.get("stream_mode", ""))
    settled = await sdk.threads.get(thread)
    state = await sdk.threads.get_state(thread)
    assert settled["values"] == state["values"] and state["values"]
    if graph == "agent":
        assert settled["status"] == "idle" and not settled["interrupts"] and not state["next"]
    else:
        assert settled["status"] == "interrupted" and state["next"] == ["child"]
        assert list(settled["interrupts"]) == [state["tasks"][0]["id"]]


async def _default_assistant_and_run_xmin(api_env, org: str, run_id: str) -> list:
    """The creating transactions of the org's default `agent` assistant and of a run."""
    async with await psycopg.AsyncConnection.connect(api_env["DATABASE_URL"]) as conn:
        cur = await conn.execute(
            "SELECT (SELECT xmin::text FROM tenantgraph.assistants a WHERE a.org_id = %(org)s"
            " AND a.metadata->>'created_by' = 'system' AND a.graph_id = 'agent'),"
            " (SELECT xmin::text FROM tenantgraph.runs r WHERE r.org_id = %(org)s"
            " AND r.run_id = %(run)s)",
            {"org": org, "run": run_id},
        )
        return list(await cur.fetchone())


async def test_the_first_run_naming_a_graph_is_one_transaction(tenants, api_env):
    """The org's default assistant for the graph is created with the first run naming it
    (the run is due in an hour, so nothing else writes its row); a run that fails first
    leaves no assistant."""
    caller = tenants.a_member
    with pytest.raises(httpx.HTTPStatusError) as missing:
        await caller.sdk.runs.create(str(uuid.uuid4()), "agent", input=HI)
    assert missing.value.response.status_code == 404
    assert await _default_assistant_and_run_xmin(api_env, caller.org, str(uuid.uuid4())) == [
        None,
        None,
    ]
    thread = (await caller.sdk.threads.create())["thread_id"]
    run = await caller.sdk.runs.create(thread, "agent", input=HI, after_seconds=3600)
    assistant, created = await _default_assistant_and_run_xmin(api_env, caller.org, run["run_id"])
    assert created is not None and assistant == created
