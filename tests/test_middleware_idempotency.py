"""IdempotencyMiddleware over real HTTP (uvicorn + httpx), real Postgres and real Valkey."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.scope import Principal
from tenantgraph.services.idempotency import Idempotency
from tenantgraph.services.limits import OrgLimits
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.settings import EphemeralSettings

from .ephemeral_app import SideEffects, build_app, caller, create_orgs, serve, valkey_client


@pytest.fixture(scope="module")
async def redis(resources, settings):
    client = valkey_client(settings)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def effects():
    return SideEffects()


@pytest.fixture(scope="module")
async def server(resources, redis, effects):
    await create_orgs(resources.db, "org-x", "org-y")
    conf = EphemeralSettings(idempotency_max_body_bytes=4096)
    app = build_app(
        RateLimiter(redis, OrgLimits(resources.db).get, conf),
        Idempotency(resources.db, conf),
        effects,
    )
    async with serve(app) as url:
        yield url


@pytest.fixture
async def client(server, effects):
    effects.created.clear()
    effects.gate = None
    effects.entered.clear()
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        yield client


async def _seconds_left(resources, idem: str) -> float | None:
    """How long alice's (a member acting with a token) record for `idem` lives on, or None
    if there is none."""
    async with resources.db.tenant(Principal("org-x", "alice")) as conn:
        cur = await conn.execute(
            "SELECT extract(epoch FROM expires_at - now()) AS left FROM idempotency_records"
            " WHERE org_id = 'org-x' AND user_id = 'alice' AND role = 'member'"
            " AND credential = 'token' AND idem_key = %s",
            (idem,),
        )
        row = await cur.fetchone()
    return None if row is None else float(row["left"])


def key() -> str:
    return f"idem-{uuid.uuid4()}"


def post(client, path, headers, idem=None, **kwargs):
    if idem is not None:
        headers = {**headers, "Idempotency-Key": idem}
    return client.post(path, headers=headers, **kwargs)


async def test_a_retry_replays_the_identical_response_without_running_again(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/items", alice, k, json={"name": "x"})
    again = await post(client, "/items", alice, k, json={"name": "x"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(effects.created) == 1


async def test_the_same_key_with_a_different_request_is_422(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    assert (await post(client, "/items", alice, k, json={"name": "x"})).status_code == 201
    other_body = await post(client, "/items", alice, k, json={"name": "y"})
    assert other_body.status_code == 422
    assert "different request" in other_body.json()["detail"]
    other_path = await post(client, "/fail", alice, k, json={"name": "x"})
    assert other_path.status_code == 422
    assert len(effects.created) == 1


async def test_error_responses_are_stored_and_replayed(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/fail", alice, k, content=b"{}")
    again = await post(client, "/fail", alice, k, content=b"{}")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()
    assert len(effects.created) == 1


async def test_a_concurrent_duplicate_is_409_and_the_item_is_created_once(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    effects.gate = asyncio.Event()
    first = asyncio.create_task(post(client, "/items", alice, k, json={"name": "x"}))
    await asyncio.wait_for(effects.entered.wait(), 10)
    duplicates = await asyncio.gather(
        *(post(client, "/items", alice, k, json={"name": "x"}) for _ in range(20))
    )
    assert {d.status_code for d in duplicates} == {409}
    assert duplicates[0].json()["detail"].endswith("still in progress.")
    effects.gate.set()
    created = await first
    assert created.status_code == 201
    assert len(effects.created) == 1
    replay = await post(client, "/items", alice, k, json={"name": "x"})
    assert replay.status_code == 201 and replay.content == created.content


async def test_a_storm_of_identical_requests_runs_once(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    responses = await asyncio.gather(
        *(post(client, "/items", alice, k, json={"name": "x"}) for _ in range(50))
    )
    assert len(effects.created) == 1
    winners = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}
    assert len({r.content for r in winners}) == 1  # replays are identical to the first


async def test_two_orgs_and_two_users_using_one_key_each_get_their_own(client, effects):
    k = key()
    callers = [
        caller("org-x", "alice"),
        caller("org-y", "alice"),
        caller("org-x", "bob"),
    ]
    responses = [await post(client, "/items", c, k, json={"name": "x"}) for c in callers]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert len({r.json()["id"] for r in responses}) == 3
    assert [r.json()["org"] for r in responses] == ["org-x", "org-y", "org-x"]
    assert len(effects.created) == 3
    # Each caller's retry replays its own response, never another tenant's.
    for c, r in zip(callers, responses, strict=True):
        assert (await post(client, "/items", c, k, json={"name": "x"})).content == r.content


async def test_streams_are_not_stored_and_a_retry_points_at_the_first_run(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/stream", alice, k, content=b"{}")
    assert first.status_code == 200
    assert first.text.count("event: values") == 3
    again = await post(client, "/stream", alice, k, content=b"{}")
    assert again.status_code == 409
    assert again.headers["Content-Location"] == first.headers["Content-Location"]
    assert len(effects.created) == 1


async def test_an_oversized_request_is_413_and_does_not_run(client, effects):
    big = await post(client, "/items", caller("org-x", "alice"), key(), json={"name": "x" * 5000})
    assert big.status_code == 413
    assert effects.created == []


async def test_an_oversized_response_is_not_replayed_and_not_rerun(client, effects):
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/items", alice, k, json={"name": "x", "pad": 5000})
    assert first.status_code == 201 and len(first.content) > 5000
    again = await post(client, "/items", alice, k, json={"name": "x", "pad": 5000})
    assert again.status_code == 409
    assert "cannot be replayed" in again.json()["detail"]
    assert len(effects.created) == 1


async def test_a_503_frees_its_key_so_the_retry_runs(client, effects, resources):
    """An outage wrote nothing: the retry its Retry-After invites must run, not replay it."""
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/unavailable", alice, k, content=b"{}")
    assert first.status_code == 503 and first.headers["retry-after"]
    assert await _seconds_left(resources, k) is None, "the claim must be released"
    again = await post(client, "/unavailable", alice, k, content=b"{}")
    assert again.status_code == 503 and "idempotent-replayed" not in again.headers
    assert len(effects.created) == 2


async def test_a_request_that_crashed_frees_its_key(client, effects, resources):
    alice = caller("org-x", "alice")
    k = key()
    assert (await post(client, "/crash", alice, k, content=b"{}")).status_code == 500
    assert await _seconds_left(resources, k) is None, "the claim must be released"
    assert (await post(client, "/crash", alice, k, content=b"{}")).status_code == 500
    assert len(effects.created) == 2


async def test_stored_responses_expire_after_a_day(client, resources):
    k = key()
    await post(client, "/items", caller("org-x", "alice"), k, json={"name": "x"})
    left = await _seconds_left(resources, k)
    assert left is not None and 86_000 < left <= 86_400


async def test_requests_without_key_principal_or_unsafe_method_pass_through(client, effects):
    alice = caller("org-x", "alice")
    for _ in range(2):
        assert (await post(client, "/items", alice, json={"name": "x"})).status_code == 201
    assert (await post(client, "/items", {}, key(), json={"name": "x"})).status_code == 201
    assert (await post(client, "/items", {}, key(), json={"name": "x"})).status_code == 201
    assert len(effects.created) == 4
    get = await client.get("/ping", headers={**alice, "Idempotency-Key": key()})
    assert get.status_code == 200 and "Idempotent-Replayed" not in get.headers


async def test_an_unusable_key_is_400(client, effects):
    alice = caller("org-x", "alice")
    bad = await post(client, "/items", alice, "x" * 256, json={"name": "x"})
    assert bad.status_code == 400
    assert effects.created == []


def test_principal_is_only_taken_from_scope_state():
    """Guard for the contract with the auth middleware (see api/identity.py)."""
    from tenantgraph.api.identity import Identity, request_principal

    identity = Identity(Principal("org-x", "alice"))
    assert request_principal({"type": "http", "state": {"identity": identity}}) == Principal(
        "org-x", "alice"
    )
    assert request_principal({"type": "http", "state": {}}) is None
    with pytest.raises(TypeError):
        request_principal({"type": "http", "state": {"identity": Principal("org-x", "alice")}})


async def test_an_expired_record_is_claimed_anew_and_swept(client, effects, resources):
    alice = caller("org-x", "alice")
    k = key()
    first = await post(client, "/items", alice, k, json={"name": "x"})
    async with resources.db.tenant(Principal("org-x", "alice")) as conn:
        await conn.execute(
            "UPDATE idempotency_records SET expires_at = now() - interval '1 second'"
            " WHERE org_id = 'org-x' AND idem_key = %s",
            (k,),
        )
    again = await post(client, "/items", alice, k, json={"name": "x"})
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert len(effects.created) == 2

    other = key()
    await post(client, "/items", alice, other, json={"name": "x"})
    async with resources.db.tenant(Principal("org-x", "alice")) as conn:
        await conn.execute(
            "UPDATE idempotency_records SET expires_at = now() - interval '1 second'"
            " WHERE org_id = 'org-x' AND idem_key = %s",
            (other,),
        )
    assert await StoreSweeper(resources.db).sweep_idempotency_records() >= 1
    assert await _seconds_left(resources, other) is None
    assert await _seconds_left(resources, k) is not None  # the live one stays
