"""Conversation flags: typed, expiring, per (org, user, thread)."""

from __future__ import annotations

import asyncio

import pytest

from tenantgraph.ephemeral.flags import ConversationFlags, Escalation, Flag, PendingConfirmation
from tenantgraph.scope import Principal

from .ephemeral_app import valkey_client


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


def flags(redis, org, user="alice", thread="t1") -> ConversationFlags:
    return ConversationFlags(redis, Principal(org, user), thread, ttl_seconds=600)


async def test_engagement_expires_and_is_per_thread(redis, org_ids):
    f = flags(redis, org_ids[0])
    assert not await f.is_engaged()
    await f.engage()
    assert await f.is_engaged()
    assert 0 < await redis.ttl(f.key(Flag.ENGAGED)) <= 600
    assert not await flags(redis, org_ids[0], thread="t2").is_engaged()
    await f.disengage()
    assert not await f.is_engaged()


async def test_only_one_reply_takes_a_pending_confirmation(redis, org_ids):
    f = flags(redis, org_ids[0])
    pending = PendingConfirmation("call-1", "send_email", {"to": "x@example.com"})
    assert await f.request_confirmation(pending)
    assert not await f.request_confirmation(PendingConfirmation("call-2", "delete", {}))
    assert await f.pending_confirmation() == pending
    taken = await asyncio.gather(*(f.take_confirmation() for _ in range(10)))
    assert [t for t in taken if t is not None] == [pending]
    assert await f.pending_confirmation() is None


async def test_escalation_round_trips_with_a_ttl(redis, org_ids):
    f = flags(redis, org_ids[0])
    await f.escalate(Escalation("user asked for a human"), ttl_seconds=30)
    assert await f.escalation() == Escalation("user asked for a human")
    assert 0 < await redis.ttl(f.key(Flag.ESCALATION)) <= 30
    await f.clear_escalation()
    assert await f.escalation() is None


async def test_flags_of_other_users_and_orgs_are_invisible(redis, org_ids):
    mine = flags(redis, org_ids[0])
    await mine.engage()
    await mine.escalate(Escalation("x"))
    for other in (flags(redis, org_ids[0], "bob"), flags(redis, org_ids[1], "alice")):
        assert not await other.is_engaged()
        assert await other.escalation() is None
    await mine.disengage()
    await mine.clear_escalation()
