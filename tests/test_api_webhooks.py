"""Webhooks through langgraph-sdk, as a user sets them: a run's `webhook` is POSTed the run,
signed with the org's secret, when the run ends; bad destinations are refused at creation.

The test server may send to 127.0.0.2 only (api_fixtures.py), where tests/receiver.py
listens; every other loopback or private address is refused as on a default server.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import psycopg
import pytest

from tenantgraph.secret_key import SecretKey

from .receiver import HANG, receiver, verify
from .run_helpers import slow
from .servers import SECRET_KEY

HI = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def hook():
    async with receiver() as state:
        yield state


async def _secret(admin) -> str:
    """A new signing secret of the admin's org: the one answer that shows it."""
    answer = await admin.http.post(f"/orgs/{admin.org}/webhooks/secret")
    assert answer.status_code == 200, answer.text
    return answer.json()["secret"]


async def test_a_run_that_ends_posts_its_signed_webhook(tenants, hook):
    sdk = tenants.a_member.sdk
    old, other = await _secret(tenants.a_admin), await _secret(tenants.b_admin)
    thread = await sdk.threads.create()
    output = await sdk.runs.wait(thread["thread_id"], "agent", input=HI, webhook=hook.url + "/h")
    [received] = await hook.wait_for(1)
    payload = received.json()
    [run] = await sdk.runs.list(thread["thread_id"])
    assert payload["run_id"] == run["run_id"] and payload["thread_id"] == thread["thread_id"]
    assert payload["status"] == "success"
    assert payload["values"] == output
    assert payload["values"]["messages"][-1]["content"] == "echo: hi"
    assert payload["kwargs"]["webhook"] == hook.url + "/h"
    for stamp in ("run_started_at", "run_ended_at", "webhook_sent_at"):
        assert payload[stamp]
    assert "error" not in payload and "owner_id" not in payload
    # Signed with org A's secret, over the exact body, a moment ago; org B's does not verify.
    assert verify(old, received)
    assert not verify(other, received)
    stamp = int(received.headers["x-tenantgraph-signature"].split(",")[0].removeprefix("t="))
    assert abs(time.time() - stamp) < 300
    # After a rotation, the next webhook verifies with the new secret only.
    new = await _secret(tenants.a_admin)
    assert new != old
    await sdk.runs.wait(None, "agent", input=HI, webhook=hook.url)
    [_, second] = await hook.wait_for(2)
    assert verify(new, second) and not verify(old, second)
    assert second.json()["status"] == "success" and second.json()["values"]["messages"]


async def test_a_failing_receiver_gets_retries(tenants, hook):
    hook.answers = [500, 500]
    await tenants.a_member.sdk.runs.wait(None, "agent", input=HI, webhook=hook.url)
    received = await hook.wait_for(3)
    assert len({r.body for r in received}) == 1  # the same delivery, three times
    assert received[0].json()["status"] == "success"


async def test_a_hanging_receiver_does_not_delay_the_runs_end(tenants, hook):
    """The run's end is recorded, and `wait` answers, while its webhook's POST is
    still unanswered."""
    hook.answers = [HANG]
    sdk = tenants.a_member.sdk
    thread = await sdk.threads.create()
    waited = asyncio.ensure_future(
        sdk.runs.wait(thread["thread_id"], "agent", input=HI, webhook=hook.url)
    )
    await hook.wait_for(1)
    output = await asyncio.wait_for(waited, 30)
    assert output["messages"][-1]["content"] == "echo: hi"
    assert not hook.release.is_set()
    [run] = await sdk.runs.list(thread["thread_id"])
    assert run["status"] == "success"
    hook.release.set()


async def test_a_failed_run_sends_its_error(tenants, hook):
    sdk = tenants.a_member.sdk
    thread = await sdk.threads.create()
    config = slow(1, 0, fail=True)
    await sdk.runs.wait(
        thread["thread_id"], "slow", input={}, config=config, webhook=hook.url, raise_error=False
    )
    [received] = await hook.wait_for(1)
    assert received.json()["status"] == "error"
    assert received.json()["error"] == {"error": "ValueError", "message": "told to fail"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "ftp://example.com/",
        "http://example.com/" + "a" * 5000,
    ],
)
async def test_private_addresses_other_schemes_and_long_urls_are_refused(tenants, url):
    sdk = tenants.a_member.sdk
    thread = await sdk.threads.create()
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sdk.runs.create(thread["thread_id"], "agent", input=HI, webhook=url)
    assert refused.value.response.status_code == 422, refused.value.response.text
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sdk.crons.create("agent", schedule="0 3 * * *", webhook=url)
    assert refused.value.response.status_code == 422
    assert await sdk.runs.list(thread["thread_id"]) == []
    assert await sdk.crons.count() == 0


async def test_the_orgs_allow_list_refuses_other_hosts(tenants, hook):
    admin, sdk = tenants.a_admin, tenants.a_member.sdk
    path = f"/orgs/{admin.org}/webhooks"
    assert (await admin.http.get(path)).json()["allowed_hosts"] is None
    member_put = await tenants.a_member.http.put(path, json={"allowed_hosts": []})
    assert member_put.status_code == 403
    put = await admin.http.put(path, json={"allowed_hosts": ["*.Example.com", "hooks.acme.io"]})
    assert put.status_code == 200 and put.json()["allowed_hosts"] == [
        "*.example.com",
        "hooks.acme.io",
    ]
    thread = await sdk.threads.create()
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sdk.runs.create(thread["thread_id"], "agent", input=HI, webhook=hook.url)
    assert refused.value.response.status_code == 422
    assert refused.value.response.json()["detail"] == "Webhook domain not allowed"
    bad = await admin.http.put(path, json={"allowed_hosts": ["https://x.com/path"]})
    assert bad.status_code == 422
    # Another org's list is its own: org B still reaches the receiver.
    await tenants.b_member.sdk.runs.wait(None, "agent", input=HI, webhook=hook.url)
    await hook.wait_for(1)
    assert (await admin.http.put(path, json={"allowed_hosts": ["127.0.0.2"]})).status_code == 200
    await sdk.runs.wait(thread["thread_id"], "agent", input=HI, webhook=hook.url)
    await hook.wait_for(2)


async def test_a_crons_runs_send_its_webhook(tenants, hook):
    sdk = tenants.a_member.sdk
    secret = await _secret(tenants.a_admin)
    thread = await sdk.threads.create()
    cron = await sdk.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="* * * * * *", input=HI, webhook=hook.url
    )
    try:
        [received, *_] = await hook.wait_for(1)
    finally:
        await sdk.crons.delete(cron["cron_id"])
    assert received.json()["metadata"]["cron_id"] == cron["cron_id"]
    assert received.json()["status"] == "success"
    assert verify(secret, received)


async def _stored_secret(api_env, org: str) -> str:
    async with await psycopg.AsyncConnection.connect(api_env["DATABASE_URL"]) as conn:
        cur = await conn.execute(
            "SELECT secret FROM tenantgraph.org_webhooks WHERE org_id = %s", (org,)
        )
        return (await cur.fetchone())[0]


async def test_the_secret_is_shown_once_and_stored_encrypted(api_env, tenants, hook):
    admin = tenants.a_admin
    path = f"/orgs/{admin.org}/webhooks/secret"
    first = (await admin.http.get(path)).json()  # the org's first use creates it
    assert first["secret"].startswith("whsec_") and first["rotated_at"]
    assert (await admin.http.get(path)).json() == {"rotated_at": first["rotated_at"]}
    stored = await _stored_secret(api_env, admin.org)
    assert first["secret"] not in stored
    assert SecretKey(SECRET_KEY).decrypt("webhook-secrets", stored) == first["secret"]
    rotated = (await admin.http.post(path)).json()
    assert rotated["secret"] != first["secret"]
    assert (await admin.http.get(path)).json() == {"rotated_at": rotated["rotated_at"]}
    await tenants.a_member.sdk.runs.wait(None, "agent", input=HI, webhook=hook.url)
    [received] = await hook.wait_for(1)
    assert verify(rotated["secret"], received) and not verify(first["secret"], received)


async def test_a_secret_stored_readable_is_encrypted_and_still_signs(api_env, tenants, hook):
    """A row written before secrets were encrypted at rest keeps signing with its secret,
    and is stored encrypted from its first use on."""
    admin = tenants.a_admin
    readable = "whsec_stored-before-encryption"
    await admin.http.get(f"/orgs/{admin.org}/webhooks")  # the org's row
    async with await psycopg.AsyncConnection.connect(api_env["DATABASE_URL"]) as conn:
        await conn.execute(
            "UPDATE tenantgraph.org_webhooks SET secret = %s WHERE org_id = %s",
            (readable, admin.org),
        )
        await conn.commit()
    await tenants.a_member.sdk.runs.wait(None, "agent", input=HI, webhook=hook.url)
    [received] = await hook.wait_for(1)
    assert verify(readable, received)
    stored = await _stored_secret(api_env, admin.org)
    assert SecretKey(SECRET_KEY).decrypt("webhook-secrets", stored) == readable
