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
    # Positive control: the client's own keys are kept.
    assert configurable == {"checkpoint_ns": "", "model": "small"}
    await alice.http.get(f"/threads/{thread['thread_id']}/runs/{run['run_id']}/join")
