"""Assistant routes (`/assistants…`), as the LangGraph API serves them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from langgraph.pregel import Pregel
from pydantic import Field

from tenantgraph.api.deps import DB, Caller, graph_ids, resolve_assistant_id
from tenantgraph.api.payloads import Body, JsonObject, Text
from tenantgraph.errors import NotFound
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.stores import assistants

router = APIRouter(prefix="/assistants", tags=["assistants"])

Json = dict[str, Any]


class AssistantCreate(Body):
    graph_id: str = Field(min_length=1)
    assistant_id: uuid.UUID | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    name: Text | None = None
    description: Text | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


class AssistantPatch(Body):
    graph_id: Text | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    name: Text | None = None
    description: Text | None = None


class AssistantSearch(Body):
    metadata: JsonObject | None = None
    graph_id: Text | None = None
    name: Text | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Text | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCount(Body):
    metadata: JsonObject | None = None
    graph_id: Text | None = None
    name: Text | None = None


class VersionsQuery(Body):
    metadata: JsonObject | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SetLatest(Body):
    version: int = Field(ge=1)


def _check_graph(request: Request, graph_id: str | None) -> None:
    if graph_id is not None and graph_id not in graph_ids(request):
        raise NotFound(f"graph {graph_id!r} not found")


@router.post("")
async def create_assistant(body: AssistantCreate, request: Request, db: DB, caller: Caller) -> Json:
    _check_graph(request, body.graph_id)
    return await assistants.create(db, caller, **body.model_dump())


@router.post("/search")
async def search_assistants(
    body: AssistantSearch, request: Request, response: Response, db: DB, caller: Caller
) -> list[Json]:
    _check_graph(request, body.graph_id)
    rows, more = await assistants.search(db, caller, **body.model_dump())
    if more:
        response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return rows


@router.post("/count")
async def count_assistants(body: AssistantCount, db: DB, caller: Caller) -> int:
    return await assistants.count(db, caller, **body.model_dump())


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, request: Request, db: DB, caller: Caller) -> Json:
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    return await assistants.get(db, caller, resolved)


@router.patch("/{assistant_id}")
async def patch_assistant(
    assistant_id: str, body: AssistantPatch, request: Request, db: DB, caller: Caller
) -> Json:
    _check_graph(request, body.graph_id)
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    return await assistants.update(db, caller, resolved, **body.model_dump())


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(assistant_id: str, request: Request, db: DB, caller: Caller) -> None:
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    await assistants.delete(db, caller, resolved)


async def _graph(
    request: Request, db: DB, caller: Caller, assistant_id: str
) -> tuple[Json, Pregel]:
    """The assistant and its graph, built with the assistant's config."""
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    assistant = await assistants.get(db, caller, resolved)
    registry: GraphRegistry = request.app.state.registry
    graph = await registry.get(assistant["graph_id"], {"configurable": assistant["config"]})
    return assistant, graph


def _schemas(graph: Pregel) -> Json:
    """The JSON schemas of a graph, as `GET /assistants/{id}/schemas` returns them."""
    return {
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_input_jsonschema(),
        "config_schema": None,
        "context_schema": graph.get_context_jsonschema(),
    }


@router.get("/{assistant_id}/graph")
async def get_graph(
    assistant_id: str,
    request: Request,
    db: DB,
    caller: Caller,
    xray: Annotated[int | bool, Query()] = False,
) -> Json:
    _, graph = await _graph(request, db, caller, assistant_id)
    drawn = (await graph.aget_graph(xray=xray)).to_json()
    for node in drawn.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    return drawn


@router.get("/{assistant_id}/schemas")
async def get_schemas(assistant_id: str, request: Request, db: DB, caller: Caller) -> Json:
    assistant, graph = await _graph(request, db, caller, assistant_id)
    return {"graph_id": assistant["graph_id"], **_schemas(graph)}


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(
    assistant_id: str,
    request: Request,
    db: DB,
    caller: Caller,
    namespace: str | None = None,
    recurse: bool = False,
) -> Json:
    _, graph = await _graph(request, db, caller, assistant_id)
    return {
        ns: _schemas(subgraph)
        async for ns, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
    }


@router.post("/{assistant_id}/versions")
async def list_versions(
    assistant_id: str, body: VersionsQuery, request: Request, db: DB, caller: Caller
) -> list[Json]:
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    return await assistants.list_versions(db, caller, resolved, **body.model_dump())


@router.post("/{assistant_id}/latest")
async def set_latest_version(
    assistant_id: str, body: SetLatest, request: Request, db: DB, caller: Caller
) -> Json:
    resolved = await resolve_assistant_id(request, db, caller, assistant_id)
    return await assistants.set_latest(db, caller, resolved, body.version)
