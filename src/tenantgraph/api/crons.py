"""Cron routes (`/runs/crons…`, `/threads/{id}/runs/crons`): scheduled runs."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from tenantgraph.api.deps import AssistantService, Caller, CronService, WebhookService
from tenantgraph.api.payloads import Body, Count, JsonObject, Text
from tenantgraph.scope import Principal
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.crons import Crons, CronSortColumn
from tenantgraph.services.experiments import PREFIX as EXPERIMENT_PREFIX
from tenantgraph.services.webhooks import Webhooks

router = APIRouter(prefix="/runs/crons", tags=["crons"])
thread_router = APIRouter(prefix="/threads/{thread_id}/runs/crons", tags=["crons"])

Json = dict[str, Any]


class CronCreate(Body):
    """The cron body; everything but `assistant_id` is the stored run payload."""

    model_config = ConfigDict(extra="allow")

    assistant_id: Text
    schedule: Text
    metadata: JsonObject | None = None


class CronPatch(Body):
    model_config = ConfigDict(extra="allow")


class CronSearch(Body):
    assistant_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    enabled: bool | None = None
    metadata: JsonObject | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: Count = 0
    sort_by: CronSortColumn = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class CronCount(Body):
    assistant_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    metadata: JsonObject | None = None


async def _check_webhook(webhooks: Webhooks, caller: Principal, payload: Json) -> None:
    """A cron's `webhook` is checked as a run's is; its runs send it when they end."""
    if isinstance(payload.get("webhook"), str):
        await webhooks.check_url(caller, payload["webhook"])


async def _create(
    assistants: Assistants,
    crons: Crons,
    webhooks: Webhooks,
    caller: Principal,
    body: CronCreate,
    thread_id: uuid.UUID | None,
) -> Json:
    if body.assistant_id.startswith(EXPERIMENT_PREFIX):
        # An experiment named by name (its id is looked up like an assistant's, by the cron).
        assistant_id, experiment = None, body.assistant_id
    else:
        assistant_id = await assistants.resolve_id(caller, body.assistant_id)
        experiment = None
    payload = body.model_dump(exclude_unset=True, exclude={"assistant_id"})
    await _check_webhook(webhooks, caller, payload)
    return await crons.create(
        caller, assistant_id, payload, thread_id=thread_id, experiment=experiment
    )


@router.post("")
async def create_cron(
    body: CronCreate,
    assistants: AssistantService,
    crons: CronService,
    webhooks: WebhookService,
    caller: Caller,
) -> Json:
    return await _create(assistants, crons, webhooks, caller, body, None)


@thread_router.post("")
async def create_thread_cron(
    thread_id: uuid.UUID,
    body: CronCreate,
    assistants: AssistantService,
    crons: CronService,
    webhooks: WebhookService,
    caller: Caller,
) -> Json:
    return await _create(assistants, crons, webhooks, caller, body, thread_id)


@router.post("/search")
async def search_crons(body: CronSearch, crons: CronService, caller: Caller) -> list[Json]:
    return await crons.search(caller, **body.model_dump())


@router.post("/count")
async def count_crons(body: CronCount, crons: CronService, caller: Caller) -> int:
    return await crons.count(caller, **body.model_dump())


@router.get("/{cron_id}")
async def get_cron(cron_id: uuid.UUID, crons: CronService, caller: Caller) -> Json:
    return await crons.get(caller, cron_id)


@router.patch("/{cron_id}")
async def update_cron(
    cron_id: uuid.UUID,
    body: CronPatch,
    crons: CronService,
    webhooks: WebhookService,
    caller: Caller,
) -> Json:
    patch = body.model_dump(exclude_unset=True)
    await _check_webhook(webhooks, caller, patch)
    return await crons.update(caller, cron_id, patch)


@router.delete("/{cron_id}", status_code=204)
async def delete_cron(cron_id: uuid.UUID, crons: CronService, caller: Caller) -> None:
    await crons.delete(caller, cron_id)
