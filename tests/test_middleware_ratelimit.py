"""RateLimitMiddleware over real HTTP (uvicorn + httpx), real Valkey and Postgres."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.scope import Principal
from tenantgraph.services.limits import OrgLimits
from tenantgraph.settings import Limit, RateLimits

from .ephemeral_app import (
    caller,
    create_orgs,
    serve_budgeted,
)

LIMIT = 40


@pytest.fixture(scope="module")
async def server(resources, settings):
    async with serve_budgeted(resources, settings) as url:
        yield url


@pytest.fixture
async def client(server):
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as client:
        yield client


@pytest.fixture
async def orgs(resources, org_ids):
    """Two orgs; the first has its user bucket overridden to LIMIT requests a day."""
    await create_orgs(resources.db, *org_ids)
    admin = Principal(org_ids[0], "admin", role="owner")
    await OrgLimits(resources.db).set(
        admin, Bucket.USER_REQUESTS, Limit(limit=LIMIT, window_seconds=86_400)
    )
    return org_ids


async def test_500_concurrent_requests_admit_exactly_the_limit(client, orgs):
    responses = await asyncio.gather(
        *(client.get("/ping", headers=caller(orgs[0], "alice")) for _ in range(500))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == LIMIT
    assert statuses.count(429) == 500 - LIMIT

    denied = next(r for r in responses if r.status_code == 429)
    assert denied.json() == {"detail": "Rate limit exceeded (user_requests); retry later."}
    assert int(denied.headers["Retry-After"]) >= 1
    assert denied.headers["RateLimit-Limit"] == str(LIMIT)
    assert denied.headers["RateLimit-Remaining"] == "0"
    assert int(denied.headers["RateLimit-Reset"]) > 0
    assert f'{LIMIT};w=86400;comment="user_requests"' in denied.headers["RateLimit-Policy"]

    admitted = [r for r in responses if r.status_code == 200]
    assert sorted(int(r.headers["RateLimit-Remaining"]) for r in admitted) == list(range(LIMIT))
    assert all("Retry-After" not in r.headers for r in admitted)


async def test_one_orgs_burst_leaves_another_orgs_budget_untouched(client, orgs):
    burst = await asyncio.gather(
        *(client.get("/ping", headers=caller(orgs[0], "alice")) for _ in range(2 * LIMIT))
    )
    assert [r.status_code for r in burst].count(429) == LIMIT
    # Same user id, other org: the default per-user bucket (the tightest) is untouched.
    default = RateLimits().user_requests.limit
    other = await client.get("/ping", headers=caller(orgs[1], "alice"))
    assert other.status_code == 200
    assert other.headers["RateLimit-Limit"] == str(default)
    assert other.headers["RateLimit-Remaining"] == str(default - 1)
    # And another user of the burst org still has their own bucket.
    bob = await client.get("/ping", headers=caller(orgs[0], "bob"))
    assert bob.status_code == 200


async def test_runs_spend_their_own_budget_and_get_the_same_429(client, resources, orgs):
    admin = Principal(orgs[1], "admin", role="owner")
    await OrgLimits(resources.db).set(admin, Bucket.USER_RUNS, Limit(limit=3, window_seconds=60))
    alice = caller(orgs[1], "alice")
    runs = [await client.post("/runs", headers=alice) for _ in range(4)]
    assert [r.status_code for r in runs] == [201, 201, 201, 429]
    assert runs[-1].json() == {"detail": "Rate limit exceeded (user_runs); retry later."}
    assert runs[-1].headers["RateLimit-Limit"] == "3"
    assert int(runs[-1].headers["Retry-After"]) >= 1
    # The request budget is separate: alice's requests still pass.
    assert (await client.get("/ping", headers=alice)).status_code == 200


async def test_unauthenticated_requests_are_not_counted(client):
    response = await client.get("/ping")
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers
