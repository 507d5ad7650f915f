"""An idempotent replay belongs to its requester — org, user, role and credential — and
is stored before the first response ends, so an immediate retry is a replay."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .ephemeral_app import caller, create_orgs, serve_budgeted

ORG = "idem-scope-org"


@pytest.fixture(scope="module")
async def server(resources, settings):
    await create_orgs(resources.db, ORG)
    async with serve_budgeted(resources, settings) as url:
        yield url


async def _post(client: httpx.AsyncClient, headers: dict[str, str], idem: str) -> httpx.Response:
    return await client.post(
        "/items", json={"name": "x"}, headers={**headers, "Idempotency-Key": idem}
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (caller(ORG, "alice", role="admin"), caller(ORG, "alice", role="member")),
        (caller(ORG, "alice", key=uuid.uuid4()), caller(ORG, "alice", key=uuid.uuid4())),
        (caller(ORG, "alice", key=uuid.uuid4()), caller(ORG, "alice")),
    ],
    ids=["two roles", "two API keys", "an API key and a token"],
)
async def test_a_replay_never_crosses_roles_or_credentials(server, first, second):
    idem = f"idem-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=server) as client:
        original = await _post(client, first, idem)
        other = await _post(client, second, idem)
        again = await _post(client, first, idem)
    assert original.status_code == other.status_code == 201
    assert "idempotent-replayed" not in other.headers  # ran anew: its own item
    assert other.json()["id"] != original.json()["id"]
    # Positive control: the first requester's retry is the stored answer.
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == original.json()


async def test_a_retry_the_moment_the_answer_arrived_is_a_replay(server):
    async with httpx.AsyncClient(base_url=server) as client:
        for _ in range(20):
            idem = f"idem-{uuid.uuid4()}"
            original = await _post(client, caller(ORG, "bob"), idem)
            retry = await _post(client, caller(ORG, "bob"), idem)
            assert retry.status_code == 201, retry.text  # never 409 "still in progress"
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json() == original.json()
