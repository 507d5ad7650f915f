"""MCP at `/mcp` through the official `mcp` client (ClientSession over Streamable HTTP):
assistants and memory tools, listed and called with scoped API keys, two orgs apart."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

MCP_AND_STORE = ["mcp:invoke", "store:read", "store:write"]


async def make_key(who, scopes: list[str], **fields: object) -> str:
    """A member key of `who` (an admin Caller of tests/api_fixtures.py), narrowed to `scopes`."""
    made = await who.http.post(
        f"/orgs/{who.org}/keys", json={"role": "member", "scopes": scopes, **fields}
    )
    assert made.status_code == 200, made.text
    return made.json()["key"]


@asynccontextmanager
async def mcp_session(url: str, credential: str) -> AsyncIterator[ClientSession]:
    """An initialized session of the official client; `credential`: an API key or a JWT."""
    headers = {"Authorization": f"Bearer {credential}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def tool_names(url: str, key: str) -> set[str]:
    async with mcp_session(url, key) as session:
        return {tool.name for tool in (await session.list_tools()).tools}


def payload(result) -> dict:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def test_an_assistant_is_a_tool_called_as_a_stateless_run(api_url, tenants):
    key = await make_key(tenants.a_admin, ["mcp:invoke"])
    async with mcp_session(api_url, key) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        # The default assistant of each graph, named after it, with its input schema.
        assert {"agent", "slow", "memory"} <= set(tools)
        assert "messages" in tools["agent"].input_schema["properties"]
        assert not {"memory_get", "memory_put", "memory_search"} & set(tools)
        said = {"messages": [{"role": "user", "content": "hi mcp"}]}
        result = await session.call_tool("agent", said)
        assert payload(result)["messages"][-1]["content"] == "echo: hi mcp"
        unknown = await session.call_tool("no-such-assistant", {})
        assert unknown.is_error
    # Stateless: the call left no thread behind.
    assert await tenants.a_admin.sdk.threads.search(limit=100) == []


async def test_memory_tools_need_the_store_scopes_and_stay_in_the_callers_store(api_url, tenants):
    ns = ["mcp" + uuid.uuid4().hex[:8], "notes"]
    anna = await make_key(tenants.a_admin, MCP_AND_STORE)
    bea = await make_key(tenants.b_admin, MCP_AND_STORE)
    async with mcp_session(api_url, anna) as session:
        assert {"memory_get", "memory_put", "memory_search"} <= {
            t.name for t in (await session.list_tools()).tools
        }
        stored = await session.call_tool(
            "memory_put", {"namespace": ns, "key": "k", "value": {"text": "anna's"}}
        )
        assert payload(stored) == {"stored": True}
        got = payload(await session.call_tool("memory_get", {"namespace": ns, "key": "k"}))
        assert got["item"]["value"] == {"text": "anna's"}
        found = payload(await session.call_tool("memory_search", {"namespace_prefix": ns[:1]}))
        assert [i["value"] for i in found["items"]] == [{"text": "anna's"}]
        bad = await session.call_tool("memory_put", {"namespace": ns, "key": "k", "value": 1})
        assert bad.is_error
    # The same item through the REST store API: anna's own, not alice's in the same org.
    item = await tenants.a_admin.sdk.store.get_item(tuple(ns), "k")
    assert item["value"] == {"text": "anna's"}
    assert await tenants.a_member.sdk.store.get_item(tuple(ns), "k") is None
    async with mcp_session(api_url, bea) as session:
        got = payload(await session.call_tool("memory_get", {"namespace": ns, "key": "k"}))
        assert got == {"item": None}
        found = payload(await session.call_tool("memory_search", {"namespace_prefix": ns[:1]}))
        assert found == {"items": []}
    # Read-only: memory_put is neither listed nor callable.
    reader = await make_key(tenants.a_admin, ["mcp:invoke", "store:read"])
    async with mcp_session(api_url, reader) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"memory_get", "memory_search"} <= names and "memory_put" not in names
        refused = await session.call_tool("memory_put", {"namespace": ns, "key": "k", "value": {}})
        assert refused.is_error and "store:write" in refused.content[0].text
    assert (await tenants.a_admin.sdk.store.get_item(tuple(ns), "k"))["value"] == {"text": "anna's"}


async def test_a_key_without_mcp_invoke_is_refused(api_url, tenants):
    key = await make_key(tenants.a_admin, ["runs:create", "store:read"])
    # The official client sees its `initialize` refused (it keeps the status to itself)...
    with pytest.raises(ExceptionGroup) as refused:
        await tool_names(api_url, key)
    assert "Server returned an error response" in repr(refused.value)
    # ...which is the 403 of every route whose scope the credential lacks.
    async with httpx.AsyncClient(base_url=api_url, headers={"X-Api-Key": key}) as http:
        raw = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert raw.status_code == 403, raw.text
    assert raw.json()["detail"] == "this credential lacks the scope 'mcp:invoke'"


async def test_two_orgs_and_an_allow_list_see_their_own_tools(api_url, tenants):
    mine = await tenants.a_admin.sdk.assistants.create("agent", name="acme helper")
    theirs = await tenants.b_admin.sdk.assistants.create("agent", name="globex helper")
    # A name a memory tool has: the assistant's tool is told apart by its id.
    clash = await tenants.a_admin.sdk.assistants.create("agent", name="memory get")
    a_tools = await tool_names(api_url, await make_key(tenants.a_admin, ["mcp:invoke"]))
    b_tools = await tool_names(api_url, await make_key(tenants.b_admin, ["mcp:invoke"]))
    assert "acme_helper" in a_tools and "globex_helper" not in a_tools
    assert f"memory_get_{clash['assistant_id'].replace('-', '')[:8]}" in a_tools
    assert "globex_helper" in b_tools and "acme_helper" not in b_tools
    # A key allowed one assistant lists (and may call) that one alone.
    narrow = await make_key(tenants.a_admin, ["mcp:invoke"], assistants=[str(mine["assistant_id"])])
    assert await tool_names(api_url, narrow) == {"acme_helper"}
    async with mcp_session(api_url, narrow) as session:
        refused = await session.call_tool("agent", {"messages": []})
        assert refused.is_error
        outsider = await session.call_tool("globex_helper", {"messages": []})
        assert outsider.is_error and theirs["assistant_id"] not in outsider.content[0].text
