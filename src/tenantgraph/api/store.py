"""Long-term memory routes (`/store…`): the LangGraph store API plus usage, export, erasure.

Every call goes through the `Memory` service, whose store is bound to the caller, so the
ownership rule (items belong to org + writer; `("shared", …)` is org-wide) is the store's,
not the route's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from tenantgraph.api.deps import Caller, FeedbackService, MemoryService
from tenantgraph.api.payloads import Body, Count, JsonObject, Text

router = APIRouter(prefix="/store", tags=["store"])

Json = dict[str, Any]
Namespace = list[Text]


# A century: longer is forever, which is no TTL at all.
MAX_TTL_MINUTES = 100 * 365 * 24 * 60


# An item's key: never empty, as the GET route's query parameter already requires.
Key = Annotated[Text, Field(min_length=1)]


class ItemPut(Body):
    namespace: Namespace
    key: Key
    value: JsonObject
    index: Annotated[bool, Field(strict=True)] | list[Text] | None = None
    ttl: float | None = Field(None, gt=0, le=MAX_TTL_MINUTES, description="minutes")


class ItemDelete(Body):
    namespace: Namespace
    key: Key


class ItemSearch(Body):
    namespace_prefix: Namespace = Field(default_factory=list)
    filter: JsonObject | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: Count = 0
    query: Text | None = None
    refresh_ttl: bool | None = None


class NamespaceList(Body):
    prefix: Namespace | None = None
    suffix: Namespace | None = None
    max_depth: Annotated[Count, Field(ge=1)] | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: Count = 0


def _item(item: Any) -> Json:
    return item.dict()


@router.put("/items", status_code=204)
async def put_item(body: ItemPut, memory: MemoryService, caller: Caller) -> None:
    index = False if body.index is False else body.index
    await memory.put_item(
        caller, tuple(body.namespace), body.key, body.value, index=index, ttl=body.ttl
    )


@router.get("/items")
async def get_item(
    memory: MemoryService,
    caller: Caller,
    key: Annotated[Text, Query(min_length=1)],
    namespace: Annotated[str, Query(description="labels joined with '.'")] = "",
    refresh_ttl: bool | None = None,
) -> Json | None:
    labels = tuple(namespace.split(".")) if namespace else ()
    item = await memory.get_item(caller, labels, key, refresh_ttl=refresh_ttl)
    return _item(item) if item is not None else None


@router.delete("/items", status_code=204)
async def delete_item(body: ItemDelete, memory: MemoryService, caller: Caller) -> None:
    await memory.delete_item(caller, tuple(body.namespace), body.key)


@router.post("/items/search")
async def search_items(body: ItemSearch, memory: MemoryService, caller: Caller) -> Json:
    items = await memory.search_items(
        caller,
        tuple(body.namespace_prefix),
        query=body.query,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    return {"items": [_item(i) for i in items]}


@router.post("/namespaces")
async def list_namespaces(body: NamespaceList, memory: MemoryService, caller: Caller) -> Json:
    namespaces = await memory.list_namespaces(
        caller,
        prefix=body.prefix,
        suffix=body.suffix,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(ns) for ns in namespaces]}


@router.get("/usage")
async def usage(memory: MemoryService, caller: Caller) -> Json:
    """Items and bytes the caller's org stores, as the quota counts them."""
    counted = await memory.usage(caller)
    return {"items": counted.items, "bytes": counted.bytes}


@router.get("/users/{user_id}/export")
async def export_user(
    user_id: str, memory: MemoryService, feedback: FeedbackService, caller: Caller
) -> StreamingResponse:
    """Every item a user owns, then every feedback event they gave (`{"feedback": …}`), as
    JSON lines (admins: anyone; members: themselves)."""
    items = memory.export_user_items(caller, user_id)
    first = await anext(aiter(items), None)  # raise permission errors before streaming

    async def lines() -> AsyncIterator[bytes]:
        if first is not None:
            yield (json.dumps(first, default=str) + "\n").encode()
            async for item in items:
                yield (json.dumps(item, default=str) + "\n").encode()
        async for event in feedback.export_user(caller, user_id):
            yield (json.dumps({"feedback": event}, default=str) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.delete("/users/{user_id}")
async def delete_user_items(
    user_id: str, memory: MemoryService, feedback: FeedbackService, caller: Caller
) -> Json:
    """Erase every item a user owns and every feedback event they gave in the org (admins:
    anyone; members: themselves)."""
    deleted = await memory.delete_user_items(caller, user_id)
    return {"deleted": deleted, "feedback_deleted": await feedback.delete_user(caller, user_id)}


@router.delete("/org")
async def delete_org_items(
    memory: MemoryService, feedback: FeedbackService, caller: Caller
) -> Json:
    """Erase every item and every feedback event of the caller's org (admins only)."""
    deleted = await memory.delete_org_items(caller)
    return {"deleted": deleted, "feedback_deleted": await feedback.delete_org(caller)}
