"""One user's streams cannot stall the server: a real `tenantgraph serve` whose users open
more SSE streams than the request path's Valkey pool holds (64), while another user's
requests and runs must go on. The streams follow runs queued an hour ahead, so the worker
stays free for the other user and the streams stay open until the test cancels the runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
from tests.api_fixtures import Caller, caller, start_api_server

PER_USER, PER_ORG = 5, 8
DEADLINE = 90


@pytest.fixture(scope="module")
def capped_url(api_env, data_dir) -> Iterator[str]:
    server = start_api_server(
        data_dir,
        **api_env,
        TENANTGRAPH_STREAMS_PER_USER=str(PER_USER),
        TENANTGRAPH_STREAMS_PER_ORG=str(PER_ORG),
    )
    yield server.url
    server.terminate()


@pytest.fixture
async def streams(capped_url) -> AsyncIterator[httpx.AsyncClient]:
    """A client without httpx's 100-connection limit, for many open streams."""
    async with httpx.AsyncClient(
        base_url=capped_url, limits=httpx.Limits(max_connections=None), timeout=DEADLINE
    ) as client:
        yield client


async def _queued_run(user: Caller) -> tuple[str, str]:
    """A thread and a run that starts in an hour: its stream stays open until cancelled."""
    thread = (await user.http.post("/threads", json={})).json()["thread_id"]
    response = await user.http.post(
        f"/threads/{thread}/runs",
        json={"assistant_id": "slow", "input": {}, "after_seconds": 3600},
    )
    assert response.status_code == 200, response.text
    return thread, response.json()["run_id"]


async def _open(
    stack: AsyncExitStack, client: httpx.AsyncClient, user: Caller, thread: str, run: str, n: int
) -> list[httpx.Response]:
    """Open `n` streams of the run at once and keep the accepted ones open."""

    async def one() -> httpx.Response:
        return await stack.enter_async_context(
            client.stream(
                "GET",
                f"/threads/{thread}/runs/{run}/stream",
                headers=_auth(user),
            )
        )

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _others_proceed(other: Caller) -> None:
    """Another org's user: threads, store calls and runs all complete (each run succeeds)."""
    async with asyncio.timeout(DEADLINE):
        for i in range(5):
            thread = (await other.sdk.threads.create())["thread_id"]
            result = await other.sdk.runs.wait(thread, "agent", input={"messages": []})
            assert "__error__" not in result, result
            await other.sdk.store.put_item(("notes",), f"k{i}", {"i": i})
            assert (await other.sdk.store.get_item(("notes",), f"k{i}"))["value"] == {"i": i}
            run = await other.sdk.runs.create(thread, "agent", input={"messages": []})
            joined = await other.sdk.runs.join(thread, run["run_id"])
            assert "__error__" not in joined, joined


async def _cancel(user: Caller, thread: str, run: str) -> None:
    await user.http.post(f"/threads/{thread}/runs/{run}/cancel")


async def test_a_hundred_streams_of_one_user_are_capped(capped_url, streams):
    suffix = uuid.uuid4().hex[:6]
    alice = caller(capped_url, f"acme-{suffix}", "alice", "member")
    anna = caller(capped_url, f"acme-{suffix}", "anna", "admin")
    other = caller(capped_url, f"globex-{suffix}", "olga", "member")
    thread, run = await _queued_run(alice)
    async with AsyncExitStack() as stack:
        opened = await _open(stack, streams, alice, thread, run, 100)
        statuses = [r.status_code for r in opened]
        assert statuses.count(200) == PER_USER and statuses.count(429) == 100 - PER_USER
        refused = next(r for r in opened if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) > 0
        # Her org's cap counts anna's streams too: 8 in all.
        theirs = [r.status_code for r in await _open(stack, streams, anna, thread, run, 5)]
        assert sorted(theirs) == [200] * (PER_ORG - PER_USER) + [429] * (5 - PER_ORG + PER_USER)
        await _others_proceed(other)
        await _cancel(alice, thread, run)
        for response in opened:  # the cancelled run's streams end
            if response.status_code == 200:
                await response.aread()
    # Their slots are free again: a new stream is accepted (it reads the run to its end).
    async with asyncio.timeout(DEADLINE):
        path = f"/threads/{thread}/runs/{run}/stream"
        while True:
            if (await streams.get(path, headers=_auth(alice))).status_code == 200:
                break
            await asyncio.sleep(0.1)


def _auth(user: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {user.token}"}


async def test_twenty_users_at_their_cap_leave_the_others_served(capped_url, streams):
    suffix = uuid.uuid4().hex[:6]
    users = [caller(capped_url, f"org{i}-{suffix}", f"user{i}", "member") for i in range(20)]
    other = caller(capped_url, f"globex-{suffix}", "olga", "member")
    runs = await asyncio.gather(*(_queued_run(user) for user in users))
    async with AsyncExitStack() as stack:
        opened = await asyncio.gather(
            *(
                _open(stack, streams, user, thread, run, PER_USER)
                for user, (thread, run) in zip(users, runs, strict=True)
            )
        )
        statuses = [r.status_code for group in opened for r in group]
        assert statuses == [200] * 20 * PER_USER  # 100 streams: more than the old pool of 64
        await _others_proceed(other)
        await asyncio.gather(
            *(_cancel(user, thread, run) for user, (thread, run) in zip(users, runs, strict=True))
        )
        for group in opened:
            for response in group:
                await response.aread()
