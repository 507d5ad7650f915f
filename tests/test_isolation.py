"""The isolation matrix: every route, attacked from the other org and by another user.

Each row names a route with placeholders for a victim's object. For every attacker the
answer must equal the answer for an id that does not exist (no existence oracle), and the
victim's objects must be unchanged afterwards. New routes join the ROUTES table.
"""

from __future__ import annotations

import uuid

import pytest

from .api_fixtures import caller

# (label, method, path, body). {thread}, {assistant}, {org}, {key} are the victim's.
ROUTES = [
    ("thread get", "GET", "/threads/{thread}", None),
    ("thread patch", "PATCH", "/threads/{thread}", {"metadata": {"pwned": True}}),
    ("thread copy", "POST", "/threads/{thread}/copy", None),
    ("thread delete", "DELETE", "/threads/{thread}", None),
    ("assistant get", "GET", "/assistants/{assistant}", None),
    ("assistant patch", "PATCH", "/assistants/{assistant}", {"name": "pwned"}),
    ("assistant versions", "POST", "/assistants/{assistant}/versions", {}),
    ("assistant latest", "POST", "/assistants/{assistant}/latest", {"version": 1}),
    ("assistant delete", "DELETE", "/assistants/{assistant}", None),
    ("org get", "GET", "/orgs/{org}", None),
    ("org members", "GET", "/orgs/{org}/members", None),
    ("org member set", "PUT", "/orgs/{org}/members/mallory", {"role": "admin"}),
    ("org keys", "GET", "/orgs/{org}/keys", None),
    ("org key create", "POST", "/orgs/{org}/keys", {"role": "member"}),
    ("org key revoke", "DELETE", "/orgs/{org}/keys/{key}", None),
    ("run create", "POST", "/threads/{thread}/runs", {"assistant_id": "agent", "input": {}}),
    ("run wait", "POST", "/threads/{thread}/runs/wait", {"assistant_id": "agent", "input": {}}),
    ("run stream", "POST", "/threads/{thread}/runs/stream", {"assistant_id": "agent"}),
    ("run list", "GET", "/threads/{thread}/runs", None),
    ("run get", "GET", "/threads/{thread}/runs/{run}", None),
    ("run get stateless", "GET", "/runs/{run}", None),
    ("run join", "GET", "/threads/{thread}/runs/{run}/join", None),
    ("run join stateless", "GET", "/runs/{run}/join", None),
    ("run join stream", "GET", "/threads/{thread}/runs/{run}/stream", None),
    ("run join stream stateless", "GET", "/runs/{run}/stream", None),
    ("run cancel", "POST", "/threads/{thread}/runs/{run}/cancel", None),
    ("run cancel wait", "POST", "/threads/{thread}/runs/{run}/cancel?wait=true", None),
    ("run delete", "DELETE", "/threads/{thread}/runs/{run}", None),
    ("state get", "GET", "/threads/{thread}/state", None),
    ("state at checkpoint", "GET", "/threads/{thread}/state/{checkpoint}", None),
    ("state post checkpoint", "POST", "/threads/{thread}/state/checkpoint", {"checkpoint": {}}),
    ("state update", "POST", "/threads/{thread}/state", {"values": {"messages": []}}),
    ("history get", "GET", "/threads/{thread}/history", None),
    ("history post", "POST", "/threads/{thread}/history", {"limit": 10}),
    (
        "cron create on thread",
        "POST",
        "/threads/{thread}/runs/crons",
        {"assistant_id": "agent", "schedule": "0 3 * * *"},
    ),
    ("cron get", "GET", "/runs/crons/{cron}", None),
    ("cron patch", "PATCH", "/runs/crons/{cron}", {"schedule": "0 4 * * *"}),
    ("cron delete", "DELETE", "/runs/crons/{cron}", None),
]
SEARCHES = [
    ("POST", "/threads/search", "thread"),
    ("POST", "/threads/count", "thread"),
    ("POST", "/assistants/search", "assistant"),
    ("POST", "/assistants/count", "assistant"),
    ("POST", "/runs/crons/search", "cron"),
    ("POST", "/runs/crons/count", "cron"),
]


@pytest.fixture
async def victim(tenants):
    """Objects of org A: alice's thread, an assistant, and an owner's API key."""
    tag = uuid.uuid4().hex
    thread = await tenants.a_member.sdk.threads.create(metadata={"tag": tag})
    assistant = await tenants.a_admin.sdk.assistants.create(
        "agent", metadata={"tag": tag}, name="victim"
    )
    key = await tenants.a_admin.http.post(f"/orgs/{tenants.a_admin.org}/keys", json={})
    sdk = tenants.a_member.sdk
    said = {"messages": [{"role": "user", "content": "hi"}]}
    run = await sdk.runs.create(thread["thread_id"], "agent", input=said, stream_resumable=True)
    await sdk.runs.join(thread["thread_id"], run["run_id"])
    cron = await sdk.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="0 3 * * *", input=said, metadata={"tag": tag}
    )
    state = await sdk.threads.get_state(thread["thread_id"])
    return {
        "tag": tag,
        "thread": thread["thread_id"],
        "assistant": assistant["assistant_id"],
        "org": tenants.a_admin.org,
        "key": key.json()["key_id"],
        "run": run["run_id"],
        "cron": cron["cron_id"],
        "checkpoint": state["checkpoint"]["checkpoint_id"],
    }


def _missing(ids: dict) -> dict:
    return {
        **ids,
        "thread": str(uuid.uuid4()),
        "assistant": str(uuid.uuid4()),
        "org": f"nowhere-{uuid.uuid4().hex[:6]}",
        "key": str(uuid.uuid4()),
        "run": str(uuid.uuid4()),
        "cron": str(uuid.uuid4()),
        "checkpoint": str(uuid.uuid4()),
    }


def _normalise(text: str, ids: dict) -> str:
    for name in ("thread", "assistant", "org", "key", "run", "cron", "checkpoint"):
        text = text.replace(str(ids[name]), f"<{name}>")
    return text


async def _attack(attacker, victim_ids) -> None:
    missing = _missing(victim_ids)
    for label, method, path, body in ROUTES:
        kwargs = {"json": body} if body is not None else {}
        foreign = await attacker.http.request(method, path.format(**victim_ids), **kwargs)
        absent = await attacker.http.request(method, path.format(**missing), **kwargs)
        assert foreign.status_code == absent.status_code, (label, foreign.text, absent.text)
        assert foreign.status_code in (403, 404), (label, foreign.status_code, foreign.text)
        assert _normalise(foreign.text, victim_ids) == _normalise(absent.text, missing), label
    for method, path, kind in SEARCHES:
        found = await attacker.http.request(
            method, path, json={"metadata": {"tag": victim_ids["tag"]}}
        )
        assert found.status_code == 200
        assert found.json() in ([], 0), (path, kind, found.json())


async def _assert_untouched(tenants, victim_ids) -> None:
    thread = await tenants.a_member.sdk.threads.get(victim_ids["thread"])
    # A run stamps graph_id and assistant_id; nothing else may change.
    assert thread["metadata"] == {
        "tag": victim_ids["tag"],
        "owner": "alice",
        "graph_id": "agent",
        "assistant_id": thread["metadata"]["assistant_id"],
    }
    assistant = await tenants.a_admin.sdk.assistants.get(victim_ids["assistant"])
    assert assistant["name"] == "victim" and assistant["version"] == 1
    keys = (await tenants.a_admin.http.get(f"/orgs/{victim_ids['org']}/keys")).json()
    assert [k["revoked_at"] for k in keys if k["key_id"] == victim_ids["key"]] == [None]
    members = (await tenants.a_admin.http.get(f"/orgs/{victim_ids['org']}/members")).json()
    assert "mallory" not in {m["user_id"] for m in members}
    sdk = tenants.a_member.sdk
    run = await sdk.runs.get(victim_ids["thread"], victim_ids["run"])
    assert run["status"] == "success"
    assert [r["run_id"] for r in await sdk.runs.list(victim_ids["thread"])] == [run["run_id"]]
    assert (await sdk.crons.search(thread_id=victim_ids["thread"]))[0]["schedule"] == "0 3 * * *"
    state = await sdk.threads.get_state(victim_ids["thread"])
    assert state["checkpoint"]["checkpoint_id"] == victim_ids["checkpoint"]


@pytest.mark.parametrize("attacker", ["b_member", "b_admin"])
async def test_other_org_cannot_reach_anything(tenants, victim, attacker):
    await _attack(getattr(tenants, attacker), victim)
    await _assert_untouched(tenants, victim)


async def test_another_member_of_the_same_org_cannot_reach_a_thread(api_url, tenants, victim):
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    for method, path in (("GET", "/threads/{thread}"), ("DELETE", "/threads/{thread}")):
        foreign = await carl.http.request(method, path.format(**victim))
        absent = await carl.http.request(method, path.format(**_missing(victim)))
        assert foreign.status_code == absent.status_code == 404
    patched = await carl.http.patch(f"/threads/{victim['thread']}", json={"metadata": {"x": 1}})
    assert patched.status_code == 404
    assert (await carl.http.post(f"/threads/{victim['thread']}/copy")).status_code == 404
    assert await carl.sdk.threads.search(metadata={"tag": victim["tag"]}) == []
    assert await carl.sdk.threads.count(metadata={"tag": victim["tag"]}) == 0
    # Carl reads the org's assistants: they are shared by every member.
    assert (await carl.sdk.assistants.get(victim["assistant"]))["name"] == "victim"
    await _assert_untouched(tenants, victim)


async def test_same_ids_in_two_orgs_are_two_objects(tenants):
    chosen = str(uuid.uuid4())
    a = await tenants.a_admin.sdk.assistants.create("agent", assistant_id=chosen, name="A")
    b = await tenants.b_admin.sdk.assistants.create("agent", assistant_id=chosen, name="B")
    assert a["assistant_id"] == b["assistant_id"] == chosen
    assert (await tenants.a_member.sdk.assistants.get(chosen))["name"] == "A"
    assert (await tenants.b_member.sdk.assistants.get(chosen))["name"] == "B"
    thread_id = str(uuid.uuid4())
    await tenants.a_member.sdk.threads.create(thread_id=thread_id, metadata={"side": "a"})
    await tenants.b_member.sdk.threads.create(thread_id=thread_id, metadata={"side": "b"})
    assert (await tenants.b_member.sdk.threads.get(thread_id))["metadata"]["side"] == "b"
    await tenants.b_member.sdk.threads.delete(thread_id)
    assert (await tenants.a_member.sdk.threads.get(thread_id))["metadata"]["side"] == "a"


# --- long-term memory: the same namespace and key, attacked from every other principal --


@pytest.mark.parametrize("attacker", ["a_admin", "b_member", "b_admin"])
async def test_store_items_belong_to_their_writer(tenants, attacker):
    victim = tenants.a_member
    root = "iso" + uuid.uuid4().hex[:8]
    ns = (root, "memories")
    await victim.sdk.store.put_item(ns, "secret", {"text": "alice's"})
    intruder = getattr(tenants, attacker)
    http = intruder.http
    assert await intruder.sdk.store.get_item(ns, "secret") is None
    for body in (
        {"namespace_prefix": [root]},
        {"namespace_prefix": [root], "filter": {"text": "alice's"}},
        {"namespace_prefix": [], "query": "alice", "limit": 100},
    ):
        found = (await http.post("/store/items/search", json=body)).json()
        assert all(i["value"] != {"text": "alice's"} for i in found["items"]), body
    listed = (await http.post("/store/namespaces", json={"prefix": [root]})).json()
    assert listed == {"namespaces": []}
    assert (
        await http.request("DELETE", "/store/items", json={"namespace": list(ns), "key": "secret"})
    ).status_code == 204
    await intruder.sdk.store.put_item(ns, "secret", {"text": "overwritten"})
    assert (await victim.sdk.store.get_item(ns, "secret"))["value"] == {"text": "alice's"}
    # The GDPR paths: an admin of another org exports/erases *their* org's user of that name.
    exported = await http.get(f"/store/users/{victim.user}/export")
    assert exported.status_code in (200, 403)
    assert "alice's" not in exported.text or intruder.org == victim.org
    if intruder.org != victim.org:
        await http.delete(f"/store/users/{victim.user}")
        await http.delete("/store/org")
        assert (await victim.sdk.store.get_item(ns, "secret"))["value"] == {"text": "alice's"}
