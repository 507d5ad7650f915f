"""Stream modes through langgraph-sdk: every mode the LangGraph API streams, several at
once, subgraphs, and the thread state / history / update_state calls around them."""

from __future__ import annotations

import pytest
from langgraph_sdk.schema import Command

from .run_helpers import HI, parts


async def _stream(tenants, graph="agent", **kwargs):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    kwargs.setdefault("input", HI)
    return thread, await parts(sdk.runs.stream(thread, graph, **kwargs))


async def test_values_and_updates(tenants):
    _, values = await _stream(tenants, stream_mode="values")
    assert [e for e, _ in values] == ["metadata", "values", "values"]
    assert values[0][1]["run_id"]
    _, updates = await _stream(tenants, stream_mode="updates")
    assert [e for e, _ in updates] == ["metadata", "updates"]
    assert updates[1][1]["echo"]["messages"][0]["content"] == "echo: hi"


async def test_messages_tuple(tenants):
    _, events = await _stream(tenants, stream_mode="messages-tuple")
    messages = [d for e, d in events if e == "messages"]
    assert messages, events
    message, metadata = messages[-1]
    assert message["content"] == "echo: hi" and message["type"] == "ai"
    assert metadata["langgraph_node"] == "echo"


async def test_messages(tenants):
    _, events = await _stream(tenants, stream_mode="messages")
    names = [e for e, _ in events]
    assert names[0] == "metadata"
    assert "messages/metadata" in names and "messages/complete" in names
    complete = [d for e, d in events if e == "messages/complete"][-1]
    assert complete[0]["content"] == "echo: hi"
    (meta,) = [d for e, d in events if e == "messages/metadata"][-1].values()
    assert meta["metadata"]["langgraph_node"] == "echo"


async def test_custom(tenants):
    _, events = await _stream(
        tenants, "custom", input={}, stream_mode="custom", config={"configurable": {"steps": 2}}
    )
    assert events[1:] == [("custom", {"step": 1, "of": 2}), ("custom", {"step": 2, "of": 2})]


async def test_events(tenants):
    _, events = await _stream(tenants, stream_mode="events")
    kinds = [d["event"] for e, d in events if e == "events"]
    assert "on_chain_start" in kinds and "on_chain_end" in kinds
    assert {e for e, _ in events} == {"metadata", "events"}


@pytest.mark.parametrize("mode", ["debug", "checkpoints", "tasks"])
async def test_debug_checkpoints_tasks(tenants, mode):
    _, events = await _stream(tenants, stream_mode=mode)
    data = [d for e, d in events if e == mode]
    assert data and {e for e, _ in events} == {"metadata", mode}
    if mode == "checkpoints":
        assert data[-1]["values"]["messages"][-1]["content"] == "echo: hi"
        assert data[-1]["next"] == []
    elif mode == "tasks":
        assert {d.get("name") for d in data} == {"echo"}
        assert any("result" in d for d in data)
    else:
        assert {d["type"] for d in data} >= {"checkpoint", "task", "task_result"}


async def test_several_modes_at_once(tenants):
    _, events = await _stream(tenants, stream_mode=["values", "updates", "messages-tuple"])
    assert {e for e, _ in events} == {"metadata", "values", "updates", "messages"}
    assert events[-1][0] in ("values", "updates", "messages")


async def test_stream_subgraphs_and_state_with_subgraphs(tenants):
    sdk = tenants.a_member.sdk
    thread, events = await _stream(
        tenants, "nested", input={"topic": "tea"}, stream_mode="updates", stream_subgraphs=True
    )
    names = [e for e, _ in events]
    assert "updates" in names
    child = [e for e in names if e.startswith("updates|child:")]
    assert child, names
    parent = await sdk.threads.get_state(thread)
    assert parent["next"] == ["child"]
    nested = await sdk.threads.get_state(thread, subgraphs=True)
    (task,) = nested["tasks"]
    assert task["name"] == "child"
    assert task["state"]["values"] == {"topic": "TEA"}
    assert task["state"]["next"] == ["ask"]
    assert task["state"]["tasks"][0]["interrupts"][0]["value"] == {"question": "about TEA?"}
    assert (await sdk.threads.get(thread))["status"] == "interrupted"
    done = await sdk.runs.wait(thread, "nested", command=Command(resume="green"))
    assert done == {"topic": "TEA", "answer": "green"}
    assert (await sdk.threads.get(thread))["status"] == "idle"


async def test_state_at_a_checkpoint_history_and_update(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    for text in ("a", "b"):
        await sdk.runs.wait(
            thread, "agent", input={"messages": [{"role": "user", "content": text}]}
        )
    history = await sdk.threads.get_history(thread, limit=100)
    assert len(history) >= 6
    contents = [[m["content"] for m in h["values"].get("messages", [])] for h in history]
    assert contents[0] == ["a", "echo: a", "b", "echo: b"]
    assert ["a", "echo: a"] in contents
    first_turn = history[contents.index(["a", "echo: a"])]
    at = await sdk.threads.get_state(
        thread, checkpoint_id=first_turn["checkpoint"]["checkpoint_id"]
    )
    assert [m["content"] for m in at["values"]["messages"]] == ["a", "echo: a"]
    by_checkpoint = await sdk.threads.get_state(thread, checkpoint=first_turn["checkpoint"])
    assert by_checkpoint["checkpoint"] == at["checkpoint"]
    assert len(await sdk.threads.get_history(thread, limit=2)) == 2
    before = await sdk.threads.get_history(thread, before=first_turn["checkpoint"], limit=100)
    first_id = first_turn["checkpoint"]["checkpoint_id"]
    older = [
        h["checkpoint"]["checkpoint_id"]
        for h in history
        if h["checkpoint"]["checkpoint_id"] < first_id
    ]
    assert older and [h["checkpoint"]["checkpoint_id"] for h in before] == older

    updated = await sdk.threads.update_state(
        thread, {"messages": [{"role": "user", "content": "edited"}]}, as_node="echo"
    )
    assert updated["checkpoint"]["checkpoint_id"]
    state = await sdk.threads.get_state(thread)
    assert state["values"]["messages"][-1]["content"] == "edited"
    assert state["checkpoint"] == updated["checkpoint"]
    assert (await sdk.threads.get(thread))["values"]["messages"][-1]["content"] == "edited"
    # Continue from the updated state.
    result = await sdk.runs.wait(thread, "agent", input={"messages": []})
    assert result["messages"][-1]["content"] == "echo: edited"


async def test_thread_status_follows_the_checkpointer(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    assert (await sdk.threads.get(thread))["status"] == "idle"
    await sdk.runs.wait(thread, "hitl", input={"messages": []})
    assert (await sdk.threads.get(thread))["status"] == "interrupted"
    assert (await sdk.threads.get_state(thread))["next"] == ["review"]
    # update_state past the interrupt: nothing is next, the thread is idle again.
    await sdk.threads.update_state(thread, {"approved": False}, as_node="review")
    assert (await sdk.threads.get_state(thread))["next"] == []
    assert (await sdk.threads.get(thread))["status"] == "idle"


@pytest.mark.parametrize("start", ["-", "-1"])
async def test_a_join_stream_from_the_start_replays_every_event(tenants, start):
    """`-` and `-1` (the JS SDK's) mean the stream's beginning, as the LangGraph API reads
    them, not a bad id."""
    member = tenants.a_member
    thread = (await member.sdk.threads.create())["thread_id"]
    run = await member.sdk.runs.create(thread, "agent", input=HI, stream_resumable=True)
    path = f"/threads/{thread}/runs/{run['run_id']}/stream"
    replayed = await member.http.get(path, headers={"Last-Event-ID": start})
    assert replayed.status_code == 200, replayed.text
    assert replayed.text.startswith("event: metadata") and "event: values" in replayed.text
