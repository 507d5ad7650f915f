"""Threads through langgraph-sdk."""

import uuid

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError

from .api_fixtures import caller


async def test_create_with_chosen_id_if_exists_and_owner_stamp(tenants):
    sdk = tenants.a_member.sdk
    chosen = str(uuid.uuid4())
    thread = await sdk.threads.create(thread_id=chosen, metadata={"topic": "t", "owner": "mallory"})
    assert thread["thread_id"] == chosen and thread["status"] == "idle"
    assert thread["metadata"] == {"topic": "t", "owner": "alice"}
    assert thread["values"] is None and thread["interrupts"] == {}
    with pytest.raises(ConflictError):
        await sdk.threads.create(thread_id=chosen)
    same = await sdk.threads.create(thread_id=chosen, if_exists="do_nothing")
    assert same["created_at"] == thread["created_at"]


async def test_patch_merges_metadata_and_keeps_the_owner(tenants):
    sdk = tenants.a_member.sdk
    thread = await sdk.threads.create(metadata={"a": 1})
    patched = await sdk.threads.update(thread["thread_id"], metadata={"b": 2, "owner": "eve"})
    assert patched["metadata"] == {"a": 1, "b": 2, "owner": "alice"}
    assert await sdk.threads.update(thread["thread_id"], metadata={}, return_minimal=True) is None


async def test_search_and_count_with_filters_and_pagination(tenants):
    sdk = tenants.a_member.sdk
    tag = uuid.uuid4().hex
    made = [await sdk.threads.create(metadata={"tag": tag, "i": i}) for i in range(4)]
    found = await sdk.threads.search(metadata={"tag": tag})
    assert [t["metadata"]["i"] for t in found] == [3, 2, 1, 0]
    page = await sdk.threads.search(
        metadata={"tag": tag}, limit=2, offset=1, sort_by="created_at", sort_order="asc"
    )
    assert [t["metadata"]["i"] for t in page] == [1, 2]
    assert await sdk.threads.search(metadata={"tag": tag}, status="busy") == []
    ids = await sdk.threads.search(ids=[made[0]["thread_id"], made[2]["thread_id"]])
    assert {t["metadata"]["i"] for t in ids} == {0, 2}
    slim = await sdk.threads.search(metadata={"tag": tag}, select=["thread_id", "status"])
    assert [set(t) for t in slim] == [{"thread_id", "status"}] * 4
    assert await sdk.threads.count(metadata={"tag": tag}) == 4
    assert await sdk.threads.count(metadata={"tag": tag}, status="idle") == 4


async def test_admin_sees_members_threads_other_members_do_not(api_url, tenants):
    tag = uuid.uuid4().hex
    mine = await tenants.a_member.sdk.threads.create(metadata={"tag": tag})
    assert await tenants.a_admin.sdk.threads.count(metadata={"tag": tag}) == 1
    assert (await tenants.a_admin.sdk.threads.get(mine["thread_id"]))["metadata"]["tag"] == tag
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    assert await carl.sdk.threads.count(metadata={"tag": tag}) == 0
    assert await carl.sdk.threads.search(metadata={"tag": tag}) == []
    with pytest.raises(NotFoundError):
        await carl.sdk.threads.get(mine["thread_id"])


async def test_copy_and_delete(tenants):
    sdk = tenants.a_member.sdk
    source = await sdk.threads.create(metadata={"x": 1})
    copied = await sdk.threads.copy(source["thread_id"])
    assert copied["thread_id"] != source["thread_id"]
    assert copied["metadata"] == {"x": 1, "owner": "alice"}
    await sdk.threads.delete(source["thread_id"])
    with pytest.raises(NotFoundError):
        await sdk.threads.get(source["thread_id"])
    assert (await sdk.threads.get(copied["thread_id"]))["thread_id"] == copied["thread_id"]
    with pytest.raises(NotFoundError):
        await sdk.threads.copy(source["thread_id"])
