"""Crons through langgraph-sdk: create, create_for_thread, search, count, update, delete."""

from __future__ import annotations

import httpx
import pytest

from .api_fixtures import caller
from .run_helpers import HI


async def test_cron_lifecycle(tenants):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    stateless = await sdk.crons.create(
        "agent", schedule="0 3 * * *", input=HI, metadata={"kind": "nightly"}
    )
    on_thread = await sdk.crons.create_for_thread(
        thread, "agent", schedule="*/5 * * * *", input=HI, metadata={"kind": "often"}
    )
    assert stateless["cron_id"] != on_thread["cron_id"]
    assert on_thread["thread_id"] == thread and stateless["thread_id"] is None
    assert stateless["schedule"] == "0 3 * * *" and stateless["next_run_date"]

    assert await sdk.crons.count() == 2
    assert await sdk.crons.count(thread_id=thread) == 1
    assert await sdk.crons.count(metadata={"kind": "nightly"}) == 1
    found = await sdk.crons.search(thread_id=thread)
    assert [c["cron_id"] for c in found] == [on_thread["cron_id"]]
    assert len(await sdk.crons.search(limit=1)) == 1
    assert len(await sdk.crons.search(limit=1, offset=1)) == 1
    assert await sdk.crons.search(offset=2) == []
    assert [c["cron_id"] for c in await sdk.crons.search(metadata={"kind": "nightly"})] == [
        stateless["cron_id"]
    ]

    updated = await sdk.crons.update(stateless["cron_id"], schedule="0 4 * * *", enabled=False)
    assert updated["schedule"] == "0 4 * * *" and updated["enabled"] is False
    assert [c["cron_id"] for c in await sdk.crons.search(enabled=False)] == [stateless["cron_id"]]

    await sdk.crons.delete(stateless["cron_id"])
    assert await sdk.crons.count() == 1
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await sdk.crons.delete(stateless["cron_id"])
    assert gone.value.response.status_code == 404
    await sdk.crons.delete(on_thread["cron_id"])
    assert await sdk.crons.count() == 0


async def test_invalid_schedule_is_refused(tenants):
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await tenants.a_member.sdk.crons.create("agent", schedule="every tuesday", input=HI)
    assert refused.value.response.status_code == 422  # as langgraph-api answers
    assert "Invalid cron schedule" in refused.value.response.text
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await tenants.a_member.sdk.crons.create(
            "agent", schedule="0 3 * * *", input=HI, timezone="Mars/Olympus"
        )
    assert refused.value.response.status_code == 422


async def test_crons_are_per_user_and_the_orgs_admins_see_them(api_url, tenants):
    sdk = tenants.a_member.sdk
    cron = await sdk.crons.create("agent", schedule="0 3 * * *", input=HI)
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    assert await carl.sdk.crons.count() == 0
    assert await carl.sdk.crons.search() == []
    with pytest.raises(httpx.HTTPStatusError) as hidden:
        await carl.sdk.crons.delete(cron["cron_id"])
    assert hidden.value.response.status_code == 404
    assert await tenants.b_member.sdk.crons.count() == 0
    admin_sees = await tenants.a_admin.sdk.crons.search()
    assert [c["cron_id"] for c in admin_sees] == [cron["cron_id"]]
    await sdk.crons.delete(cron["cron_id"])
    assert await tenants.a_admin.sdk.crons.count() == 0
