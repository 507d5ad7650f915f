"""A LangGraph Platform custom-auth app (tests/custom_auth_app/auth.py) run unchanged through
a real server: its tokens pass, others are rejected with its status and detail, its deny
rule answers 403, its read filter hides what it should, and another org stays out of reach."""

import json
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from .api_fixtures import ADMIN_TOKEN, GRAPHS, JWT_SECRET, mint
from .custom_auth_app.auth import ORG_A, READ_ONLY
from .servers import ServerProcess

APP = Path(__file__).resolve().parent / "custom_auth_app"


@pytest.fixture(scope="module")
def custom_url(api_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("custom-auth")
    config = data / "langgraph.json"
    graphs = {**GRAPHS, "tell": f"{APP}/graph.py:graph"}
    config.write_text(json.dumps({"graphs": graphs, "auth": {"path": f"{APP}/auth.py:auth"}}))
    env = {**api_env, "TENANTGRAPH_ADMIN_TOKEN": ADMIN_TOKEN, "TENANTGRAPH_JWT_SECRET": JWT_SECRET}
    server = ServerProcess(data, config=config, env=env)
    server.wait_ready()
    yield server.url
    server.terminate()


def _client(url: str, token: str | None = None, **headers: str) -> httpx.AsyncClient:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=30)


async def test_the_handler_decides_who_gets_in(custom_url):
    cases = [
        (None, 401, "Missing token"),
        ("nobody-token", 401, "Invalid token"),
        ("banned-token", 403, "This account is banned"),
        # A token tenantgraph itself would accept: the handler is authoritative.
        (mint(ORG_A, "alice", "admin"), 401, "Invalid token"),
        ("nomad-token", 403, "no organisation: the user has no org and no membership mode"),
    ]
    for token, status, detail in cases:
        async with _client(custom_url, token) as client:
            answer = await client.post("/threads/search", json={})
            assert (answer.status_code, answer.json()["detail"]) == (status, detail), token
    async with _client(custom_url, "alice-token") as alice:
        assert (await alice.post("/threads/search", json={})).status_code == 200
        assert (await alice.get("/ok")).status_code == 200


async def test_a_handler_cannot_make_a_reserved_or_non_string_identity(custom_url):
    cases = {
        "shared-token": "reserved",
        "svc-token": "reserved",
        "listed-org-token": "the 'org_id' claim must be a string",
        "numbered-token": "the 'identity' claim must be a string",
    }
    for token, detail in cases.items():
        async with _client(custom_url, token) as client:
            answer = await client.post("/threads/search", json={})
            assert answer.status_code == 401 and detail in answer.json()["detail"], token


async def test_handlers_stamp_filter_and_deny(custom_url):
    alice, anna, bea = (_client(custom_url, f"{u}-token") for u in ("alice", "anna", "bea"))
    async with alice, anna, bea:
        mine = (await alice.post("/threads", json={"metadata": {"topic": "x"}})).json()
        assert mine["metadata"] == {"topic": "x", "owner": "alice", "stamped_by": "custom-auth"}
        annas = (await anna.post("/threads", json={})).json()
        # anna is an org admin, who would see alice's thread; the read filter hides it.
        assert (await anna.get(f"/threads/{mine['thread_id']}")).status_code == 404
        assert (await anna.get(f"/threads/{mine['thread_id']}/state")).status_code == 404
        found = (await anna.post("/threads/search", json={})).json()
        assert [t["thread_id"] for t in found] == [annas["thread_id"]]
        assert (await anna.post("/threads/count", json={})).json() == 1
        assert (await alice.get(f"/threads/{mine['thread_id']}")).status_code == 200
        # The deny rule.
        denied = await alice.delete(f"/threads/{mine['thread_id']}")
        assert denied.status_code == 403
        assert (await alice.get(f"/threads/{mine['thread_id']}")).status_code == 200
        # Another org: nothing of org A, whatever its own handler answers.
        assert (await bea.get(f"/threads/{mine['thread_id']}")).status_code == 404
        assert (await bea.post("/threads/search", json={})).json() == []
        patched = await bea.patch(f"/threads/{mine['thread_id']}", json={"metadata": {"a": 1}})
        assert patched.status_code == 404


async def test_permissions_are_scopes_and_reach_graphs(custom_url):
    async with _client(custom_url, "reader-token") as rita:
        assert (await rita.post("/threads/search", json={})).status_code == 200
        refused = await rita.post("/threads", json={})
        assert refused.status_code == 403 and "threads:write" in refused.json()["detail"]
    alice = get_client(url=custom_url, headers={"Authorization": "Bearer alice-token"})
    said = await alice.runs.wait(None, "tell", input={"messages": []})
    told = json.loads(said["messages"][-1]["content"])
    assert told["permissions"] == ["profile"]
    # The handler's user, its own fields included, as LangGraph Platform hands it over.
    user = told["user"]
    assert (user["identity"], user["display_name"], user["team"]) == ("alice", "Alice A.", "blue")
    assert user["permissions"] == ["profile"] and user["is_authenticated"] is True
    assert READ_ONLY  # rita's permissions name scopes, alice's ("profile") none


async def test_a_stateless_run_is_read_through_the_filter(custom_url):
    """The run is stamped with its creator as owner; the org's admin, who would read it
    without the handler, gets 404."""
    alice, anna = _client(custom_url, "alice-token"), _client(custom_url, "anna-token")
    async with alice, anna:
        body = {"assistant_id": "tell", "input": {"messages": []}, "on_completion": "keep"}
        run = await alice.post("/runs", json=body)
        assert run.status_code == 200 and run.json()["metadata"]["owner"] == "alice"
        run_id = run.json()["run_id"]
        for path in (f"/runs/{run_id}/join", f"/runs/{run_id}"):
            assert (await alice.get(path)).status_code == 200, path
            assert (await anna.get(path)).status_code == 404, path


async def test_api_keys_are_checked_first_and_meet_the_handlers(custom_url):
    async with _client(custom_url, "olga-token") as olga:
        made = await olga.post(f"/orgs/{ORG_A}/keys", json={"user_id": "svc:ci", "role": "admin"})
        assert made.status_code == 200, made.text
    async with _client(custom_url, **{"X-Api-Key": made.json()["key"]}) as key:
        thread = await key.post("/threads", json={})
        assert thread.json()["metadata"]["owner"] == "svc:ci"
        assert (await key.delete(f"/threads/{thread.json()['thread_id']}")).status_code == 403
    async with _client(custom_url, ADMIN_TOKEN) as platform:
        assert (await platform.get(f"/orgs/{ORG_A}")).status_code == 200


async def test_mcp_and_a2a_calls_meet_the_create_run_handler(custom_url):
    """Their calls start runs: a create_run handler's owner filter, which such a call could
    not apply, refuses them (403) rather than letting them past the handler."""
    async with _client(custom_url, "alice-token") as alice:
        for path in ("/mcp", "/a2a/agent"):
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            refused = await alice.post(path, json=body)
            assert refused.status_code == 403, (path, refused.text)
            assert "cannot be applied to threads" in refused.json()["detail"]
        card = await alice.get("/a2a/agent/.well-known/agent-card.json")
        assert card.status_code == 200, card.text
