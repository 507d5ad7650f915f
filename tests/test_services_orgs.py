"""The org use cases: creating an org with its owner and first key is all or nothing."""

import pytest

from tenantgraph.errors import Conflict
from tenantgraph.scope import Principal, PrincipalKind, Role
from tenantgraph.services.orgs import API_KEY_PREFIX, Orgs
from tenantgraph.stores import orgs as org_store

from .store_support import admin_execute


async def _rows(resources, org: str) -> dict[str, int]:
    """The org's rows per table, counted as the superuser (behind RLS)."""
    counts = {}
    for table in ("orgs", "memberships", "api_keys"):
        rows = await admin_execute(
            resources, f"SELECT count(*) FROM tenantgraph.{table} WHERE org_id = %s", (org,)
        )
        counts[table] = rows[0][0]
    return counts


async def test_a_failing_key_insert_leaves_no_org_and_no_owner(resources, org_ids, monkeypatch):
    org, _ = org_ids
    orgs = Orgs(resources.db, resources.redis)
    ran: list[str] = []

    async def failing_insert(conn, principal, **fields):
        # The org and the owner's membership were written on this connection already.
        ran.extend(row["user_id"] for row in await org_store.list_members(conn, principal))
        raise RuntimeError("key insert failed")

    monkeypatch.setattr(org_store, "insert_api_key", failing_insert)
    with pytest.raises(RuntimeError, match="key insert failed"):
        await orgs.create_org_with_key(org, "Atomic", owner="root", key_name="first")
    assert ran == ["root"]
    assert await _rows(resources, org) == {"orgs": 0, "memberships": 0, "api_keys": 0}

    monkeypatch.undo()
    made, secret = await orgs.create_org_with_key(org, "Atomic", owner="root", key_name="first")
    assert made["org_id"] == org and secret.startswith(API_KEY_PREFIX)
    assert await _rows(resources, org) == {"orgs": 1, "memberships": 1, "api_keys": 1}
    principal, _ = await orgs.resolve_api_key(secret)
    assert principal == Principal(org, "root", Role.OWNER, PrincipalKind.API_KEY)
    assert await orgs.get_member_role(Principal(org, "root")) == Role.OWNER
    with pytest.raises(Conflict):
        await orgs.create_org_with_key(org, "Again", owner="root", key_name="second")
    assert await _rows(resources, org) == {"orgs": 1, "memberships": 1, "api_keys": 1}
