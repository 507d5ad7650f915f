"""MCP at `/mcp` (Streamable HTTP, the official `mcp` SDK): the assistants the caller may run
as tools, each call a stateless run, and memory tools over the caller's own store.

The SDK's transport runs inside an ordinary POST route, so authentication, scopes, rate
limits, idempotency, request ids and metrics apply as to any route. It is stateless (no
MCP session outlives its request: any API process answers any call) and answers JSON; each
handler reads the caller from the HTTP request the SDK hands it (`ctx.request`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from fastapi import APIRouter, Request, Response
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from tenantgraph import __version__
from tenantgraph.api import store
from tenantgraph.api.deps import Caller, app_state
from tenantgraph.api.identity import request_principal
from tenantgraph.api.payloads import Body
from tenantgraph.api.runs import RunRequest, queue_run
from tenantgraph.api.store import ItemDelete, ItemPut, ItemSearch
from tenantgraph.errors import TenantgraphError, Unauthenticated
from tenantgraph.runtime import events
from tenantgraph.runtime.schemas import graph_schemas
from tenantgraph.scope import Principal

__all__ = ["McpEndpoint", "router"]

router = APIRouter(tags=["mcp"])

Json = dict[str, Any]
PAGE = 50  # assistants per `tools/list` page
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]+")

# The memory tools: the scope each needs, what it does, and its arguments (the bodies of the
# matching `/store` routes; an item's address, `ItemDelete`, is also what `memory_get` reads).
MEMORY_TOOLS: dict[str, tuple[str, str, type[Body]]] = {
    "memory_search": (
        "store:read",
        "Search your long-term memory: items under a namespace prefix, by query or filter.",
        ItemSearch,
    ),
    "memory_put": (
        "store:write",
        "Store a JSON object in your long-term memory under a namespace and key.",
        ItemPut,
    ),
    "memory_get": ("store:read", "Read one item of your long-term memory.", ItemDelete),
}


def _caller(ctx: ServerRequestContext[Any, Any]) -> tuple[Request, Principal]:
    """The HTTP request a message came in and its authenticated principal."""
    request = ctx.request
    principal = request_principal(request.scope) if request is not None else None
    if request is None or principal is None:
        raise Unauthenticated("an MCP call needs a tenant credential")
    return request, principal


def _allows(principal: Principal, scope: str) -> bool:
    return principal.scopes is None or scope in principal.scopes


def _tool_name(assistant: Json) -> str:
    """A tool name MCP clients accept (letters, digits, `_`, `-`; at most 64), from the
    assistant's name."""
    name = _NOT_A_NAME.sub("_", assistant["name"] or assistant["graph_id"]).strip("_")
    return (name or "assistant")[:64]


async def _runnable(request: Request, principal: Principal) -> AsyncIterator[Json]:
    """Every assistant of the caller's org that the credential may run, named as a tool; a
    name already taken (by an older assistant or a memory tool) gets the id's first digits."""
    assistants = app_state(request).assistants
    seen = dict.fromkeys(MEMORY_TOOLS, 1)
    offset = 0
    while True:
        page, more = await assistants.search(
            principal, limit=PAGE, offset=offset, sort_by="created_at", sort_order="asc"
        )
        for assistant in page:
            if principal.may_run(str(assistant["assistant_id"]), assistant["graph_id"]):
                name = _tool_name(assistant)
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    name = f"{name[:55]}_{assistant['assistant_id'].hex[:8]}"
                yield {**assistant, "tool": name}
        if not more:
            return
        offset += PAGE


async def _assistant_tool(request: Request, principal: Principal, assistant: Json) -> types.Tool:
    _, graph = await app_state(request).assistants.graph(principal, assistant["assistant_id"])
    schema = graph_schemas(graph)["input_schema"] or {}
    description = assistant.get("description") or (
        f"Run the assistant {assistant['name']!r} (graph {assistant['graph_id']!r}) once, "
        "without a thread, and answer its final state."
    )
    return types.Tool(
        name=assistant["tool"],
        description=description,
        input_schema={**schema, "type": "object"},
    )


async def _list_tools(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    request, principal = _caller(ctx)
    runnable = _runnable(request, principal)
    tools = [await _assistant_tool(request, principal, a) async for a in runnable]
    for name, (scope, description, model) in MEMORY_TOOLS.items():
        if _allows(principal, scope):
            schema = model.model_json_schema()
            tools.append(types.Tool(name=name, description=description, input_schema=schema))
    return types.ListToolsResult(tools=tools)


def _result(value: Any, *, error: bool = False) -> types.CallToolResult:
    text = value if isinstance(value, str) else events.dumps(value).decode()
    structured = json.loads(text) if not isinstance(value, str) else None
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=structured if isinstance(structured, dict) else None,
        is_error=error,
    )


async def _call_tool(
    ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    request, principal = _caller(ctx)
    arguments = params.arguments or {}
    try:
        if params.name in MEMORY_TOOLS:
            return await _memory(request, principal, params.name, arguments)
        async for assistant in _runnable(request, principal):
            if assistant["tool"] == params.name:
                return await _run(request, principal, assistant, arguments)
    except TenantgraphError as exc:
        return _result(str(exc), error=True)
    return _result(f"Unknown tool: {params.name}", error=True)


async def _run(
    request: Request, principal: Principal, assistant: Json, arguments: Json
) -> types.CallToolResult:
    """One stateless run, charged to the caller's run budget like `POST /runs/wait`."""
    body = RunRequest(assistant_id=str(assistant["assistant_id"]), input=arguments)
    run = await queue_run(request, principal, None, body)
    state = app_state(request)
    output = await state.runs.wait(principal, run, worker=state.worker)
    if isinstance(output, dict) and "__error__" in output:
        return _result(output["__error__"], error=True)
    return _result(output)


async def _memory(
    request: Request, principal: Principal, name: str, arguments: Json
) -> types.CallToolResult:
    """A memory tool, refused to a credential without its store scope."""
    scope, _, model = MEMORY_TOOLS[name]
    if not _allows(principal, scope):
        return _result(f"this credential lacks the scope {scope!r}", error=True)
    try:
        body = model.model_validate(arguments)
    except ValidationError as exc:
        return _result(str(exc), error=True)
    memory = app_state(request).memory
    # The `/store` routes' own functions: a tool does what the route does.
    if isinstance(body, ItemPut):
        await store.put_item(body, memory, principal)
        return _result({"stored": True})
    if isinstance(body, ItemSearch):
        return _result(await store.search_items(body, memory, principal))
    assert isinstance(body, ItemDelete)
    item = await memory.get_item(principal, tuple(body.namespace), body.key)
    return _result({"item": item.dict() if item is not None else None})


class McpEndpoint:
    """The app's one MCP server and its stateless Streamable HTTP transport. The SDK's
    DNS-rebinding check stays off: every call carries a credential (never a cookie), and
    browsers' origins are the app's CORS settings' business."""

    def __init__(self) -> None:
        server: Server[Any] = Server(
            "tenantgraph", version=__version__, on_list_tools=_list_tools, on_call_tool=_call_tool
        )
        self.manager = StreamableHTTPSessionManager(server, json_response=True, stateless=True)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield


class _Transport(Response):
    """Hands the request to the SDK's transport, which writes the response itself."""

    def __init__(self, endpoint: McpEndpoint) -> None:
        self.endpoint = endpoint
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.endpoint.manager.handle_request(scope, receive, send)


@router.post("/mcp", response_model=None)
async def mcp_transport(request: Request, caller: Caller) -> Response:
    """MCP Streamable HTTP (JSON-RPC `initialize`, `tools/list`, `tools/call`, …)."""
    return _Transport(request.app.state.mcp)
