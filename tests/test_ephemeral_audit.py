"""The keyspace audit finds untagged and immortal keys; purging an org removes only its keys."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from typer.testing import CliRunner

from tenantgraph.cli.redis import redis_app
from tenantgraph.ephemeral.audit import audit_keys, purge_org
from tenantgraph.ephemeral.flags import ConversationFlags
from tenantgraph.ephemeral.sessions import SessionWindow
from tenantgraph.scope import KeyKind, Principal, redis_key

from .ephemeral_app import valkey_client, valkey_url


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


def run_cli(settings, *args: str):
    """`tenantgraph redis …` in a worker thread (it runs its own event loop)."""
    env = {
        "REDIS_URL": valkey_url(settings),
        "TENANTGRAPH_REDIS_CLUSTER": str(settings.redis_cluster).lower(),
    }
    return asyncio.to_thread(CliRunner().invoke, redis_app, list(args), env=env)


async def test_audit_reports_keys_without_ttl_or_org_tag(redis, settings, org_ids):
    immortal = redis_key(org_ids[0], KeyKind.CACHE, "immortal", uuid.uuid4().hex)
    untagged = f"untagged:{uuid.uuid4().hex}"
    bad_tag = f"{{}}:cache:{uuid.uuid4().hex}"
    fine = redis_key(org_ids[0], KeyKind.CACHE, "fine")
    await redis.set(immortal, b"1")
    await redis.set(untagged, b"1", ex=60)
    await redis.set(bad_tag, b"1", ex=60)
    await redis.set(fine, b"1", ex=60)
    try:
        report = await audit_keys(redis)
        assert immortal in report.without_ttl
        assert {untagged, bad_tag} <= set(report.untagged)
        assert fine not in report.without_ttl + report.untagged
        assert not report.ok

        result = await run_cli(settings, "audit")
        assert result.exit_code == 1, result.output
        assert immortal in result.output and untagged in result.output
        assert "FAILED" in result.output
    finally:
        await redis.delete(immortal, untagged, bad_tag, fine)


async def test_purge_removes_every_key_of_one_org_and_nothing_else(redis, org_ids):
    a, b = org_ids

    async def fill(org: str) -> None:
        principal = Principal(org, "alice")
        await SessionWindow(redis, principal, "asst", "s1", size=5, ttl_seconds=60).append({"m": 1})
        await ConversationFlags(redis, principal, "t1", ttl_seconds=60).engage()
        await redis.set(redis_key(org, KeyKind.CACHE, "alice", "k"), b"x", ex=60)

    await fill(a)
    await fill(b)
    assert await purge_org(redis, a) == 3
    assert [k async for k in redis.scan_iter(match=f"{{{a}}}:*")] == []
    b_keys = [k async for k in redis.scan_iter(match=f"{{{b}}}:*")]
    assert len(b_keys) == 3
    assert await purge_org(redis, b) == 3


async def test_purge_of_an_org_whose_id_looks_like_a_pattern_is_literal(redis):
    suffix = uuid.uuid4().hex[:8]
    victim = f"org-{suffix}"
    await redis.set(redis_key(victim, KeyKind.CACHE, "x"), b"1", ex=60)
    assert await purge_org(redis, f"org-*{suffix[1:]}") == 0
    assert await purge_org(redis, f"org-?{suffix[1:]}") == 0
    assert await purge_org(redis, victim) == 1
