"""An org's channel connections, for its owners and admins (README "Channels"). Secret
fields of `config` are written, never read back: answers list them in `secrets_set`."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Response

from tenantgraph.api.deps import Admin, ChannelService
from tenantgraph.api.orgs import _in_org
from tenantgraph.api.payloads import Body, Text

router = APIRouter(prefix="/orgs/{org_id}/channels", tags=["channels"])

Json = dict[str, Any]


class ChannelCreate(Body):
    type: Literal["web", "slack", "whatsapp"]
    name: Text
    assistant_id: Text
    config: dict[str, Any] = {}


class ChannelPatch(Body):
    name: Text | None = None
    assistant_id: Text | None = None
    config: dict[str, Any] | None = None


@router.post("")
async def create_channel(
    org_id: str, body: ChannelCreate, channels: ChannelService, admin: Admin
) -> Json:
    return await channels.create(
        _in_org(admin, org_id), body.type, body.name, body.assistant_id, body.config
    )


@router.get("")
async def list_channels(org_id: str, channels: ChannelService, admin: Admin) -> list[Json]:
    return await channels.list(_in_org(admin, org_id))


@router.get("/{channel_id}")
async def get_channel(
    org_id: str, channel_id: uuid.UUID, channels: ChannelService, admin: Admin
) -> Json:
    return await channels.get(_in_org(admin, org_id), channel_id)


@router.patch("/{channel_id}")
async def update_channel(
    org_id: str, channel_id: uuid.UUID, body: ChannelPatch, channels: ChannelService, admin: Admin
) -> Json:
    return await channels.update(
        _in_org(admin, org_id),
        channel_id,
        name=body.name,
        assistant_id=body.assistant_id,
        config=body.config,
    )


@router.delete("/{channel_id}", status_code=204)
async def delete_channel(
    org_id: str, channel_id: uuid.UUID, channels: ChannelService, admin: Admin
) -> Response:
    await channels.delete(_in_org(admin, org_id), channel_id)
    return Response(status_code=204)
