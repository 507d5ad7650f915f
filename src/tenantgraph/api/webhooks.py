"""An org's webhook settings, for its owners and admins: the hosts its runs' webhooks may
name, and the secret that signs them (README "Webhooks")."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from tenantgraph.api.deps import Admin, WebhookService
from tenantgraph.api.orgs import _in_org
from tenantgraph.api.payloads import Body, Text

router = APIRouter(prefix="/orgs/{org_id}/webhooks", tags=["organisations"])

Json = dict[str, Any]


class WebhookSettings(Body):
    allowed_hosts: list[Text] | None = Field(
        description="host names or '*.domain' patterns a webhook may name; null: any host"
    )


@router.get("")
async def get_webhook_settings(org_id: str, webhooks: WebhookService, admin: Admin) -> Json:
    return await webhooks.settings(_in_org(admin, org_id))


@router.put("")
async def set_webhook_settings(
    org_id: str, body: WebhookSettings, webhooks: WebhookService, admin: Admin
) -> Json:
    return await webhooks.set_allowed_hosts(_in_org(admin, org_id), body.allowed_hosts)


@router.get("/secret")
async def get_webhook_secret(org_id: str, webhooks: WebhookService, admin: Admin) -> Json:
    """The secret webhooks are signed with (created on first use)."""
    return await webhooks.secret(_in_org(admin, org_id))


@router.post("/secret")
async def rotate_webhook_secret(org_id: str, webhooks: WebhookService, admin: Admin) -> Json:
    """Replace the secret: webhooks sent from now on are signed with the new one."""
    return await webhooks.rotate_secret(_in_org(admin, org_id))
