"""Default budgets fit people and their scripts; an operator sets one org's budget from the
CLI and the running server enforces it."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from .api_fixtures import ADMIN_TOKEN
from .test_cli import tenantgraph

HI = {"messages": [{"role": "user", "content": "hi"}]}


# Runs in flight at once: 100 waiting clients would each hold a Valkey connection of the
# server's pool of 64 (the resilience issue's stream multiplexing lifts that), so the
# evaluation runs 16 at a time; the budget sees all 100 within a few seconds all the same.
IN_FLIGHT = 16


async def test_the_defaults_admit_an_evaluation_of_100_runs_and_a_put_loop(tenants):
    member = tenants.a_member
    threads = [(await member.sdk.threads.create())["thread_id"] for _ in range(100)]
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def evaluate(thread: str) -> dict:
        async with slots:
            return await member.sdk.runs.wait(thread, "agent", input=HI)

    results = await asyncio.gather(*(evaluate(thread) for thread in threads))
    assert [r["messages"][-1]["content"] for r in results] == ["echo: hi"] * 100
    for i in range(1000):
        await member.sdk.store.put_item(("loop",), f"k{i}", {"i": i})
    found = await member.sdk.store.search_items(("loop",), limit=1000)
    assert len(found["items"]) == 1000


async def test_an_operator_sets_and_resets_one_orgs_run_budget(settings, api_env, tenants):
    member, other = tenants.a_member, tenants.b_member
    org = member.org
    thread = (await member.sdk.threads.create())["thread_id"]  # the org's first request
    tenantgraph(
        settings, api_env, "limits", "set", "--org", org, "--bucket", "user_runs", "--limit", "2"
    )
    shown = tenantgraph(settings, api_env, "limits", "show", "--org", org).stdout
    assert "user_runs" in shown and "org" in shown
    statuses = []
    for _ in range(3):
        response = await member.http.post(
            f"/threads/{thread}/runs", json={"assistant_id": "agent", "input": HI}
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    # Another org keeps the default.
    other_thread = (await other.sdk.threads.create())["thread_id"]
    for _ in range(3):
        await other.sdk.runs.create(other_thread, "agent", input=HI, multitask_strategy="enqueue")
    tenantgraph(settings, api_env, "limits", "reset", "--org", org, "--bucket", "user_runs")
    assert "default" in tenantgraph(settings, api_env, "limits", "show", "--org", org).stdout


async def test_org_admins_only_tighten_their_budgets_the_platform_admin_sets_any(api_url, tenants):
    admin, member = tenants.a_admin, tenants.a_member
    await member.sdk.threads.create()  # the org's first request creates it
    path = f"/orgs/{admin.org}/limits"
    budgets = (await admin.http.get(path)).json()
    assert budgets["user_runs"] == {"limit": 300, "window_seconds": 60, "source": "default"}
    assert (await member.http.get(path)).status_code == 403  # admins and owners only
    assert (await tenants.b_admin.http.get(path)).status_code == 404  # another org's

    looser = {"bucket": "user_runs", "limit": 1000, "window_seconds": 60}
    refused = await admin.http.put(path, json=looser)
    assert refused.status_code == 403 and "only tighten" in refused.json()["detail"]
    tighter = await admin.http.put(path, json={"bucket": "user_runs", "limit": 2})
    assert tighter.json()["user_runs"] == {"limit": 2, "window_seconds": 60, "source": "org"}
    thread = (await member.sdk.threads.create())["thread_id"]
    statuses = [
        (
            await member.http.post(
                f"/threads/{thread}/runs", json={"assistant_id": "agent", "input": HI}
            )
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    # Back to the default is looser than 2: not the org's to do; the platform admin may.
    assert (
        await admin.http.put(path, json={"bucket": "user_runs", "limit": None})
    ).status_code == 403
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as platform:
        reset = await platform.put(path, json={"bucket": "user_runs", "limit": None})
        assert reset.json()["user_runs"]["source"] == "default"
        raised = await platform.put(path, json=looser)
        assert raised.json()["user_runs"] == {"limit": 1000, "window_seconds": 60, "source": "org"}


async def test_store_quotas_are_set_per_org_tightened_by_its_admins(api_url, tenants):
    admin, member, other = tenants.a_admin, tenants.a_member, tenants.b_member
    await member.sdk.threads.create()  # the org's first request creates it
    path = f"/orgs/{admin.org}/limits"
    budgets = (await admin.http.get(path)).json()
    assert budgets["store_items"] == {"limit": None, "source": "default"}  # unlimited
    assert (await member.http.put(path, json={"quota": "store_items", "limit": 5})).status_code == (
        403
    )
    both = {"bucket": "user_runs", "quota": "store_items", "limit": 5}
    assert (await admin.http.put(path, json=both)).status_code == 422

    tighter = await admin.http.put(path, json={"quota": "store_items", "limit": 2})
    assert tighter.json()["store_items"] == {"limit": 2, "source": "org"}
    await member.sdk.store.put_item(("q",), "a", {"v": 1})
    await member.sdk.store.put_item(("q",), "b", {"v": 2})
    await member.sdk.store.put_item(("q",), "b", {"v": 3})  # a change, not a new item
    third = await member.http.put(
        "/store/items", json={"namespace": ["q"], "key": "c", "value": {}}
    )
    assert third.status_code == 413 and "quota" in third.json()["detail"]
    for i in range(3):  # another org keeps the default
        await other.sdk.store.put_item(("q",), f"k{i}", {"v": i})

    looser = await admin.http.put(path, json={"quota": "store_items", "limit": 3})
    assert looser.status_code == 403 and "only tighten" in looser.json()["detail"]
    unlimited = await admin.http.put(path, json={"quota": "store_items", "limit": None})
    assert unlimited.status_code == 403
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as platform:
        raised = await platform.put(path, json={"quota": "store_bytes", "limit": 10**12})
        assert raised.json()["store_bytes"] == {"limit": 10**12, "source": "org"}
        reset = await platform.put(path, json={"quota": "store_items", "limit": None})
        assert reset.json()["store_items"] == {"limit": None, "source": "default"}
    again = await member.http.put(
        "/store/items", json={"namespace": ["q"], "key": "c", "value": {}}
    )
    assert again.status_code == 204, again.text


async def test_an_operator_sets_and_resets_one_orgs_store_quota(settings, api_env, tenants):
    member = tenants.a_member
    org = member.org
    await member.sdk.store.put_item(("q",), "a", {"v": 1})  # the org's first request
    tenantgraph(
        settings, api_env, "limits", "set", "--org", org, "--quota", "store_items", "--limit", "1"
    )
    shown = tenantgraph(settings, api_env, "limits", "show", "--org", org).stdout
    assert re.search(r"store_items\s*│\s*1\s*│\s*-\s*│\s*org", shown), shown
    refused = await member.http.put(
        "/store/items", json={"namespace": ["q"], "key": "b", "value": {}}
    )
    assert refused.status_code == 413
    tenantgraph(settings, api_env, "limits", "reset", "--org", org, "--quota", "store_items")
    shown = tenantgraph(settings, api_env, "limits", "show", "--org", org).stdout
    assert re.search(r"store_items\s*│\s*unlimited\s*│\s*-\s*│\s*default", shown), shown
    admitted = await member.http.put(
        "/store/items", json={"namespace": ["q"], "key": "b", "value": {}}
    )
    assert admitted.status_code == 204


async def test_the_cron_cap_is_set_per_org_and_tightened_by_its_admins(api_url, tenants):
    """`crons_per_user` (100 by default) is a quota like the store's: an org's admins lower
    it for their org only; the operator may raise it."""
    admin, member, other = tenants.a_admin, tenants.a_member, tenants.b_member
    await member.sdk.threads.create()  # the org's first request creates it
    path = f"/orgs/{admin.org}/limits"
    budgets = (await admin.http.get(path)).json()
    assert budgets["crons_per_user"] == {"limit": 100, "source": "default"}
    tighter = await admin.http.put(path, json={"quota": "crons_per_user", "limit": 1})
    assert tighter.json()["crons_per_user"] == {"limit": 1, "source": "org"}
    await member.sdk.crons.create("agent", schedule="0 3 * * *", input=HI)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await member.sdk.crons.create("agent", schedule="0 4 * * *", input=HI)
    assert refused.value.response.status_code == 413
    assert "at most 1 crons" in refused.value.response.text
    for hour in (3, 4):  # another org keeps the default
        await other.sdk.crons.create("agent", schedule=f"0 {hour} * * *", input=HI)
    looser = await admin.http.put(path, json={"quota": "crons_per_user", "limit": 5})
    assert looser.status_code == 403
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as platform:
        raised = await platform.put(path, json={"quota": "crons_per_user", "limit": 5})
    assert raised.json()["crons_per_user"] == {"limit": 5, "source": "org"}
    await member.sdk.crons.create("agent", schedule="0 4 * * *", input=HI)
