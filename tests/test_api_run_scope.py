"""Config injection over HTTP: a run whose config names another tenant still runs as its
caller. The memory example graph writes and reads the store under the run's principal;
both orgs use the same assistant id, so only the scope separates their items."""

from __future__ import annotations

import uuid

import pytest

from .api_fixtures import caller
from .run_helpers import slow


def _say(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_forged_scope_in_config_is_ignored(api_url, tenants):
    alice, bob = tenants.a_member, tenants.b_member
    carl = caller(api_url, alice.org, "carl", "member")
    assistant_id = str(uuid.uuid4())
    for admin in (tenants.a_admin, tenants.b_admin):
        await admin.sdk.assistants.create("memory", assistant_id=assistant_id)
    as_bob = {
        "configurable": {
            "org_id": bob.org,
            "user_id": bob.user,
            "langgraph_auth_user_id": bob.user,
            "assistant_id": str(uuid.uuid4()),
        }
    }

    said = await alice.sdk.runs.wait(None, assistant_id, input=_say("a1"), config=as_bob)
    assert said["messages"][-1]["content"] == "alice told me 1: ['a1']"
    run = await alice.sdk.runs.create(None, assistant_id, input=_say("a2"), config=as_bob)
    configurable = run["kwargs"]["config"]["configurable"]
    assert {k: configurable[k] for k in as_bob["configurable"]} == {
        "org_id": alice.org,
        "user_id": alice.user,
        "langgraph_auth_user_id": alice.user,
        "assistant_id": assistant_id,
    }
    await alice.http.get(f"/runs/{run['run_id']}/join")

    # Bob's memories hold none of alice's, though she named him; his forged scope fails too.
    as_alice = {"configurable": {"org_id": alice.org, "user_id": alice.user}}
    said = await bob.sdk.runs.wait(None, assistant_id, input=_say("b1"), config=as_alice)
    assert said["messages"][-1]["content"] == "bob told me 1: ['b1']"
    said = await carl.sdk.runs.wait(None, assistant_id, input=_say("c1"), config=as_alice)
    assert said["messages"][-1]["content"] == "carl told me 1: ['c1']"
    said = await alice.sdk.runs.wait(None, assistant_id, input=_say("a3"))
    assert said["messages"][-1]["content"] == "alice told me 3: ['a1', 'a2', 'a3']"

    # The store API agrees: each caller sees their own items under the same namespace.
    namespace = [assistant_id, "memories"]
    for who, texts in ((alice, ["a1", "a2", "a3"]), (bob, ["b1"]), (carl, ["c1"])):
        items = await who.sdk.store.search_items(namespace, limit=100)
        assert sorted(i["value"]["text"] for i in items["items"]) == texts
        assert {i["value"]["user_id"] for i in items["items"]} == {who.user}


@pytest.mark.parametrize("attacker", ["b_member", "b_admin", "carl"])
async def test_cancel_many_by_foreign_run_ids(api_url, tenants, attacker):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, "slow", input={}, config=slow(1, 0), after_seconds=3600)
    intruder = (
        caller(api_url, tenants.a_member.org, "carl", "member")
        if attacker == "carl"
        else getattr(tenants, attacker)
    )
    for body in ({"run_ids": [run["run_id"]]}, {"thread_id": thread}):
        refused = await intruder.http.post("/runs/cancel", json=body)
        assert refused.status_code == 404, refused.text
    await intruder.http.post("/runs/cancel", json={"status": "pending"})
    assert (await sdk.runs.get(thread, run["run_id"]))["status"] == "pending"
    await sdk.runs.cancel(thread, run["run_id"])
