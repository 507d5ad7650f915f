"""Assistant routes (`/assistants…`), as the LangGraph API serves them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from tenantgraph.api.deps import AssistantService, Caller
from tenantgraph.api.payloads import Body, Count, JsonObject, Text
from tenantgraph.runtime.schemas import graph_schemas

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
    offset: Count = 0
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
    offset: Count = 0


class SetLatest(Body):
    version: int = Field(ge=1)


@router.post("")
async def create_assistant(
    body: AssistantCreate, assistants: AssistantService, caller: Caller
) -> Json:
    return await assistants.create(caller, **body.model_dump())


@router.post("/search")
async def search_assistants(
    body: AssistantSearch, response: Response, assistants: AssistantService, caller: Caller
) -> list[Json]:
    rows, more = await assistants.search(caller, **body.model_dump())
    if more:
        response.headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return rows


@router.post("/count")
async def count_assistants(
    body: AssistantCount, assistants: AssistantService, caller: Caller
) -> int:
    return await assistants.count(caller, **body.model_dump())


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, assistants: AssistantService, caller: Caller) -> Json:
    return await assistants.get(caller, assistant_id)


@router.patch("/{assistant_id}")
async def patch_assistant(
    assistant_id: str, body: AssistantPatch, assistants: AssistantService, caller: Caller
) -> Json:
    return await assistants.update(caller, assistant_id, **body.model_dump())


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(assistant_id: str, assistants: AssistantService, caller: Caller) -> None:
    await assistants.delete(caller, assistant_id)


@router.get("/{assistant_id}/graph")
async def get_graph(
    assistant_id: str,
    assistants: AssistantService,
    caller: Caller,
    xray: Annotated[int | bool, Query()] = False,
) -> Json:
    _, graph = await assistants.graph(caller, assistant_id)
    drawn = (await graph.aget_graph(xray=xray)).to_json()
    for node in drawn.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    return drawn


@router.get("/{assistant_id}/schemas")
async def get_schemas(assistant_id: str, assistants: AssistantService, caller: Caller) -> Json:
    assistant, graph = await assistants.graph(caller, assistant_id)
    return {"graph_id": assistant["graph_id"], **graph_schemas(graph)}


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs(
    assistant_id: str,
    assistants: AssistantService,
    caller: Caller,
    namespace: str | None = None,
    recurse: bool = False,
) -> Json:
    _, graph = await assistants.graph(caller, assistant_id)
    return {
        ns: graph_schemas(subgraph)
        async for ns, subgraph in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
    }


@router.post("/{assistant_id}/versions")
async def list_versions(
    assistant_id: str, body: VersionsQuery, assistants: AssistantService, caller: Caller
) -> list[Json]:
    return await assistants.list_versions(caller, assistant_id, **body.model_dump())


@router.post("/{assistant_id}/latest")
async def set_latest_version(
    assistant_id: str, body: SetLatest, assistants: AssistantService, caller: Caller
) -> Json:
    return await assistants.set_latest(caller, assistant_id, body.version)
