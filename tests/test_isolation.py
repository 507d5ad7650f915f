"""The isolation matrix: every route of the app, attacked from the other org and by another
user of the same org, with a real victim object and an owner who reaches it.

Each row names a route with the app's own path parameters, filled with a victim's object.
For every attacker the answer must equal the answer for an id that does not exist (no
existence oracle), the victim's objects must be unchanged afterwards, and the owner must
reach the same row. `test_every_route_is_in_the_matrix` reads the app's route table, so a
new route fails the suite until it joins a table here.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from a2a.client.errors import A2AClientJSONRPCError
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.types import Message, MessageSendParams, TaskIdParams, TaskQueryParams

from .api_fixtures import ADMIN_TOKEN, caller
from .route_table import anonymous, app_routes
from .test_mcp import mcp_session

HI = {"messages": [{"role": "user", "content": "hi"}]}
A2A_HI = {"role": "user", "parts": [{"kind": "text", "text": "hi"}], "messageId": "m-hi"}
SLACK = {"team_id": "T-victim", "signing_secret": "victim-signing", "bot_token": "xoxb-victim"}
MEMBER, ADMIN = "member", "admin"
# What another member of the victim's org gets: the same 404 as a missing id (the object is
# alice's), the object itself (assistants are shared by the org), or 403 (role refused).
HIDDEN, SHARED, REFUSED = "hidden", "shared", "refused"

# (label, method, path, body, role needed, same-org member's answer). The ids in braces are
# the victim's; {user_id} is mallory, a member of the victim's org, and {pending_run_id} a
# run scheduled an hour ahead (only a pending run can be cancelled).
ROUTES: list[tuple[str, str, str, Any, str, str]] = [
    ("thread get", "GET", "/threads/{thread_id}", None, MEMBER, HIDDEN),
    ("thread patch", "PATCH", "/threads/{thread_id}", {"metadata": {"pwned": 1}}, MEMBER, HIDDEN),
    ("thread copy", "POST", "/threads/{thread_id}/copy", None, MEMBER, HIDDEN),
    ("assistant get", "GET", "/assistants/{assistant_id}", None, MEMBER, SHARED),
    ("assistant graph", "GET", "/assistants/{assistant_id}/graph", None, MEMBER, SHARED),
    ("assistant schemas", "GET", "/assistants/{assistant_id}/schemas", None, MEMBER, SHARED),
    ("assistant subgraphs", "GET", "/assistants/{assistant_id}/subgraphs", None, MEMBER, SHARED),
    (
        "assistant subgraphs ns",
        "GET",
        "/assistants/{assistant_id}/subgraphs/{namespace}",
        None,
        MEMBER,
        SHARED,
    ),
    ("assistant versions", "POST", "/assistants/{assistant_id}/versions", {}, MEMBER, SHARED),
    ("assistant patch", "PATCH", "/assistants/{assistant_id}", {"name": "pwned"}, ADMIN, REFUSED),
    (
        "assistant latest",
        "POST",
        "/assistants/{assistant_id}/latest",
        {"version": 1},
        ADMIN,
        REFUSED,
    ),
    ("org get", "GET", "/orgs/{org_id}", None, MEMBER, SHARED),
    ("org members", "GET", "/orgs/{org_id}/members", None, ADMIN, REFUSED),
    (
        "org member set",
        "PUT",
        "/orgs/{org_id}/members/{user_id}",
        {"role": "admin"},
        ADMIN,
        REFUSED,
    ),
    ("org keys", "GET", "/orgs/{org_id}/keys", None, ADMIN, REFUSED),
    ("org key create", "POST", "/orgs/{org_id}/keys", {"role": "member"}, ADMIN, REFUSED),
    ("org limits", "GET", "/orgs/{org_id}/limits", None, ADMIN, REFUSED),
    (
        "org limit set",  # a tightening, which the org's own admin may do
        "PUT",
        "/orgs/{org_id}/limits",
        {"bucket": "api_key_requests", "limit": 2999},
        ADMIN,
        REFUSED,
    ),
    ("org webhooks", "GET", "/orgs/{org_id}/webhooks", None, ADMIN, REFUSED),
    (
        "org webhooks set",
        "PUT",
        "/orgs/{org_id}/webhooks",
        {"allowed_hosts": ["pwned.example"]},
        ADMIN,
        REFUSED,
    ),
    ("org webhook secret", "GET", "/orgs/{org_id}/webhooks/secret", None, ADMIN, REFUSED),
    ("org webhook rotate", "POST", "/orgs/{org_id}/webhooks/secret", None, ADMIN, REFUSED),
    ("org channels", "GET", "/orgs/{org_id}/channels", None, ADMIN, REFUSED),
    (
        "org channel create",
        "POST",
        "/orgs/{org_id}/channels",
        {"type": "web", "name": "{tag}", "assistant_id": "agent"},
        ADMIN,
        REFUSED,
    ),
    ("org channel get", "GET", "/orgs/{org_id}/channels/{channel_id}", None, ADMIN, REFUSED),
    (
        "org channel patch",
        "PATCH",
        "/orgs/{org_id}/channels/{channel_id}",
        {"name": "victim"},
        ADMIN,
        REFUSED,
    ),
    (
        "thread escalation",
        "POST",
        "/threads/{thread_id}/escalation",
        {"status": "agent", "reason": "pwned"},
        MEMBER,
        HIDDEN,
    ),
    ("run create", "POST", "/threads/{thread_id}/runs", {"assistant_id": "agent"}, MEMBER, HIDDEN),
    (
        "run wait",
        "POST",
        "/threads/{thread_id}/runs/wait",
        {"assistant_id": "agent"},
        MEMBER,
        HIDDEN,
    ),
    (
        "run stream",
        "POST",
        "/threads/{thread_id}/runs/stream",
        {"assistant_id": "agent"},
        MEMBER,
        HIDDEN,
    ),
    ("run list", "GET", "/threads/{thread_id}/runs", None, MEMBER, HIDDEN),
    ("run get", "GET", "/threads/{thread_id}/runs/{run_id}", None, MEMBER, HIDDEN),
    ("run get stateless", "GET", "/runs/{run_id}", None, MEMBER, HIDDEN),
    ("run join", "GET", "/threads/{thread_id}/runs/{run_id}/join", None, MEMBER, HIDDEN),
    ("run join stateless", "GET", "/runs/{run_id}/join", None, MEMBER, HIDDEN),
    ("run join stream", "GET", "/threads/{thread_id}/runs/{run_id}/stream", None, MEMBER, HIDDEN),
    ("run join stream stateless", "GET", "/runs/{run_id}/stream", None, MEMBER, HIDDEN),
    (
        "run cancel",
        "POST",
        "/threads/{pending_thread_id}/runs/{pending_run_id}/cancel",
        None,
        MEMBER,
        HIDDEN,
    ),
    ("state get", "GET", "/threads/{thread_id}/state", None, MEMBER, HIDDEN),
    (
        "state at checkpoint",
        "GET",
        "/threads/{thread_id}/state/{checkpoint_id}",
        None,
        MEMBER,
        HIDDEN,
    ),
    (
        "state post checkpoint",
        "POST",
        "/threads/{thread_id}/state/checkpoint",
        {"checkpoint": {}},
        MEMBER,
        HIDDEN,
    ),
    (
        "state update",
        "POST",
        "/threads/{thread_id}/state",
        {"values": {"messages": []}},
        MEMBER,
        HIDDEN,
    ),
    ("history get", "GET", "/threads/{thread_id}/history", None, MEMBER, HIDDEN),
    ("history post", "POST", "/threads/{thread_id}/history", {"limit": 10}, MEMBER, HIDDEN),
    (
        "cron create on thread",
        "POST",
        "/threads/{thread_id}/runs/crons",
        {"assistant_id": "agent", "schedule": "0 3 * * *"},
        MEMBER,
        HIDDEN,
    ),
    ("cron get", "GET", "/runs/crons/{cron_id}", None, MEMBER, HIDDEN),
    ("feedback", "POST", "/runs/{run_id}/feedback", {"key": "pwned", "score": 1}, MEMBER, HIDDEN),
    (
        "feedback on thread",
        "POST",
        "/threads/{thread_id}/runs/{run_id}/feedback",
        {"key": "pwned"},
        MEMBER,
        HIDDEN,
    ),
    ("experiment get", "GET", "/experiments/{experiment_id}", None, MEMBER, SHARED),
    (
        "experiment patch",
        "PATCH",
        "/experiments/{experiment_id}",
        {"description": "pwned"},
        ADMIN,
        REFUSED,
    ),
    ("experiment results", "GET", "/experiments/{experiment_id}/results", None, ADMIN, REFUSED),
    ("cron patch", "PATCH", "/runs/crons/{cron_id}", {"schedule": "0 4 * * *"}, MEMBER, HIDDEN),
    ("a2a card", "GET", "/a2a/{assistant_id}/.well-known/agent-card.json", None, MEMBER, SHARED),
    (
        "a2a card by query",
        "GET",
        "/.well-known/agent-card.json?assistant_id={assistant_id}",
        None,
        MEMBER,
        SHARED,
    ),
    # Destructive rows last: the owner's positive control runs the table in order.
    (
        "experiment status",
        "POST",
        "/experiments/{experiment_id}/status",
        {"status": "running"},
        ADMIN,
        REFUSED,
    ),
    ("cron delete", "DELETE", "/runs/crons/{cron_id}", None, MEMBER, HIDDEN),
    ("run delete", "DELETE", "/threads/{thread_id}/runs/{run_id}", None, MEMBER, HIDDEN),
    ("org key revoke", "DELETE", "/orgs/{org_id}/keys/{key_id}", None, ADMIN, REFUSED),
    ("org member delete", "DELETE", "/orgs/{org_id}/members/{user_id}", None, ADMIN, REFUSED),
    ("org channel delete", "DELETE", "/orgs/{org_id}/channels/{channel_id}", None, ADMIN, REFUSED),
    ("assistant delete", "DELETE", "/assistants/{assistant_id}", None, ADMIN, REFUSED),
    ("thread delete", "DELETE", "/threads/{thread_id}", None, MEMBER, HIDDEN),
]
# Routes whose only victim id is an assistant named in the body: another org's assistant
# UUID must answer like a missing one, never start a run or a cron on it.
FOREIGN_ASSISTANT: list[tuple[str, str, str, Any]] = [
    ("stateless run", "POST", "/runs", {"assistant_id": "{assistant_id}", "input": HI}),
    ("stateless wait", "POST", "/runs/wait", {"assistant_id": "{assistant_id}", "input": HI}),
    ("stateless stream", "POST", "/runs/stream", {"assistant_id": "{assistant_id}"}),
    ("batch", "POST", "/runs/batch", [{"assistant_id": "{assistant_id}", "input": HI}]),
    ("cron", "POST", "/runs/crons", {"assistant_id": "{assistant_id}", "schedule": "0 3 * * *"}),
    ("own thread run", "POST", "/threads/{own_thread}/runs", {"assistant_id": "{assistant_id}"}),
    (
        "own thread wait",
        "POST",
        "/threads/{own_thread}/runs/wait",
        {"assistant_id": "{assistant_id}"},
    ),
    (
        "own thread stream",
        "POST",
        "/threads/{own_thread}/runs/stream",
        {"assistant_id": "{assistant_id}"},
    ),
    (
        "own thread cron",
        "POST",
        "/threads/{own_thread}/runs/crons",
        {"assistant_id": "{assistant_id}", "schedule": "0 3 * * *"},
    ),
]
# Routes that take a victim id only in the body and answer for the caller's own rows.
BY_BODY: list[tuple[str, str, str, Any]] = [
    ("cancel many", "POST", "/runs/cancel", {"run_ids": ["{pending_run_id}"]}),
]
# JSON-RPC (A2A, MCP): the victim's ids are inside a request to an endpoint the attacker may
# use, and the answer is a 200 either way: its body must be the one for ids that do not
# exist. {agent} is the caller's own default assistant of the graph the victim's runs used.
# (label, path, request, same-org member's answer)
JSONRPC: list[tuple[str, str, Any, str]] = [
    ("a2a message", "/a2a/{assistant_id}", ("message/send", {"message": A2A_HI}), SHARED),
    ("a2a task get", "/a2a/{agent}", ("tasks/get", {"id": "{run_id}"}), HIDDEN),
    ("a2a task cancel", "/a2a/{agent}", ("tasks/cancel", {"id": "{pending_run_id}"}), HIDDEN),
    (
        "a2a context",
        "/a2a/{agent}",
        ("message/send", {"message": {**A2A_HI, "contextId": "{thread_id}"}}),
        HIDDEN,
    ),
    # Tools are named after assistants: "victim" is an assistant of the victim's org only.
    ("mcp tool", "/mcp", ("tools/call", {"name": "victim", "arguments": {}}), SHARED),
]
# Routes that act on those of the ids in the body the caller may see: another's thread is
# skipped exactly like a missing one (200, nothing done).
SKIPPED_BY_BODY: list[tuple[str, str, str, Any]] = [
    (
        "thread prune",
        "POST",
        "/threads/prune",
        {"thread_ids": ["{thread_id}"], "strategy": "keep_latest"},
    ),
]
# A thread's stream lasts until its client leaves: only its answer's status is compared.
ENDLESS = [("thread stream", "GET", "/threads/{thread_id}/stream")]
# Session windows are keyed by the caller's org and user: an assistant id only names which
# of the caller's own windows, so another org's id reaches nothing of the victim's.
SESSIONS = [
    ("GET", "/sessions/{assistant_id}/{session_id}/messages", None),
    ("POST", "/sessions/{assistant_id}/{session_id}/messages", {"messages": [{"x": "mine"}]}),
    ("DELETE", "/sessions/{assistant_id}/{session_id}", None),
]
SEARCHES = [
    ("POST", "/threads/search"),
    ("POST", "/threads/count"),
    ("POST", "/assistants/search"),
    ("POST", "/assistants/count"),
    ("POST", "/runs/crons/search"),
    ("POST", "/runs/crons/count"),
    ("POST", "/feedback/search"),
    ("GET", "/feedback/stats"),
    ("GET", "/experiments"),
]
# Creation routes whose id names a new object in the caller's own org.
CREATIONS = [("POST", "/threads"), ("POST", "/assistants"), ("POST", "/experiments")]
PLATFORM_ADMIN = [
    ("POST", "/orgs", {"org_id": "{org_id}"}),
    ("GET", "/orgs", None),
    ("DELETE", "/orgs/{org_id}", None),
]
# Long-term memory: the victim's item is addressed by namespace and key, not by an id, so
# its attacks (every principal, same namespace and key) are in
# test_store_items_belong_to_their_writer below.
STORE = {
    ("PUT", "/store/items"),
    ("GET", "/store/items"),
    ("DELETE", "/store/items"),
    ("POST", "/store/items/search"),
    ("POST", "/store/namespaces"),
    ("GET", "/store/usage"),
    ("GET", "/store/users/{user_id}/export"),
    ("DELETE", "/store/users/{user_id}"),
    ("DELETE", "/store/org"),
}
PUBLIC = {
    ("GET", "/ok"): "liveness probe: answers before authentication, no tenant data",
    ("GET", "/ready"): "readiness probe: whether Postgres and Valkey answer, no tenant data",
    ("GET", "/info"): "version and feature flags, the same for every caller",
    ("GET", "/metrics"): "process metrics for the scraper, aggregated over every org",
    ("GET", "/openapi.json"): "the API's schema, the same for every caller",
    ("GET", "/docs"): "Swagger UI page rendering the schema",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI's static OAuth helper page",
    ("GET", "/redoc"): "ReDoc page rendering the schema",
    ("POST", "/feedback/tokens/{token}"): "the signed token is the credential: one run, one"
    " key (tests/test_api_feedback.py attacks it: forged, expired, another run's, replayed)",
    ("POST", "/channels/slack/events"): "Slack's webhook: verified by the connection's"
    " signing secret (tests/test_channels_slack.py attacks it)",
    ("POST", "/channels/slack/interactions"): "Slack's button presses: verified the same way",
    ("GET", "/channels/whatsapp/webhook"): "Meta's subscription check: answers only whether a"
    " verify token is known (tests/test_channels_whatsapp.py)",
    ("POST", "/channels/whatsapp/webhook"): "WhatsApp's webhook: verified by the connection's"
    " app secret (tests/test_channels_whatsapp.py attacks it)",
    ("GET", "/ui"): "the console's page: static files, no data (tests_browser/ drive it)",
    ("GET", "/ui/{path:path}"): "the console's static files: no data",
}
# Routes that name no object: they describe the caller (test_me_names_only_the_caller).
SELF = [("GET", "/me")]


def _template(method: str, path: str) -> tuple[str, str]:
    """A row's route as the app's route table spells it (without its query)."""
    return method, anonymous(path.split("?")[0])


def _covered() -> set[tuple[str, str]]:
    rows = [r[1:3] for r in ROUTES + FOREIGN_ASSISTANT + BY_BODY + SKIPPED_BY_BODY + ENDLESS]
    rows += [r[:2] for r in SESSIONS + PLATFORM_ADMIN] + SEARCHES + CREATIONS
    rows += [("POST", r[1]) for r in JSONRPC]
    rows += [*STORE, *PUBLIC, *SELF]
    return {_template(method, path) for method, path in rows}


def test_every_route_is_in_the_matrix():
    """A route nobody attacks is a route whose isolation nobody checks."""
    routes = {_template(method, path) for method, path in app_routes()}
    assert len(routes) > 60, routes
    assert sorted(routes - _covered()) == []
    assert sorted(_covered() - routes) == [], "the matrix names routes the app does not serve"


async def test_me_names_only_the_caller(tenants):
    for who in tenants.all():
        me = await who.http.get("/me", headers={"X-Org-Id": who.org})
        assert me.status_code == 200, me.text
        assert (me.json()["org_id"], me.json()["user_id"], me.json()["role"]) == (
            who.org,
            who.user,
            who.role,
        )
        # Another org in the header is refused, not answered for that org.
        other = tenants.b_admin.org if who.org != tenants.b_admin.org else tenants.a_admin.org
        assert (await who.http.get("/me", headers={"X-Org-Id": other})).status_code == 403


@pytest.fixture
async def victim(tenants):
    """Objects of org A: alice's thread, run, cron and session window, an assistant, an
    owner's API key, and mallory, a member."""
    tag = uuid.uuid4().hex
    a_admin, sdk = tenants.a_admin, tenants.a_member.sdk
    thread = await sdk.threads.create(metadata={"tag": tag})
    assistant = await a_admin.sdk.assistants.create("nested", metadata={"tag": tag}, name="victim")
    key = await a_admin.http.post(f"/orgs/{a_admin.org}/keys", json={})
    member = await a_admin.http.put(f"/orgs/{a_admin.org}/members/mallory", json={"role": "member"})
    assert key.status_code == member.status_code == 200, (key.text, member.text)
    made = await tenants.a_member.http.post(
        f"/threads/{thread['thread_id']}/runs",
        json={
            "assistant_id": "agent",
            "input": HI,
            "stream_resumable": True,
            "feedback_keys": ["t"],
        },
    )
    run = made.json()
    await sdk.runs.join(thread["thread_id"], run["run_id"])
    given = await tenants.a_member.http.post(
        f"/runs/{run['run_id']}/feedback", json={"key": "victim", "score": 1}
    )
    experiment = await a_admin.http.post(
        "/experiments",
        json={
            "name": f"victim-{tag[:8]}",
            "variants": [{"name": "a", "assistant_id": assistant["assistant_id"]}],
            "metric": {"key": "victim"},
        },
    )
    assert given.status_code == experiment.status_code == 200, (given.text, experiment.text)
    cron = await sdk.crons.create_for_thread(
        thread["thread_id"], "agent", schedule="0 3 * * *", input=HI, metadata={"tag": tag}
    )
    state = await sdk.threads.get_state(thread["thread_id"])
    pending_thread = (await sdk.threads.create())["thread_id"]
    pending = await sdk.runs.create(pending_thread, "agent", input=HI, after_seconds=3600)
    ids = {
        "tag": tag,
        "thread_id": thread["thread_id"],
        "assistant_id": assistant["assistant_id"],
        "org_id": a_admin.org,
        "key_id": key.json()["key_id"],
        "user_id": "mallory",
        "run_id": run["run_id"],
        "cron_id": cron["cron_id"],
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "pending_thread_id": pending_thread,
        "pending_run_id": pending["run_id"],
        "namespace": "child",
        "session_id": "s-" + tag[:8],
        "agent": "agent",
        "experiment_id": experiment.json()["experiment_id"],
        "token": run["feedback_tokens"]["t"],
    }
    hooks = f"/orgs/{a_admin.org}/webhooks"
    listed = await a_admin.http.put(hooks, json={"allowed_hosts": ["*.victim.example"]})
    secret = await a_admin.http.get(hooks + "/secret")
    assert listed.status_code == secret.status_code == 200, (listed.text, secret.text)
    ids["webhook_rotated_at"] = secret.json()["rotated_at"]
    channel = await a_admin.http.post(
        f"/orgs/{a_admin.org}/channels",
        json={"type": "slack", "name": "victim", "assistant_id": "agent", "config": SLACK},
    )
    assert channel.status_code == 200, channel.text
    ids["channel_id"] = channel.json()["channel_id"]
    window = _fill("/sessions/{assistant_id}/{session_id}/messages", ids)
    said = await tenants.a_member.http.post(window, json={"messages": [{"x": "alice's"}]})
    assert said.status_code == 200, said.text
    return ids


VARIED = ("thread_id", "assistant_id", "org_id", "key_id", "user_id", "run_id", "cron_id")
VARIED += ("checkpoint_id", "pending_thread_id", "pending_run_id", "experiment_id", "channel_id")


def _missing(ids: dict) -> dict:
    """The same ids with every victim object replaced by one that does not exist."""
    fresh = {name: str(uuid.uuid4()) for name in VARIED}
    return {**ids, **fresh, "org_id": f"nowhere-{uuid.uuid4().hex[:6]}", "user_id": "nobody"}


def _fill(template: Any, ids: dict) -> Any:
    if isinstance(template, str):
        return template.format(**ids)
    if isinstance(template, list):
        return [_fill(t, ids) for t in template]
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    return template


def _normalise(text: str, ids: dict) -> str:
    for name in VARIED:
        text = text.replace(str(ids[name]), f"<{name}>")
    return text


async def _send(who, method: str, path: str, body: Any, ids: dict):
    kwargs = {"json": _fill(body, ids)} if body is not None else {}
    return await who.http.request(method, _fill(path, ids), **kwargs)


async def _same_as_missing(who, method, path, body, victim_ids, expected: int) -> None:
    """The victim's id answers exactly what a missing id answers: `expected`, same body."""
    missing = _missing(victim_ids)
    foreign = await _send(who, method, path, body, victim_ids)
    absent = await _send(who, method, path, body, missing)
    label = (who.user, method, path)
    assert foreign.status_code == absent.status_code == expected, (label, foreign.text)
    assert _normalise(foreign.text, victim_ids) == _normalise(absent.text, missing), label


def _expected(attacker, role: str) -> int:
    """Another org's object is missing (404), unless the attacker's role is refused first,
    as it is on their own org (403: the answer says nothing about the victim's org)."""
    return 403 if role == ADMIN and attacker.role == MEMBER else 404


async def _assert_untouched(tenants, ids) -> None:
    sdk, admin = tenants.a_member.sdk, tenants.a_admin
    thread = await sdk.threads.get(ids["thread_id"])
    assert thread["metadata"]["tag"] == ids["tag"] and "pwned" not in thread["metadata"]
    assert thread["metadata"]["owner"] == "alice"
    assistant = await admin.sdk.assistants.get(ids["assistant_id"])
    assert (assistant["name"], assistant["version"]) == ("victim", 1)
    keys = (await admin.http.get(f"/orgs/{ids['org_id']}/keys")).json()
    assert [k["revoked_at"] for k in keys if k["key_id"] == ids["key_id"]] == [None]
    assert len(keys) == 1, keys
    members = (await admin.http.get(f"/orgs/{ids['org_id']}/members")).json()
    assert [m["role"] for m in members if m["user_id"] == "mallory"] == ["member"]
    runs = await sdk.runs.list(ids["thread_id"])
    assert [(r["run_id"], r["status"]) for r in runs] == [(ids["run_id"], "success")]
    crons = await sdk.crons.search(thread_id=ids["thread_id"])
    assert [(c["cron_id"], c["schedule"]) for c in crons] == [(ids["cron_id"], "0 3 * * *")]
    assert await sdk.crons.count() == 1
    state = await sdk.threads.get_state(ids["thread_id"])
    assert state["checkpoint"]["checkpoint_id"] == ids["checkpoint_id"]
    pending = await sdk.runs.get(ids["pending_thread_id"], ids["pending_run_id"])
    assert pending["status"] == "pending"
    window = await tenants.a_member.http.get(_fill(SESSIONS[0][1], ids))
    assert window.json() == {"messages": [{"x": "alice's"}]}
    hooks = f"/orgs/{ids['org_id']}/webhooks"
    assert (await admin.http.get(hooks)).json()["allowed_hosts"] == ["*.victim.example"]
    given = await admin.http.post("/feedback/search", json={"run_id": ids["run_id"]})
    assert [(e["key"], e["user_id"]) for e in given.json()] == [("victim", "alice")]
    experiment = (await admin.http.get(f"/experiments/{ids['experiment_id']}")).json()
    assert (experiment["status"], experiment["description"]) == ("draft", None)
    secret = (await admin.http.get(hooks + "/secret")).json()
    assert secret == {"rotated_at": ids["webhook_rotated_at"]}  # never rotated, never shown
    channels = (await admin.http.get(f"/orgs/{ids['org_id']}/channels")).json()
    assert [(c["channel_id"], c["name"]) for c in channels] == [(ids["channel_id"], "victim")]
    assert "escalation" not in (await sdk.threads.get(ids["thread_id"]))["metadata"]


async def _rpc(who, path: str, request: tuple[str, Any], ids: dict):
    """A JSON-RPC request (MCP's transport wants both media types accepted)."""
    method, params = request
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": _fill(params, ids)}
    accept = {"Accept": "application/json, text/event-stream"}
    return await who.http.post(_fill(path, ids), json=body, headers=accept)


def _rpc_failed(answer: httpx.Response) -> bool:
    """Whether a JSON-RPC answer is an error (A2A) or a failed tool call (MCP)."""
    body = answer.json()
    return "error" in body or bool(body.get("result", {}).get("isError"))


async def _rpc_same_as_missing(who, path, request, victim_ids) -> None:
    missing = _missing(victim_ids)
    foreign = await _rpc(who, path, request, victim_ids)
    absent = await _rpc(who, path, request, missing)
    label = (who.user, path, request[0])
    # 200 with a JSON-RPC error, the 404 of another org's agent, or (a custom auth filter
    # it cannot apply) the same 403.
    assert foreign.status_code == absent.status_code in (200, 403, 404), (label, foreign.text)
    assert foreign.status_code != 200 or _rpc_failed(foreign), (label, foreign.text)
    assert _normalise(foreign.text, victim_ids) == _normalise(absent.text, missing), label


async def attack_from_another_org(who, victim) -> None:
    """Every route of the matrix and every search, by `who` of the other org: each answer is
    the one for a missing id, and no search finds the victim's objects."""
    for _, method, path, body, role, _ in ROUTES:
        await _same_as_missing(who, method, path, body, victim, _expected(who, role))
    for _, path, request, _ in JSONRPC:
        await _rpc_same_as_missing(who, path, request, victim)
    for method, path in SEARCHES:
        found = await who.http.request(method, path, json={"metadata": {"tag": victim["tag"]}})
        assert found.status_code == 200 and found.json() in ([], 0), (path, found.text)


@pytest.mark.parametrize("attacker", ["b_member", "b_admin"])
async def test_other_org_gets_404_like_a_missing_id_on_every_route(tenants, victim, attacker):
    await attack_from_another_org(getattr(tenants, attacker), victim)
    await _assert_untouched(tenants, victim)


async def test_another_member_of_the_same_org_reaches_only_the_orgs_shared_objects(
    api_url, tenants, victim
):
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    for _, method, path, body, _, same_org in ROUTES:
        if same_org == SHARED:
            reached = await _send(carl, method, path, body, victim)
            assert reached.status_code == 200, (path, reached.text)
        else:
            expected = 404 if same_org == HIDDEN else 403
            await _same_as_missing(carl, method, path, body, victim, expected)
    for label, path, request, same_org in JSONRPC:
        if same_org == SHARED:
            reached = await _rpc(carl, path, request, victim)
            assert reached.status_code == 200 and not _rpc_failed(reached), (label, reached.text)
        else:
            await _rpc_same_as_missing(carl, path, request, victim)
    for method, path in SEARCHES:
        found = await carl.http.request(method, path, json={"metadata": {"tag": victim["tag"]}})
        shared = path.startswith(("/assistants", "/experiments"))
        assert found.status_code == 200, (path, found.text)
        assert (found.json() not in ([], 0)) == shared, (path, found.json())
    await _assert_untouched(tenants, victim)


async def test_the_owner_reaches_every_route_of_the_matrix(tenants, victim):
    """The positive control: each row above works for the victim's own org and user, so
    the 404s are isolation, not a broken route or a wrong body."""
    sdk = tenants.a_member.sdk
    for label, method, path, body in FOREIGN_ASSISTANT + BY_BODY:
        # A fresh pending run on a thread of its own: a run waits for one queued before it.
        queued = (await sdk.threads.create())["thread_id"]
        again = await sdk.runs.create(queued, "agent", input=HI, after_seconds=3600)
        own = {**victim, "own_thread": (await sdk.threads.create())["thread_id"]}
        own["pending_run_id"] = again["run_id"]
        reached = await _send(tenants.a_member, method, path, body, own)
        assert reached.status_code < 400, (label, reached.status_code, reached.text)
    # Before the table's destructive rows; a task of its own to cancel.
    queued = (await sdk.threads.create())["thread_id"]
    again = await sdk.runs.create(queued, "agent", input=HI, after_seconds=3600)
    for label, path, request, _ in JSONRPC:
        own = {**victim, "pending_run_id": again["run_id"]}
        reached = await _rpc(tenants.a_member, path, request, own)
        assert reached.status_code == 200 and not _rpc_failed(reached), (label, reached.text)
    for label, method, path, body, role, _ in ROUTES:
        owner = tenants.a_admin if role == ADMIN else tenants.a_member
        reached = await _send(owner, method, path, body, victim)
        assert reached.status_code < 400, (label, reached.status_code, reached.text)


@pytest.mark.parametrize("attacker", ["b_member", "b_admin"])
async def test_another_orgs_assistant_uuid_starts_no_run_and_no_cron(tenants, victim, attacker):
    who = getattr(tenants, attacker)
    ids = {**victim, "own_thread": (await who.sdk.threads.create())["thread_id"]}
    for _, method, path, body in FOREIGN_ASSISTANT:
        await _same_as_missing(who, method, path, body, ids, 404)
    for _, method, path, body in BY_BODY:
        await _same_as_missing(who, method, path, body, ids, 404)
    assert await who.sdk.runs.list(ids["own_thread"]) == []
    assert await who.sdk.crons.count() == 0
    await _assert_untouched(tenants, victim)


async def _stream_status(who, path: str, ids: dict) -> int:
    async with who.http.stream("GET", _fill(path, ids)) as answer:
        return answer.status_code


async def test_only_who_sees_a_thread_prunes_or_streams_it(api_url, tenants, victim):
    carl = caller(api_url, tenants.a_member.org, "carl", "member")
    history = len(await tenants.a_member.sdk.threads.get_history(victim["thread_id"], limit=100))
    assert history > 1
    for who in (carl, tenants.b_member, tenants.b_admin):
        for _, method, path, body in SKIPPED_BY_BODY:
            await _same_as_missing(who, method, path, body, victim, 200)
        for _, _, path in ENDLESS:
            assert await _stream_status(who, path, victim) == 404
            assert await _stream_status(who, path, _missing(victim)) == 404
    after = await tenants.a_member.sdk.threads.get_history(victim["thread_id"], limit=100)
    assert len(after) == history
    await _assert_untouched(tenants, victim)
    for _, _, path in ENDLESS:
        assert await _stream_status(tenants.a_member, path, victim) == 200
    for _, method, path, body in SKIPPED_BY_BODY:
        reached = await _send(tenants.a_member, method, path, body, victim)
        assert reached.json() == {"pruned_count": 1}, reached.text


@pytest.mark.parametrize("attacker", ["a_admin", "b_member", "b_admin"])
async def test_a_session_window_belongs_to_its_caller(tenants, victim, attacker):
    who = getattr(tenants, attacker)
    for method, path, body in SESSIONS:
        await _same_as_missing(who, method, path, body, victim, 204 if method == "DELETE" else 200)
    await _assert_untouched(tenants, victim)


async def test_only_the_platform_admin_creates_lists_and_deletes_orgs(api_url, tenants, victim):
    for who in tenants.all():
        for method, path, body in PLATFORM_ADMIN:
            await _same_as_missing(who, method, path, body, victim, 403)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    platform = httpx.AsyncClient(base_url=api_url, headers=headers)
    listed = (await platform.get("/orgs", params={"limit": 1000})).json()
    assert victim["org_id"] in {o["org_id"] for o in listed}
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


# --- MCP and A2A through their official clients: two orgs, two users each -----------------


async def test_mcp_and_a2a_keep_two_orgs_and_two_users_apart(api_url, tenants, victim):
    """alice's MCP memory and her A2A task and context, attacked through the protocols'
    own clients by carl (a member of her org), bob and bea (the other org); anna, her admin,
    sees her tasks as she sees her runs, but not her memories."""
    alice = tenants.a_member
    ns = ["mcpiso" + victim["tag"][:8], "notes"]
    item = {"namespace": ns, "key": "k"}
    async with mcp_session(api_url, alice.token) as session:
        assert "victim" in {t.name for t in (await session.list_tools()).tools}
        put = await session.call_tool("memory_put", {**item, "value": {"text": "alice's"}})
        assert not put.is_error, put.content
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {alice.token}"}) as http:
        task = await JsonRpcTransport(http, url=f"{api_url}/a2a/agent").send_message(
            MessageSendParams(message=Message.model_validate(A2A_HI))
        )
    carl = caller(api_url, alice.org, "carl", "member")
    for who in (carl, tenants.b_member, tenants.b_admin, tenants.a_admin):
        async with mcp_session(api_url, who.token) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert ("victim" in names) == (who.org == alice.org), (who.user, names)
            got = await session.call_tool("memory_get", item)
            assert json.loads(got.content[0].text) == {"item": None}, who.user
            found = await session.call_tool("memory_search", {"namespace_prefix": ns[:1]})
            assert json.loads(found.content[0].text) == {"items": []}, who.user
            await session.call_tool("memory_put", {**item, "value": {"text": "overwritten"}})
        if who is tenants.a_admin:
            continue  # an admin reaches the members' runs, and so their tasks
        auth = {"Authorization": f"Bearer {who.token}"}
        async with httpx.AsyncClient(headers=auth, timeout=30) as http:
            agent = JsonRpcTransport(http, url=f"{api_url}/a2a/agent")
            for attempt in (
                agent.get_task(TaskQueryParams(id=task.id)),
                agent.cancel_task(TaskIdParams(id=task.id)),
                agent.send_message(
                    MessageSendParams(
                        message=Message.model_validate({**A2A_HI, "contextId": task.context_id})
                    )
                ),
            ):
                with pytest.raises(A2AClientJSONRPCError) as refused:
                    await attempt
                assert refused.value.error.code == -32001, (who.user, refused.value)
    assert (await alice.sdk.store.get_item(tuple(ns), "k"))["value"] == {"text": "alice's"}
    state = await alice.sdk.threads.get_state(task.context_id)
    assert [m["content"] for m in state["values"]["messages"]] == ["hi", "echo: hi"]
    runs = await alice.sdk.runs.list(task.context_id)
    assert [(r["run_id"], r["status"]) for r in runs] == [(task.id, "success")]


# --- long-term memory: the same namespace and key, attacked from every other principal --


@pytest.mark.parametrize("attacker", ["a_admin", "b_member", "b_admin"])
async def test_store_items_belong_to_their_writer(tenants, attacker):
    victim = tenants.a_member
    root = "iso" + uuid.uuid4().hex[:8]
    ns = (root, "memories")
    await victim.sdk.store.put_item(ns, "secret", {"text": "alice's"})
    intruder = getattr(tenants, attacker)
    http = intruder.http
    other_org = intruder.org != victim.org
    if other_org:
        assert (await http.get("/store/usage")).json()["items"] == 0
    assert await intruder.sdk.store.get_item(ns, "secret") is None
    assert (await victim.sdk.store.get_item(ns, "secret"))["value"] == {"text": "alice's"}
    for body in (
        {"namespace_prefix": [root]},
        {"namespace_prefix": [root], "filter": {"text": "alice's"}},
        {"namespace_prefix": [], "query": "alice", "limit": 100},
    ):
        mine = (await victim.http.post("/store/items/search", json=body)).json()["items"]
        assert {"text": "alice's"} in [i["value"] for i in mine], body
        found = (await http.post("/store/items/search", json=body)).json()["items"]
        assert {"text": "alice's"} not in [i["value"] for i in found], body
    listed = (await http.post("/store/namespaces", json={"prefix": [root]})).json()
    assert listed == {"namespaces": []}
    assert (await victim.http.post("/store/namespaces", json={"prefix": [root]})).json() == {
        "namespaces": [list(ns)]
    }
    assert (
        await http.request("DELETE", "/store/items", json={"namespace": list(ns), "key": "secret"})
    ).status_code == 204
    await intruder.sdk.store.put_item(ns, "secret", {"text": "overwritten"})
    assert (await victim.sdk.store.get_item(ns, "secret"))["value"] == {"text": "alice's"}
    # The GDPR paths: an admin exports/erases the users of their own org only; a member of
    # another org is refused another user's export; org B's "alice" is not org A's.
    exported = await http.get(f"/store/users/{victim.user}/export")
    assert exported.status_code == (403 if intruder.role == "member" else 200), exported.text
    assert ("alice's" in exported.text) == (not other_org)
    if other_org:
        await http.delete(f"/store/users/{victim.user}")
        await http.delete("/store/org")
        assert (await victim.sdk.store.get_item(ns, "secret"))["value"] == {"text": "alice's"}
