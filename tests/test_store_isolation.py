"""Adversarial isolation: two orgs, two users each (same user ids in both orgs), every
store operation. Nothing of another tenant is ever returned or changed."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp

from tenantgraph.scope import Role
from tenantgraph.services.tenant_store import ForbiddenNamespace, TenantStore
from tenantgraph.stores import vectors

from .store_support import admin_execute, create_org, store

USERS = {"alice": Role.ADMIN, "bob": Role.MEMBER}
# Every principal writes the same namespaces and keys, including ones naming another user.
OWN_NAMESPACES = [("memories",), ("memories", "alice"), ("memories", "bob"), ("prefs", "x")]


def _secret(org: str, user: str) -> str:
    return f"secret of {user} in {org}"


@pytest.fixture
def vector_path(request, monkeypatch) -> str:
    """How vector searches read the world's vectors: exactly (a small set: the default),
    through the HNSW index (every owner promoted at its first write), or scoring vectors
    written below the bound and searched above it. The forced paths are for the world's
    vectors: a one-word text among many can be unreachable in an HNSW graph, which is why
    real searches take it only above the exact bound."""
    path = getattr(request, "param", "exact")
    if path == "hnsw":
        monkeypatch.setattr(vectors, "EXACT_MAX", 0)
    return path


@pytest.fixture
async def world(resources, org_ids, vector_path, monkeypatch) -> dict[tuple[str, str], TenantStore]:
    stores = {}
    for org in org_ids:
        await create_org(resources, org)
        for user, role in USERS.items():
            s = store(resources, org, user, role)
            stores[org, user] = s
            await s.abatch(
                [
                    PutOp(ns, "k", {"text": _secret(org, user), "org": org, "user": user})
                    for ns in OWN_NAMESPACES
                ]
            )
        await stores[org, "alice"].aput(
            ("shared", "notes"), "k", {"text": f"shared secret in {org}", "org": org}
        )
    if vector_path == "unindexed":  # written below the bound, searched above it
        monkeypatch.setattr(vectors, "EXACT_MAX", 0)
    return stores


def _expected(org: str, user: str) -> set[tuple[tuple[str, ...], str]]:
    return {(ns, _secret(org, user)) for ns in OWN_NAMESPACES} | {
        (("shared", "notes"), f"shared secret in {org}")
    }


PRINCIPALS = [(o, u) for o in (0, 1) for u in USERS]


@pytest.mark.parametrize("vector_path", ["exact", "hnsw", "unindexed"], indirect=True)
@pytest.mark.parametrize(("org_index", "user"), PRINCIPALS)
async def test_every_read_returns_only_own_items_and_own_org_shared(
    world, org_ids, org_index, user
):
    org = org_ids[org_index]
    s = world[org, user]
    expected = _expected(org, user)
    for ns in OWN_NAMESPACES:
        assert (await s.aget(ns, "k")).value["text"] == _secret(org, user)
    assert (await s.aget(("shared", "notes"), "k")).value["org"] == org

    plain = await s.asearch((), limit=100)
    assert {(i.namespace, i.value["text"]) for i in plain} == expected
    semantic = await s.asearch((), query="secret", limit=100)
    assert {(i.namespace, i.value["text"]) for i in semantic} == expected
    for other_org, other_user in itertools.product(org_ids, USERS):
        if (other_org, other_user) != (org, user):
            foreign = {"org": other_org, "user": other_user}
            assert await s.asearch((), filter=foreign, limit=100) == []
            assert await s.asearch((), query="secret", filter=foreign, limit=100) == []

    assert set(await s.alist_namespaces(limit=100)) == {ns for ns, _ in expected}
    got, found, names = await s.abatch(
        [
            GetOp(("memories",), "k"),
            SearchOp(("memories",), limit=100),
            ListNamespacesOp(limit=100),
        ]
    )
    assert got.value["user"] == user and got.value["org"] == org
    assert {(i.value["org"], i.value["user"]) for i in found} == {(org, user)}
    assert set(names) == {ns for ns, _ in expected}


@pytest.mark.parametrize(("org_index", "user"), PRINCIPALS)
async def test_writes_and_deletes_change_only_the_writers_items(world, org_ids, org_index, user):
    org = org_ids[org_index]
    s = world[org, user]
    await s.abatch([PutOp(ns, "k", {"text": "overwritten"}) for ns in OWN_NAMESPACES])
    await s.adelete(("memories",), "k")
    await s.abatch([PutOp(("memories", "bob"), "k", None), PutOp(("new",), "k", {"text": "n"})])
    for (other_org, other_user), other in world.items():
        if (other_org, other_user) == (org, user):
            continue
        for ns in OWN_NAMESPACES:
            assert (await other.aget(ns, "k")).value["text"] == _secret(other_org, other_user)
        assert await other.aget(("new",), "k") is None
        assert ("new",) not in await other.alist_namespaces()
    assert await s.aget(("memories",), "k") is None
    assert (await s.aget(("prefs", "x"), "k")).value["text"] == "overwritten"


async def test_rows_carry_the_writers_org_and_owner(world, resources, org_ids):
    rows = await admin_execute(
        resources,
        "SELECT org_id, owner_id, value->>'org', value->>'user' FROM tenantgraph.store_items"
        " WHERE org_id = ANY(%s) AND NOT namespace[1] = 'shared'",
        (list(org_ids),),
    )
    assert len(rows) == 2 * len(USERS) * len(OWN_NAMESPACES)
    assert all(
        org == value_org and owner == value_user for org, owner, value_org, value_user in rows
    )


@pytest.mark.parametrize("org_index", [0, 1])
async def test_members_read_the_shared_space_and_only_admins_write_it(world, org_ids, org_index):
    org = org_ids[org_index]
    bob, alice = world[org, "bob"], world[org, "alice"]
    with pytest.raises(ForbiddenNamespace):
        await bob.aput(("shared", "notes"), "k", {"text": "defaced"})
    with pytest.raises(ForbiddenNamespace):
        await bob.adelete(("shared", "notes"), "k")
    with pytest.raises(ForbiddenNamespace):
        await bob.abatch([PutOp(("mine",), "k", {"text": "x"}), PutOp(("shared",), "k", None)])
    assert await bob.aget(("mine",), "k") is None, "a rejected batch writes nothing"
    assert (await bob.aget(("shared", "notes"), "k")).value["org"] == org
    await alice.aput(("shared", "notes"), "k2", {"text": "by admin"})
    assert (await bob.aget(("shared", "notes"), "k2")).value["text"] == "by admin"
    assert {i.key for i in await bob.asearch(("shared",), limit=10)} == {"k", "k2"}
    other = world[org_ids[1 - org_index], "alice"]
    assert await other.aget(("shared", "notes"), "k2") is None


async def test_prefix_u1_never_returns_u10_across_users(world, org_ids):
    alice, bob = world[org_ids[0], "alice"], world[org_ids[0], "bob"]
    await alice.aput(("u1",), "k", {"text": "one"})
    await alice.aput(("u10",), "k", {"text": "ten"})
    await bob.aput(("u1",), "k", {"text": "bob one"})
    assert [i.value["text"] for i in await alice.asearch(("u1",))] == ["one"]
    assert [i.value["text"] for i in await alice.asearch(("u1",), query="one")] == ["one"]
    assert await alice.alist_namespaces(prefix=("u1",)) == [("u1",)]
    assert await bob.alist_namespaces(prefix=("u1",)) == [("u1",)]
    assert [i.value["text"] for i in await bob.asearch(("u1",))] == ["bob one"]


def test_the_shared_owner_id_cannot_be_a_principal(resources, org_ids):
    with pytest.raises(ValueError):
        store(resources, org_ids[0], "shared")


async def test_concurrent_calls_of_different_users_share_groups_but_not_items(world, org_ids):
    """Reads and writes of one org are grouped into shared transactions: still per user."""

    async def round_trip(org: str, user: str, n: int) -> None:
        s = world[org, user]
        await s.aput(("burst",), f"k{n}", {"text": f"{org}/{user}/{n}"})
        got = await s.aget(("burst",), f"k{n}")
        assert got.value["text"] == f"{org}/{user}/{n}"
        found = await s.asearch(("burst",), limit=100)
        assert {i.value["text"].rsplit("/", 1)[0] for i in found} == {f"{org}/{user}"}

    await asyncio.gather(
        *(round_trip(org, user, n) for org in org_ids for user in USERS for n in range(10))
    )
    for s in world.values():
        assert len(await s.asearch(("burst",), limit=100)) == 10
