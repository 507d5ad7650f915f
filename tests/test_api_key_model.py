"""Who a key may act as, and who may touch an owner: the rules of services/orgs.py over HTTP
(claims and membership modes), in the service under concurrency, and through the CLI."""

import asyncio
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from langgraph_sdk import get_client

from tenantgraph.errors import Conflict
from tenantgraph.scope import Principal, Role
from tenantgraph.services.orgs import Orgs

from .api_fixtures import ADMIN_TOKEN, mint, start_api_server

NS = ["memories"]


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def _new_org(url: str, owner: str) -> str:
    org = f"keys-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=url, headers=_bearer(ADMIN_TOKEN)) as admin:
        made = await admin.post("/orgs", json={"org_id": org, "owner": owner})
        assert made.status_code == 200, made.text
    return org


async def test_a_key_acts_as_its_creator_or_a_service_account(api_url, tenants):
    anna, org = tenants.a_admin.http, tenants.a_admin.org
    # Another person, the shared space, a bare prefix: none of them is the caller.
    for user_id in ("alice", "anna-else", "shared", "svc:"):
        refused = await anna.post(f"/orgs/{org}/keys", json={"user_id": user_id})
        assert refused.status_code == 403, (user_id, refused.text)
    own = await anna.post(f"/orgs/{org}/keys", json={"user_id": "anna", "role": "admin"})
    assert own.status_code == 200 and own.json()["user_id"] == "anna"
    default = await anna.post(f"/orgs/{org}/keys", json={})
    assert default.status_code == 200 and default.json()["user_id"] == "anna"
    # An admin's key is at most admin.
    assert (await anna.post(f"/orgs/{org}/keys", json={"role": "owner"})).status_code == 403
    svc = await anna.post(f"/orgs/{org}/keys", json={"user_id": "svc:ci", "role": "admin"})
    assert svc.status_code == 200 and svc.json()["user_id"] == "svc:ci"
    # A member creates no key, not even a service account's.
    member = await tenants.a_member.http.post(f"/orgs/{org}/keys", json={"user_id": "svc:x"})
    assert member.status_code == 403


async def test_reserved_names_are_never_person_ids(api_url, tenants):
    org = tenants.a_admin.org
    for sub in ("shared", "svc:ci"):
        async with httpx.AsyncClient(base_url=api_url, headers=_bearer(mint(org, sub))) as c:
            answer = await c.post("/threads/search", json={})
            assert answer.status_code == 401 and "reserved" in answer.json()["detail"], sub
        member = await tenants.a_admin.http.put(f"/orgs/{org}/members/{sub}", json={})
        assert member.status_code == 422, sub


async def test_a_service_account_reads_no_persons_private_items(api_url, tenants):
    alice, anna, org = tenants.a_member, tenants.a_admin, tenants.a_member.org
    await alice.sdk.store.put_item(NS, "secret", {"v": "alice"})
    thread = await alice.sdk.threads.create()
    await anna.sdk.store.put_item(["shared", "notes"], "k", {"v": "org"})
    made = await anna.http.post(f"/orgs/{org}/keys", json={"user_id": "svc:ci", "role": "admin"})
    svc = get_client(url=api_url, api_key=made.json()["key"])
    # A person with the same role reaches alice's thread (the rule under test is the service
    # account's, not the role's).
    assert (await anna.sdk.threads.get(thread["thread_id"]))["thread_id"] == thread["thread_id"]
    assert await svc.store.get_item(NS, "secret") is None
    assert (await svc.store.search_items(NS))["items"] == []
    assert (await svc.store.search_items(["shared"]))["items"][0]["value"] == {"v": "org"}
    assert thread["thread_id"] not in {t["thread_id"] for t in await svc.threads.search()}
    assert await svc.threads.count() == 0
    async with httpx.AsyncClient(base_url=api_url, headers={"X-Api-Key": made.json()["key"]}) as c:
        assert (await c.get(f"/threads/{thread['thread_id']}")).status_code == 404
        assert (await c.get("/store/users/alice/export")).status_code == 403
        assert (await c.delete("/store/users/alice")).status_code == 403
        own = await c.post("/threads", json={})
        assert own.json()["metadata"]["owner"] == "svc:ci"
    assert (await alice.sdk.store.get_item(NS, "secret"))["value"] == {"v": "alice"}


async def _owner_rules(url: str, org: str, headers) -> None:
    """The owner rules for org `org` (owner olga), `headers(user, role)` a caller's headers."""
    olga = httpx.AsyncClient(base_url=url, headers=headers("olga", "owner"))
    adam = httpx.AsyncClient(base_url=url, headers=headers("adam", "admin"))
    async with olga, adam:
        assert (await olga.put(f"/orgs/{org}/members/adam", json={"role": "admin"})).is_success
        olga_key = (await olga.post(f"/orgs/{org}/keys", json={"role": "owner"})).json()
        # An admin neither grants, demotes nor removes an owner, nor revokes an owner's key.
        for answer in (
            await adam.put(f"/orgs/{org}/members/nina", json={"role": "owner"}),
            await adam.put(f"/orgs/{org}/members/olga", json={"role": "member"}),
            await adam.delete(f"/orgs/{org}/members/olga"),
            await adam.delete(f"/orgs/{org}/keys/{olga_key['key_id']}"),
        ):
            assert answer.status_code == 403, answer.text
        # The last owner is kept, even by herself.
        for answer in (
            await olga.put(f"/orgs/{org}/members/olga", json={"role": "admin"}),
            await olga.delete(f"/orgs/{org}/members/olga"),
        ):
            assert answer.status_code == 409 and "last owner" in answer.json()["detail"]
        roles = {m["user_id"]: m["role"] for m in (await olga.get(f"/orgs/{org}/members")).json()}
        assert roles == {"olga": "owner", "adam": "admin"}
        # An owner grants an owner; then either may step down, not both.
        assert (await olga.put(f"/orgs/{org}/members/oscar", json={"role": "owner"})).is_success
        assert (await olga.put(f"/orgs/{org}/members/oscar", json={"role": "admin"})).is_success
        assert (await olga.delete(f"/orgs/{org}/members/oscar")).status_code == 204
        assert (await olga.delete(f"/orgs/{org}/keys/{olga_key['key_id']}")).status_code == 204


async def test_owner_protection_in_claims_mode(api_url):
    org = await _new_org(api_url, "olga")
    await _owner_rules(api_url, org, lambda user, role: _bearer(mint(org, user, role)))


@pytest.fixture(scope="module")
def membership_url(api_env, tmp_path_factory):
    """A server whose roles come from the memberships table (X-Org-Id names the org)."""
    server = start_api_server(
        tmp_path_factory.mktemp("membership"), TENANTGRAPH_ORG_MODE="membership", **api_env
    )
    yield server.url
    server.terminate()


async def test_owner_protection_in_membership_mode(membership_url):
    org = await _new_org(membership_url, "olga")
    # The token's role claim is ignored here: adam is an admin because olga made him one.
    await _owner_rules(
        membership_url, org, lambda user, _: _bearer(mint("x", user, "owner"), **{"X-Org-Id": org})
    )
    async with httpx.AsyncClient(
        base_url=membership_url, headers=_bearer(mint("x", "olga"), **{"X-Org-Id": org})
    ) as olga:
        assert (await olga.get(f"/orgs/{org}/members")).status_code == 200  # never locked out


async def test_concurrent_demotions_keep_one_owner(resources, org_ids):
    org, _ = org_ids
    orgs = Orgs(resources.db, resources.redis)
    await orgs.create_org(org, "Two owners", owner="o1")
    root = Principal(org, "o1", Role.OWNER)
    await orgs.set_member(root, "o2", Role.OWNER)
    for _ in range(5):
        results = await asyncio.gather(
            orgs.set_member(root, "o1", Role.ADMIN),
            orgs.set_member(root, "o2", Role.ADMIN),
            return_exceptions=True,
        )
        assert sum(isinstance(r, Conflict) for r in results) == 1, results
        owners = [m["user_id"] for m in await orgs.list_members(root) if m["role"] == "owner"]
        assert len(owners) == 1
        for user in ("o1", "o2"):
            await orgs.set_member(root, user, Role.OWNER)


def _cli(settings, api_env, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TENANTGRAPH_DATA_DIR": str(settings.data_dir), **api_env}
    return subprocess.run(
        [sys.executable, "-m", "tenantgraph.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_keeps_the_last_owner(settings, api_env, api_url):
    """The CLI is the operator: it may change any role, but never leaves an org ownerless."""
    org = f"cli-own-{uuid.uuid4().hex[:6]}"
    assert _cli(settings, api_env, "orgs", "create", org, "--owner", "root").returncode == 0
    for args in (("remove-member", org, "root"), ("set-member", org, "root", "--role", "admin")):
        refused = _cli(settings, api_env, "orgs", *args)
        assert refused.returncode == 1 and "last owner" in refused.stderr, refused.stderr
    refused = _cli(settings, api_env, "keys", "create", "--org", org, "--user", "shared")
    assert refused.returncode == 1 and "reserved" in refused.stderr
    made = _cli(
        settings, api_env, "keys", "create", "--org", org, "--user", "svc:nightly",
        "--scope", "runs:create", "--scope", "threads:read",
    )  # fmt: skip
    assert made.returncode == 0 and made.stdout.strip().startswith("tg_")
    listed = _cli(settings, api_env, "keys", "list", "--org", org).stdout
    assert "runs:create" in listed and "threads:read" in listed
    assert _cli(settings, api_env, "orgs", "delete", org, "--yes").returncode == 0
