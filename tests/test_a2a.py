"""A2A 0.3 at `/a2a/{assistant_id}` through `a2a-sdk` 0.3's JSON-RPC client and card
resolver: send, stream, read and cancel tasks; contexts are the caller's threads."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from a2a.client.card_resolver import A2ACardResolver
from a2a.client.errors import A2AClientJSONRPCError
from a2a.client.transports.jsonrpc import JsonRpcTransport
from a2a.types import (
    AgentCard,
    Message,
    MessageSendConfiguration,
    MessageSendParams,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskIdParams,
    TaskQueryParams,
    TaskState,
    TaskStatusUpdateEvent,
    TextPart,
)

from .test_mcp import make_key, mcp_session


def said(text: str, context_id: str | None = None) -> MessageSendParams:
    message = Message(
        role=Role.user,
        parts=[Part(root=TextPart(text=text))],
        message_id=str(uuid.uuid4()),
        context_id=context_id,
    )
    return MessageSendParams(message=message)


def texts(parts) -> list[str]:
    return [p.root.text for p in parts]


async def poll_state(agent: JsonRpcTransport, task_id: str, wanted: TaskState) -> Task:
    """The task once it is in `wanted` (a generous deadline, no fixed sleep)."""
    for _ in range(600):
        task = await agent.get_task(TaskQueryParams(id=task_id))
        if task.status.state == wanted:
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {wanted}: {task.status.state}")


@pytest.fixture
async def a2a_key(tenants) -> str:
    return await make_key(tenants.a_admin, ["a2a:invoke", "threads:read"])


async def test_the_agent_card_validates_at_both_addresses(api_url, tenants, a2a_key):
    headers = {"X-Api-Key": a2a_key}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
        resolver = A2ACardResolver(http, f"{api_url}/a2a/agent")
        card = await resolver.get_agent_card()  # validated by the SDK's AgentCard model
        by_query = await http.get("/.well-known/agent-card.json", params={"assistant_id": "agent"})
        assert by_query.status_code == 200, by_query.text
        assert AgentCard.model_validate(by_query.json()) == card
        missing = await http.get(f"/a2a/{uuid.uuid4()}/.well-known/agent-card.json")
        assert missing.status_code == 404
    assert card.protocol_version == "0.3.0" and card.capabilities.streaming
    assistant = await tenants.a_admin.sdk.assistants.get("agent")
    assert card.url == f"{api_url}/a2a/{assistant['assistant_id']}"
    assert card.preferred_transport == "JSONRPC" and [s.id for s in card.skills] == ["agent"]


async def test_send_continue_stream_and_read_tasks(api_url, tenants, a2a_key):
    async with httpx.AsyncClient(headers={"X-Api-Key": a2a_key}, timeout=30) as http:
        card = await A2ACardResolver(http, f"{api_url}/a2a/agent").get_agent_card()
        agent = JsonRpcTransport(http, card)
        first = await agent.send_message(said("hello a2a"))
        assert isinstance(first, Task) and first.status.state == TaskState.completed
        assert texts(first.artifacts[0].parts) == ["echo: hello a2a"]
        assert texts(first.status.message.parts) == ["echo: hello a2a"]
        # The context is a thread of the caller's; a second message continues it.
        second = await agent.send_message(said("again", first.context_id))
        assert second.context_id == first.context_id and second.id != first.id
        state = await tenants.a_admin.sdk.threads.get_state(first.context_id)
        assert [m["content"] for m in state["values"]["messages"]] == [
            "hello a2a",
            "echo: hello a2a",
            "again",
            "echo: again",
        ]
        # Streamed: the task, its reply as a `working` status, the artifact, the end.
        events = [e async for e in agent.send_message_streaming(said("streamed"))]
        assert isinstance(events[0], Task) and events[0].status.state == TaskState.submitted
        artifacts = [e for e in events if isinstance(e, TaskArtifactUpdateEvent)]
        assert [texts(a.artifact.parts) for a in artifacts] == [["echo: streamed"]]
        last = events[-1]
        assert isinstance(last, TaskStatusUpdateEvent) and last.final
        assert last.status.state == TaskState.completed and last.task_id == events[0].id
        read = await agent.get_task(TaskQueryParams(id=events[0].id))
        assert read.status.state == TaskState.completed
        assert texts(read.artifacts[0].parts) == ["echo: streamed"]
        with pytest.raises(A2AClientJSONRPCError) as missing:
            await agent.get_task(TaskQueryParams(id=str(uuid.uuid4())))
        assert missing.value.error.code == -32001


async def test_a_running_task_is_cancelled(api_url, tenants, a2a_key, tmp_path):
    gate = tmp_path / "gate"
    gated = await tenants.a_admin.sdk.assistants.create(
        "gate", config={"configurable": {"gate": str(gate)}}, name="gated"
    )
    url = f"{api_url}/a2a/{gated['assistant_id']}"
    async with httpx.AsyncClient(headers={"X-Api-Key": a2a_key}, timeout=30) as http:
        agent = JsonRpcTransport(http, url=url)
        params = said("wait for it")
        params.configuration = MessageSendConfiguration(blocking=False)
        try:
            started = await agent.send_message(params)
            assert isinstance(started, Task)
            await poll_state(agent, started.id, TaskState.working)
            cancelled = await agent.cancel_task(TaskIdParams(id=started.id))
            assert cancelled.status.state == TaskState.canceled
            await poll_state(agent, started.id, TaskState.canceled)
            with pytest.raises(A2AClientJSONRPCError) as again:
                await agent.cancel_task(TaskIdParams(id=started.id))
            assert again.value.error.code == -32002  # TaskNotCancelableError
        finally:
            gate.touch()
        # A task is the agent's own: another agent's endpoint does not know it.
        other = JsonRpcTransport(http, url=f"{api_url}/a2a/agent")
        with pytest.raises(A2AClientJSONRPCError) as unknown:
            await other.get_task(TaskQueryParams(id=started.id))
        assert unknown.value.error.code == -32001


async def test_protocol_errors_are_json_rpc_errors(api_url, tenants, a2a_key):
    async with httpx.AsyncClient(base_url=api_url, headers={"X-Api-Key": a2a_key}) as http:
        answers = [
            await http.post("/a2a/agent", content=b"{not json"),
            await http.post("/a2a/agent", json={"jsonrpc": "2.0", "id": 1, "method": "nope"}),
            await http.post(
                "/a2a/agent",
                json={"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {}},
            ),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["error"]["code"] for a in answers] == [-32700, -32601, -32602]
    assert [a.json().get("id") for a in answers] == [None, 1, 2]


async def test_run_budget_and_idempotency_hold_for_a2a_and_mcp(api_url, tenants, a2a_key):
    """An A2A message or an MCP tool call is a run like any other: it spends the run
    budget, and an `Idempotency-Key` retry replays the first answer instead of a new run."""
    admin = tenants.a_admin
    tightened = await admin.http.put(
        f"/orgs/{admin.org}/limits",
        json={"bucket": "org_runs", "limit": 2, "window_seconds": 3600},
    )
    assert tightened.status_code == 200, tightened.text
    body = {
        "jsonrpc": "2.0",
        "id": "once",
        "method": "message/send",
        "params": said("only once").model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    headers = {"X-Api-Key": a2a_key, "Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as http:
        first = await http.post("/a2a/agent", json=body)
        again = await http.post("/a2a/agent", json=body)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json() and first.json()["result"]["status"]["state"] == "completed"
    tool_key = await make_key(admin, ["mcp:invoke"])
    async with mcp_session(api_url, tool_key) as session:  # the budget's second run
        spent = await session.call_tool("agent", {"messages": []})
        assert not spent.is_error, spent.content
        refused = await session.call_tool("agent", {"messages": []})
        assert refused.is_error and "Rate limit exceeded (org_runs)" in refused.content[0].text
    async with httpx.AsyncClient(base_url=api_url, headers={"X-Api-Key": a2a_key}) as http:
        denied = await http.post("/a2a/agent", json={**body, "id": "third"})
    assert denied.status_code == 429 and int(denied.headers["retry-after"]) > 0
    # Two runs in all: the replay started none.
    assert len(await admin.sdk.threads.search(limit=100)) == 1
