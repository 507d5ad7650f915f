"""Episodic memory: recency, TTL per episode, summarized marks, scoring, promotion."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore
from redis.crc import key_slot

from tenantgraph.ephemeral.context import bind
from tenantgraph.ephemeral.episodes import Episode, EpisodicMemory, episodes, promote
from tenantgraph.scope import MEMORIES, Principal
from tenantgraph.settings import EphemeralSettings

from .ephemeral_app import valkey_client


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


def memory(redis, org, user="alice", session="s1", *, ttl=3600, cap=100) -> EpisodicMemory:
    return EpisodicMemory(redis, Principal(org, user), session, ttl_seconds=ttl, max_episodes=cap)


async def test_episodes_come_back_newest_first_and_keys_expire(redis, org_ids):
    mem = memory(redis, org_ids[0])
    added = [await mem.add({"said": i}) for i in range(4)]
    recent = await mem.recent()
    assert [e.content for e in recent] == [{"said": 3}, {"said": 2}, {"said": 1}, {"said": 0}]
    assert [e.id for e in recent] == [e.id for e in reversed(added)]
    assert [e.content for e in await mem.recent(2)] == [{"said": 3}, {"said": 2}]
    for key in mem.keys:
        assert 0 < await redis.pttl(key) <= 3_600_000
    assert len({key_slot(key.encode()) for key in mem.keys}) == 1  # one Redis Cluster slot
    await mem.expire_session()
    assert await mem.recent() == []
    assert not await redis.exists(*mem.keys)


async def test_each_episode_fades_after_its_own_ttl(redis, org_ids):
    """ "old" is aged past the TTL by moving its creation time back (the server's clock
    moving on), so no stall of the test can expire "new" or keep "old"."""
    mem = memory(redis, org_ids[0], ttl=60)
    old = await mem.add("old")
    await mem.add("new")
    index = mem.keys[0]
    created = await redis.zscore(index, old.id)
    assert created is not None
    await redis.zadd(index, {old.id: created - 61_000_000}, xx=True)
    # "old" is past its TTL although the session keys were renewed by "new".
    assert [e.content for e in await mem.recent()] == ["new"]
    await mem.add("newest")  # a write also drops what faded
    assert await redis.zcard(mem.keys[0]) == 2
    await mem.expire_session()


async def test_a_session_is_bounded(redis, org_ids):
    mem = memory(redis, org_ids[0], cap=3)
    for i in range(10):
        await mem.add(i)
    assert [e.content for e in await mem.recent()] == [9, 8, 7]
    assert await redis.hlen(mem.keys[1]) == 3
    await mem.expire_session()


async def test_mark_summarized_hides_episodes_from_ranking(redis, org_ids):
    mem = memory(redis, org_ids[0])
    a, b, _ = [await mem.add(x) for x in "abc"]
    assert await mem.mark_summarized(a.id, b.id, "no-such-episode") == 2
    assert [e.content for e in await mem.recent(include_summarized=False)] == ["c"]
    assert [e.summarized for e in await mem.recent()] == [False, True, True]
    assert [e.content for _, e in await mem.ranked()] == ["c"]
    await mem.expire_session()


async def test_ranking_decays_importance_with_age(redis, org_ids):
    mem = memory(redis, org_ids[0])
    await mem.add("important", importance=5.0)
    await mem.add("trivial", importance=1.0)
    ranked = await mem.ranked(half_life_seconds=3600)
    assert [e.content for _, e in ranked] == ["important", "trivial"]
    # A day-old episode with importance 5 scores below a fresh one with importance 1.
    old = Episode("x", "old", created_at_ms=0, importance=5.0)
    fresh = Episode("y", "fresh", created_at_ms=86_400_000, importance=1.0)
    now = 86_400_000
    assert fresh.score(now, 3600) == 1.0
    assert old.score(now, 3600) == pytest.approx(5.0 * 0.5**24)
    await mem.expire_session()


async def test_users_and_orgs_never_share_episodes(redis, org_ids):
    mems = {(o, u): memory(redis, o, u) for o in org_ids for u in ("alice", "bob")}
    for (o, u), mem in mems.items():
        await mem.add(f"{o}/{u}")
    for (o, u), mem in mems.items():
        assert [e.content for e in await mem.recent()] == [f"{o}/{u}"]
    a_episode = (await mems[(org_ids[0], "alice")].recent())[0]
    # Marking another tenant's episode id through your own memory touches nothing.
    assert await mems[(org_ids[1], "alice")].mark_summarized(a_episode.id) == 0
    assert not (await mems[(org_ids[0], "alice")].recent())[0].summarized
    for mem in mems.values():
        await mem.expire_session()


async def test_a_graph_promotes_an_episode_into_its_memory_namespace(redis, org_ids):
    config = {
        "configurable": {
            "org_id": org_ids[0],
            "user_id": "alice",
            "assistant_id": "asst-1",
            "thread_id": "t-1",
        }
    }
    store = InMemoryStore()
    with bind(redis, EphemeralSettings()):
        mem = episodes(config)
        episode = await mem.add({"fact": "likes tea"}, importance=2.0)
        namespace = await promote(store, config, episode)
        await mem.expire_session()
    assert namespace == ("asst-1", MEMORIES)
    item = await store.aget(namespace, episode.id)
    assert item is not None
    assert item.value["content"] == {"fact": "likes tea"}
    assert item.value["importance"] == 2.0
    assert item.value["source"] == "episode"
