"""Server-owned configurable keys cannot reach a graph through any part of a run request."""

from __future__ import annotations

SMUGGLED = {
    "org_id": "org-of-someone-else",
    "user_id": "mallory",
    "thread_id": "00000000-0000-0000-0000-000000000000",
    "langgraph_auth_user": {"identity": "mallory"},
    "langgraph_auth_permissions": ["admin"],
    "__pregel_store": "forged",
}


async def test_the_checkpoint_cannot_smuggle_server_keys(tenants):
    alice = tenants.a_member
    thread = await alice.sdk.threads.create()
    run = await alice.sdk.runs.create(
        thread["thread_id"],
        "agent",
        input={"messages": [{"role": "user", "content": "hi"}]},
        checkpoint={**SMUGGLED, "checkpoint_ns": ""},
        config={"configurable": {**SMUGGLED, "model": "small"}},
    )
    configurable = run["kwargs"]["config"]["configurable"]
    # Positive control: the client's own keys are kept; the server's hold its own values.
    assert configurable["checkpoint_ns"] == "" and configurable["model"] == "small"
    assert "__pregel_store" not in configurable
    assert configurable["org_id"] == alice.org and configurable["user_id"] == alice.user
    assert configurable["thread_id"] == thread["thread_id"]
    assert configurable["langgraph_auth_user"]["identity"] == alice.user
    assert configurable["langgraph_auth_permissions"] == []
    await alice.http.get(f"/threads/{thread['thread_id']}/runs/{run['run_id']}/join")
