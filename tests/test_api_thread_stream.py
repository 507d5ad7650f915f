"""A thread's stream (`threads.join_stream`) and `threads.prune`, through langgraph-sdk."""

import asyncio
import uuid

import pytest
from langgraph_sdk.errors import NotFoundError

from .api_fixtures import caller

HI = {"messages": [{"role": "user", "content": "hi"}]}


async def _read_until(stream, parts: list, done: int) -> None:
    """Collect parts until `done` runs have sent their `run_done`."""
    async for part in stream:
        parts.append(part)
        finished = [p for p in parts if p.event == "metadata" and "status" in p.data]
        if len(finished) == done:
            return


def _gated(tmp_path, name: str) -> tuple[dict, object]:
    """A config for the `gate` graph whose run lasts until the returned path exists."""
    gate = tmp_path / name
    return {"configurable": {"gate": str(gate)}}, gate


def _done(parts: list) -> list[dict]:
    return [p.data for p in parts if p.event == "metadata" and "status" in p.data]


async def test_the_thread_stream_carries_each_run_that_goes_through_it(tenants, tmp_path):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    config, gate = _gated(tmp_path, "gate")
    first = await sdk.runs.create(thread, "gate", input={}, config=config)
    stream = await sdk.threads.join_stream(thread)
    parts = [await anext(stream)]  # the running run's start: the stream has joined
    assert (parts[0].event, parts[0].data["run_id"]) == ("metadata", first["run_id"])
    reader = asyncio.create_task(_read_until(stream, parts, 2))
    gate.touch()
    await sdk.runs.join(thread, first["run_id"])
    # A run created after the join, and gone before the stream next looks, is streamed too.
    second = await sdk.runs.create(thread, "gate", input={}, config=config)
    await asyncio.wait_for(reader, 60)
    starts = [p.data["run_id"] for p in parts if p.event == "metadata" and "attempt" in p.data]
    assert starts == [first["run_id"], second["run_id"]]
    assert _done(parts) == [
        {"status": "run_done", "run_id": first["run_id"]},
        {"status": "run_done", "run_id": second["run_id"]},
    ]
    assert [p.data for p in parts if p.event == "values"][-1] == {"opened": True}
    assert parts[-1].data == _done(parts)[-1]
    await stream.aclose()


async def test_lifecycle_mode_sends_only_starts_and_ends(tenants, tmp_path):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    config, gate = _gated(tmp_path, "gate")
    run = await sdk.runs.create(thread, "gate", input={}, config=config)
    stream = await sdk.threads.join_stream(thread, params={"stream_modes": "lifecycle"})
    start = await anext(stream)
    gate.touch()
    end = await asyncio.wait_for(anext(stream), 60)
    await stream.aclose()
    assert (start.event, start.data["run_id"], start.data["attempt"]) == (
        "metadata",
        run["run_id"],
        1,
    )
    assert (end.event, end.data) == ("metadata", {"status": "run_done", "run_id": run["run_id"]})


async def test_thread_stream_modes_and_event_ids_are_checked(tenants):
    member = tenants.a_member
    url = f"/threads/{(await member.sdk.threads.create())['thread_id']}/stream"
    for params, headers in (
        ({"stream_modes": "state_updates"}, {}),
        ({"stream_mode": "nope"}, {}),
        ({}, {"Last-Event-ID": "not-an-id"}),
    ):
        answer = await member.http.get(url, params=params, headers=headers)
        assert answer.status_code == 422, (params, headers, answer.text)
    # An id no clock reaches is an id after every event: the stream opens, from now on.
    far = {"Last-Event-ID": f"{2**64 - 1}-0"}
    async with member.http.stream("GET", url, headers=far) as answer:
        assert answer.status_code == 200


async def test_a_thread_stream_resumes_after_its_last_event_id(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, "agent", input=HI, stream_resumable=True)
    events = [p async for p in sdk.runs.join_stream(thread, run["run_id"], last_event_id="-1")]
    assert events[0].event == "metadata" and len(events) > 2
    parts: list = []
    resumed = await sdk.threads.join_stream(thread, last_event_id=events[0].id)
    await asyncio.wait_for(_read_until(resumed, parts, 1), 60)
    await resumed.aclose()
    assert [(p.event, p.data) for p in parts[:-1]] == [(e.event, e.data) for e in events[1:]]
    assert [p.id for p in parts[:-1]] == [e.id for e in events[1:]]
    assert parts[-1].data == {"status": "run_done", "run_id": run["run_id"]}


async def test_another_users_thread_stream_is_404(api_url, tenants):
    thread = (await tenants.a_member.sdk.threads.create())["thread_id"]
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    for who, thread_id in ((carl, thread), (tenants.b_admin, thread), (carl, str(uuid.uuid4()))):
        with pytest.raises(NotFoundError):
            await anext(await who.sdk.threads.join_stream(thread_id))


async def test_prune_deletes_or_keeps_the_latest_state(api_url, tenants):
    sdk = tenants.a_member.sdk
    kept, gone = (
        (await sdk.threads.create())["thread_id"],
        (await sdk.threads.create())["thread_id"],
    )
    for thread in (kept, gone):
        for text in ("one", "two"):
            await sdk.runs.wait(
                thread, "agent", input={"messages": [{"role": "user", "content": text}]}
            )
    before = await sdk.threads.get_state(kept)
    assert len(await sdk.threads.get_history(kept, limit=100)) > 2
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    for who in (carl, tenants.b_admin):
        assert await who.sdk.threads.prune([kept, gone]) == {"pruned_count": 0}
        assert await who.sdk.threads.prune([kept], strategy="keep_latest") == {"pruned_count": 0}
    assert await sdk.threads.prune([kept], strategy="keep_latest") == {"pruned_count": 1}
    after = await sdk.threads.get_state(kept)
    assert after["values"] == before["values"]
    assert after["checkpoint"] == before["checkpoint"]
    assert [h["checkpoint"] for h in await sdk.threads.get_history(kept)] == [after["checkpoint"]]
    # The thread goes on from its latest state.
    again = await asyncio.wait_for(
        sdk.runs.wait(kept, "agent", input={"messages": [{"role": "user", "content": "three"}]}), 30
    )
    assert len(again["messages"]) == len(before["values"]["messages"]) + 2
    assert await sdk.threads.prune([gone, str(uuid.uuid4())]) == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await sdk.threads.get(gone)
    assert await sdk.threads.prune([]) == {"pruned_count": 0}
