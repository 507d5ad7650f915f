"""Token buckets: exact admission under concurrency, tenant separation, Postgres overrides."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot

from tenantgraph.ephemeral.key_generations import GENERATION_MS, bump_generation, generation_key
from tenantgraph.ephemeral.ratelimit import Bucket, RateLimiter
from tenantgraph.scope import KeyKind, Principal, PrincipalKind, org_key_pattern, redis_key
from tenantgraph.services.limits import OrgLimits
from tenantgraph.settings import EphemeralSettings, Limit, RateLimits

from .ephemeral_app import create_orgs, valkey_client

DAY = 86_400


def settings(**limits: Limit) -> EphemeralSettings:
    return EphemeralSettings(rate_limits=RateLimits(**limits), rate_limit_cache_seconds=60)


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


@pytest.fixture
async def orgs(resources, org_ids):
    await create_orgs(resources.db, *org_ids)
    return org_ids


async def test_concurrent_checks_admit_exactly_the_limit(resources, redis, orgs):
    limiter = RateLimiter(
        redis,
        OrgLimits(resources.db).get,
        settings(user_requests=Limit(limit=37, window_seconds=DAY)),
    )
    alice = Principal(orgs[0], "alice")
    decisions = await asyncio.gather(*(limiter.check_request(alice) for _ in range(500)))
    assert sum(d.allowed for d in decisions) == 37
    denied = [d for d in decisions if not d.allowed]
    assert all(d.bucket is Bucket.USER_REQUESTS and d.remaining == 0 for d in denied)
    assert all(d.retry_after_seconds >= 1 for d in denied)
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(37))


async def test_one_orgs_burst_leaves_another_orgs_budget_untouched(resources, redis, orgs):
    limiter = RateLimiter(
        redis,
        OrgLimits(resources.db).get,
        settings(org_requests=Limit(limit=10, window_seconds=DAY)),
    )
    a, b = Principal(orgs[0], "alice"), Principal(orgs[1], "alice")
    burst = await asyncio.gather(*(limiter.check_request(a) for _ in range(50)))
    assert sum(d.allowed for d in burst) == 10
    other = await limiter.check_request(b)
    assert other.allowed and other.bucket is Bucket.ORG_REQUESTS and other.remaining == 9


async def test_users_and_api_keys_have_their_own_buckets(resources, redis, orgs):
    limiter = RateLimiter(
        redis,
        OrgLimits(resources.db).get,
        settings(
            user_requests=Limit(limit=3, window_seconds=DAY),
            api_key_requests=Limit(limit=2, window_seconds=DAY),
        ),
    )
    org = orgs[0]
    alice, bob = Principal(org, "alice"), Principal(org, "bob")
    key_caller = Principal(org, "carol", kind=PrincipalKind.API_KEY)
    assert [(await limiter.check_request(alice)).allowed for _ in range(4)] == [1, 1, 1, 0]
    assert (await limiter.check_request(bob)).allowed
    # The key's bucket (2) is tighter than its user's (3).
    used = [(await limiter.check_request(key_caller, api_key_id="k1")).allowed for _ in range(3)]
    assert used == [True, True, False]
    # Another key of carol has its own bucket, but shares carol's user bucket (1 token left).
    other_key = await limiter.check_request(key_caller, api_key_id="k2")
    assert other_key.allowed and other_key.bucket is Bucket.USER_REQUESTS
    assert other_key.remaining == 0
    third_key = await limiter.check_request(key_caller, api_key_id="k3")
    assert not third_key.allowed and third_key.bucket is Bucket.USER_REQUESTS


async def test_a_denied_check_spends_nothing_from_any_bucket(resources, redis, orgs):
    limiter = RateLimiter(
        redis,
        OrgLimits(resources.db).get,
        settings(
            org_requests=Limit(limit=5, window_seconds=DAY),
            user_requests=Limit(limit=1, window_seconds=DAY),
        ),
    )
    org = orgs[0]
    alice = Principal(org, "alice")
    assert (await limiter.check_request(alice)).allowed
    for _ in range(10):
        assert not (await limiter.check_request(alice)).allowed  # user bucket empty
    # The ten denials took nothing from the org bucket: four more users fit, the fifth not.
    others = [await limiter.check_request(Principal(org, f"user{i}")) for i in range(5)]
    assert [d.allowed for d in others] == [True, True, True, True, False]
    assert others[-1].bucket is Bucket.ORG_REQUESTS


async def test_runs_and_requests_are_separate_budgets(resources, redis, orgs):
    limiter = RateLimiter(
        redis,
        OrgLimits(resources.db).get,
        settings(
            user_runs=Limit(limit=2, window_seconds=DAY),
            user_requests=Limit(limit=100, window_seconds=DAY),
        ),
    )
    alice = Principal(orgs[0], "alice")
    runs = [(await limiter.check_run(alice)) for _ in range(3)]
    assert [d.allowed for d in runs] == [True, True, False]
    assert runs[2].bucket is Bucket.USER_RUNS
    request = await limiter.check_request(alice)
    assert request.allowed and request.remaining == 99


async def test_buckets_refill_with_server_time(resources, redis, orgs):
    """One token per half hour, so no stall of the test refills one; the bucket's last
    refill is then moved back 31 minutes, as the server's clock would have moved."""
    hour = Limit(limit=2, window_seconds=3600)
    # The org's bucket refills slowly too, so its key outlives the test (the default one
    # is full again, and its key gone, within milliseconds).
    org = Limit(limit=1000, window_seconds=3600)
    limiter = RateLimiter(
        redis, OrgLimits(resources.db).get, settings(user_requests=hour, org_requests=org)
    )
    alice = Principal(orgs[0], "alice")
    assert (await limiter.check_request(alice)).allowed
    assert (await limiter.check_request(alice)).allowed
    denied = await limiter.check_request(alice)
    assert not denied.allowed and 1799 <= denied.retry_after_seconds <= 1800
    keys = [k async for k in redis.scan_iter(match=org_key_pattern(orgs[0]))]
    assert len(keys) == 2, keys  # the user's bucket and the org's
    for key in keys:
        at = int(await redis.hget(key, "at"))
        await redis.hset(key, "at", str(at - 31 * 60 * 1_000_000))
    assert (await limiter.check_request(alice)).allowed
    assert not (await limiter.check_request(alice)).allowed


async def test_bucket_keys_are_tenant_tagged_and_expire(resources, redis, orgs):
    # Small buckets: a key lives until its bucket is full again, here 30 s after one token
    # is spent (the defaults refill a token in milliseconds, and the key would be gone).
    slow = Limit(limit=2, window_seconds=60)
    buckets = ("org_requests", "user_requests", "api_key_requests", "org_runs", "user_runs")
    limiter = RateLimiter(
        redis, OrgLimits(resources.db).get, settings(**dict.fromkeys(buckets, slow))
    )
    alice = Principal(orgs[0], "alice", kind=PrincipalKind.API_KEY)
    await limiter.check_request(alice, api_key_id="k1")
    await limiter.check_run(alice)
    keys = sorted([k.decode() async for k in redis.scan_iter(match=org_key_pattern(orgs[0]))])
    assert keys == sorted(
        redis_key(orgs[0], KeyKind.RATE_LIMIT, *parts)
        for parts in [
            ("req", "org"),
            ("req", "user", "alice"),
            ("req", "key", "k1"),
            ("runs", "org"),
            ("runs", "user", "alice"),
        ]
    )
    for key in keys:
        assert 0 < await redis.pttl(key) <= 60_000
    assert len({key_slot(key.encode()) for key in keys}) == 1  # one Redis Cluster slot


async def test_org_overrides_come_from_postgres_and_are_cached(resources, redis, orgs):
    limiter = RateLimiter(
        redis, OrgLimits(resources.db).get, settings(user_runs=Limit(limit=50, window_seconds=DAY))
    )
    a, b = Principal(orgs[0], "admin", role="admin"), Principal(orgs[1], "admin", role="admin")
    await OrgLimits(resources.db).set(a, Bucket.USER_RUNS, Limit(limit=1, window_seconds=DAY))
    assert await OrgLimits(resources.db).get(a) == {
        Bucket.USER_RUNS: Limit(limit=1, window_seconds=DAY)
    }
    assert await OrgLimits(resources.db).get(b) == {}  # RLS: b sees nothing of a's
    assert [(await limiter.check_run(a)).allowed for _ in range(2)] == [True, False]
    assert (await limiter.check_run(b)).limit == 50

    # Cached: a change is seen after the cache entry expires (or is invalidated).
    await OrgLimits(resources.db).set(a, Bucket.USER_RUNS, None)
    assert (await limiter.check_run(a)).limit == 1
    limiter.invalidate(a.org_id)
    assert (await limiter.check_run(a)).limit == 50


async def test_concurrent_cache_misses_share_one_database_read(resources, redis, orgs):
    limiter = RateLimiter(redis, OrgLimits(resources.db).get, settings())
    a = Principal(orgs[0], "alice")
    reads = 0
    original = limiter._load

    async def counting(principal):
        nonlocal reads
        reads += 1
        return await original(principal)

    limiter._load = counting
    await asyncio.gather(*(limiter.limits(a) for _ in range(50)))
    assert reads == 1


async def test_cost_larger_than_a_bucket_is_refused(resources, redis, orgs):
    limiter = RateLimiter(
        redis, OrgLimits(resources.db).get, settings(user_runs=Limit(limit=2, window_seconds=DAY))
    )
    with pytest.raises(ValueError):
        await limiter.check_run(Principal(orgs[0], "alice"), cost=3)


async def test_the_key_generation_comes_with_the_check_and_never_repeats(resources, redis, orgs):
    """The org's API-key generation is read in the check's own call; a bump, or the key's
    loss (expiry, a Valkey restart), gives a value no server can have cached."""
    limiter = RateLimiter(redis, OrgLimits(resources.db).get, settings())
    alice = Principal(orgs[0], "alice", kind=PrincipalKind.API_KEY)

    async def generation() -> str | None:
        decision = await limiter.check_request(alice, api_key_id="k1", key_generation=True)
        assert decision.allowed
        return decision.key_generation

    first = await generation()
    assert first is not None and await generation() == first
    assert (await limiter.check_request(alice, api_key_id="k1")).key_generation is None
    seen = {first}
    for _ in range(3):
        await bump_generation(redis, orgs[0])
        assert await generation() not in seen
        seen.add(await generation())
    await redis.delete(generation_key(orgs[0]))
    assert await generation() not in seen
    assert 0 < await redis.pttl(generation_key(orgs[0])) <= GENERATION_MS
