"""Session windows: bounded, expiring, per (org, user, assistant, session)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantgraph.ephemeral.context import bind
from tenantgraph.ephemeral.sessions import SessionWindow, session_window
from tenantgraph.scope import Principal
from tenantgraph.settings import EphemeralSettings

from .ephemeral_app import valkey_client

SIZE = 5
TTL = 600


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


def window(redis, org: str, user: str, session: str = "s1") -> SessionWindow:
    return SessionWindow(
        redis, Principal(org, user), "assistant-1", session, size=SIZE, ttl_seconds=TTL
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(st.integers(0, 1000), max_size=8), max_size=12))
async def test_after_any_appends_the_window_is_bounded_ordered_and_expiring(redis, batches):
    org = f"org-{uuid.uuid4().hex[:8]}"
    alice, bob = window(redis, org, "alice"), window(redis, org, "bob")
    sent = []
    for batch in batches:
        messages = [{"role": "user", "n": n} for n in batch]
        length = await alice.append(*messages)
        sent += messages
        assert length == min(len(sent), SIZE)
        assert 0 < await redis.ttl(alice.key) <= TTL or not sent
    assert await alice.messages() == sent[-SIZE:]
    assert await alice.messages(last=2) == sent[-2:]
    assert await bob.messages() == []  # another user of the same org and assistant
    await alice.clear()


async def test_two_users_and_two_orgs_never_see_each_others_window(redis, org_ids):
    windows = {
        (org, user): window(redis, org, user) for org in org_ids for user in ("alice", "bob")
    }
    for (org, user), w in windows.items():
        await w.append({"content": f"{org}/{user}"})
    for (org, user), w in windows.items():
        assert await w.messages() == [{"content": f"{org}/{user}"}]
    assert len({w.key for w in windows.values()}) == 4
    for w in windows.values():
        await w.clear()


async def test_graphs_reach_their_window_through_the_run_config(redis, org_ids):
    config = {
        "configurable": {
            "org_id": org_ids[0],
            "user_id": "alice",
            "assistant_id": "assistant-1",
            "thread_id": "thread-1",
        }
    }
    with pytest.raises(RuntimeError):
        session_window(config)
    with bind(redis, EphemeralSettings(session_window_size=3)):
        w = session_window(config)
        for i in range(5):
            await w.append({"i": i})
        assert await w.messages() == [{"i": 2}, {"i": 3}, {"i": 4}]
        assert w.key == window(redis, org_ids[0], "alice", "thread-1").key
        await w.clear()
        with pytest.raises(ValueError, match="org_id"):
            session_window({"configurable": {"user_id": "alice"}})
