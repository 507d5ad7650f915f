"""Long-term memory over HTTP through langgraph-sdk: the LangGraph store API, per user."""

import uuid

import httpx
import pytest
from langgraph_sdk.errors import PermissionDeniedError, UnprocessableEntityError


def _ns(*labels: str) -> tuple[str, ...]:
    return ("t" + uuid.uuid4().hex[:8], *labels)


async def test_put_get_delete_round_trip(tenants):
    sdk = tenants.a_member.sdk
    ns = _ns("memories")
    assert await sdk.store.put_item(ns, "k1", {"text": "hello", "n": 1}) is None
    item = await sdk.store.get_item(ns, "k1")
    assert item["namespace"] == list(ns) and item["key"] == "k1"
    assert item["value"] == {"text": "hello", "n": 1}
    assert item["created_at"] and item["updated_at"]
    await sdk.store.put_item(ns, "k1", {"text": "changed"})
    assert (await sdk.store.get_item(ns, "k1"))["value"] == {"text": "changed"}
    await sdk.store.delete_item(ns, "k1")
    assert await sdk.store.get_item(ns, "k1") is None


async def test_search_filters_compare_numbers_as_numbers(tenants):
    sdk = tenants.a_member.sdk
    ns = _ns("scores")
    for n in (2, 9, 10, 100):
        await sdk.store.put_item(ns, f"k{n}", {"n": n, "kind": "even" if n % 2 == 0 else "odd"})
    found = await sdk.store.search_items(ns, filter={"n": {"$gt": 9}}, limit=10)
    assert sorted(i["value"]["n"] for i in found["items"]) == [10, 100]
    found = await sdk.store.search_items(ns, filter={"kind": "odd"})
    assert [i["value"]["n"] for i in found["items"]] == [9]
    found = await sdk.store.search_items(
        ns, filter={"n": {"$gte": 2, "$lt": 10}, "kind": {"$ne": "odd"}}
    )
    assert [i["value"]["n"] for i in found["items"]] == [2]
    page = await sdk.store.search_items(ns, limit=2, offset=1)
    assert len(page["items"]) == 2


async def test_prefix_search_is_boundary_safe(tenants):
    sdk = tenants.a_member.sdk
    root = "t" + uuid.uuid4().hex[:8]
    await sdk.store.put_item((root, "u1"), "k", {"who": "u1"})
    await sdk.store.put_item((root, "u10"), "k", {"who": "u10"})
    found = await sdk.store.search_items((root, "u1"))
    assert [i["value"]["who"] for i in found["items"]] == ["u1"]


async def test_list_namespaces_with_prefix_suffix_depth_and_paging(tenants):
    sdk = tenants.a_member.sdk
    root = "t" + uuid.uuid4().hex[:8]
    for path in (("a", "x"), ("a", "y"), ("b", "x"), ("b", "y", "z")):
        await sdk.store.put_item((root, *path), "k", {"v": 1})
    listed = await sdk.store.list_namespaces(prefix=[root])
    assert sorted(map(tuple, listed["namespaces"])) == [
        (root, "a", "x"),
        (root, "a", "y"),
        (root, "b", "x"),
        (root, "b", "y", "z"),
    ]
    by_suffix = await sdk.store.list_namespaces(prefix=[root], suffix=["x"])
    assert sorted(map(tuple, by_suffix["namespaces"])) == [(root, "a", "x"), (root, "b", "x")]
    shallow = await sdk.store.list_namespaces(prefix=[root], max_depth=2)
    assert sorted(map(tuple, shallow["namespaces"])) == [(root, "a"), (root, "b")]
    paged = await sdk.store.list_namespaces(prefix=[root], limit=1, offset=1)
    assert len(paged["namespaces"]) == 1


async def test_two_users_same_namespace_and_key_each_keep_their_own(tenants):
    ns = ("memories", "profile")
    key = "k-" + uuid.uuid4().hex[:8]
    await tenants.a_member.sdk.store.put_item(ns, key, {"owner": "alice"})
    await tenants.a_admin.sdk.store.put_item(ns, key, {"owner": "anna"})
    await tenants.b_member.sdk.store.put_item(ns, key, {"owner": "bob"})
    assert (await tenants.a_member.sdk.store.get_item(ns, key))["value"] == {"owner": "alice"}
    assert (await tenants.a_admin.sdk.store.get_item(ns, key))["value"] == {"owner": "anna"}
    assert (await tenants.b_member.sdk.store.get_item(ns, key))["value"] == {"owner": "bob"}
    assert await tenants.b_admin.sdk.store.get_item(ns, key) is None
    await tenants.a_admin.sdk.store.delete_item(ns, key)
    assert (await tenants.a_member.sdk.store.get_item(ns, key))["value"] == {"owner": "alice"}


async def test_shared_space_members_read_admins_write(tenants):
    ns = ("shared", "t" + uuid.uuid4().hex[:8], "policies")
    with pytest.raises(PermissionDeniedError):
        await tenants.a_member.sdk.store.put_item(ns, "p", {"rule": "member wrote"})
    await tenants.a_admin.sdk.store.put_item(ns, "p", {"rule": "be kind"})
    assert (await tenants.a_member.sdk.store.get_item(ns, "p"))["value"] == {"rule": "be kind"}
    found = await tenants.a_member.sdk.store.search_items(ns[:2])
    assert [i["key"] for i in found["items"]] == ["p"]
    with pytest.raises(PermissionDeniedError):
        await tenants.a_member.sdk.store.delete_item(ns, "p")
    assert await tenants.b_admin.sdk.store.get_item(ns, "p") is None
    assert (await tenants.a_member.sdk.store.get_item(ns, "p"))["value"] == {"rule": "be kind"}


async def test_bad_store_input_is_422(tenants):
    http = tenants.a_member.http
    bad_label = await http.put(
        "/store/items", json={"namespace": ["a", ""], "key": "k", "value": {}}
    )
    assert bad_label.status_code == 422
    bad_value = await http.put("/store/items", json={"namespace": ["a"], "key": "k", "value": 3})
    assert bad_value.status_code == 422 and "value" in bad_value.json()["detail"]
    bad_filter = await http.post(
        "/store/items/search", json={"namespace_prefix": ["a"], "filter": {"n": {"$regex": "x"}}}
    )
    assert bad_filter.status_code == 422
    with pytest.raises(UnprocessableEntityError):
        await tenants.a_member.sdk.store.list_namespaces(max_depth=0)
    missing_key = await http.get("/store/items", params={"namespace": "a"})
    assert missing_key.status_code == 422


async def test_usage_export_and_erasure(api_url, tenants):
    member, admin = tenants.a_member, tenants.a_admin
    ns = _ns("notes")
    for i in range(3):
        await member.sdk.store.put_item(ns, f"k{i}", {"i": i})
    usage = (await member.http.get("/store/usage")).json()
    assert usage["items"] >= 3 and usage["bytes"] > 0
    exported = await member.http.get(f"/store/users/{member.user}/export")
    lines = [line for line in exported.text.splitlines() if line]
    assert exported.status_code == 200 and len(lines) == 3
    assert (await member.http.get(f"/store/users/{admin.user}/export")).status_code == 403
    by_admin = await admin.http.get(f"/store/users/{member.user}/export")
    assert len([line for line in by_admin.text.splitlines() if line]) == 3
    foreign = await tenants.b_admin.http.get(f"/store/users/{member.user}/export")
    assert foreign.status_code == 200 and foreign.text == ""
    erased = await admin.http.delete(f"/store/users/{member.user}")
    assert erased.json() == {"deleted": 3, "feedback_deleted": 0}
    assert await member.sdk.store.get_item(ns, "k0") is None
    assert (await member.http.delete("/store/org")).status_code == 403
    async with httpx.AsyncClient(base_url=api_url) as anonymous:
        assert (await anonymous.get("/store/usage")).status_code == 401
