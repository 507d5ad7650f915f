"""Organisation administration: orgs (platform admin), members and API keys (org admin)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, model_validator

from tenantgraph.api.auth import require_platform_admin, tenant_principal
from tenantgraph.api.deps import Admin, LimitService, OrgService, app_state
from tenantgraph.api.identity import request_identity
from tenantgraph.api.payloads import Body, Count, JsonObject, Text
from tenantgraph.ephemeral.ratelimit import Bucket
from tenantgraph.errors import NotFound
from tenantgraph.scope import Principal, Role
from tenantgraph.services.limits import Quota
from tenantgraph.settings import Limit

router = APIRouter(prefix="/orgs", tags=["organisations"])
PlatformAdmin = Depends(require_platform_admin)

Json = dict[str, Any]


class OrgCreate(Body):
    org_id: str = Field(min_length=1, max_length=128)
    name: Text | None = None
    owner: str | None = Field(None, description="user id made the org's first owner")
    metadata: JsonObject | None = None


class MemberSet(Body):
    role: Role = Role.MEMBER


class KeyCreate(Body):
    user_id: str | None = Field(
        None,
        description="the caller's own id (the default) or, for owners and admins, a service "
        "account 'svc:<name>'",
    )
    role: Role = Role.MEMBER
    name: Text = ""
    scopes: list[str] | None = Field(
        None, description="what the key may do (README 'Scopes'); default: all its role allows"
    )
    assistants: list[Text] | None = Field(
        None, description="assistant ids or graph names the key may run; default: any"
    )


class LimitSet(Body):
    """One budget (`bucket`) or quota (`quota`) of the org: a new limit, or
    `limit: null` to follow the default."""

    bucket: Bucket | None = None
    quota: Quota | None = None
    limit: int | None = Field(None, ge=1, le=2**63 - 1)
    window_seconds: int = Field(60, ge=1, le=366 * 24 * 3600)

    @model_validator(mode="after")
    def _one_limit(self) -> LimitSet:
        if (self.bucket is None) == (self.quota is None):
            raise ValueError("name one 'bucket' (a rate budget) or one 'quota'")
        if self.bucket is not None and (self.limit or 0) > 2**31 - 1:
            raise ValueError(f"a budget's limit is at most {2**31 - 1}")
        return self


def _in_org(principal: Principal, org_id: str) -> Principal:
    """Org-scoped routes answer 404 for any org but the caller's own (no existence oracle)."""
    if org_id != principal.org_id:
        raise NotFound("organisation not found")
    return principal


@router.post("", dependencies=[PlatformAdmin])
async def create_org(body: OrgCreate, orgs: OrgService) -> Json:
    return await orgs.create_org(
        body.org_id, body.name or body.org_id, owner=body.owner, metadata=body.metadata
    )


@router.get("", dependencies=[PlatformAdmin])
async def list_orgs(
    orgs: OrgService,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[Count, Query()] = 0,
) -> list[Json]:
    return await orgs.list_orgs(limit=limit, offset=offset)


@router.get("/{org_id}")
async def get_org(org_id: str, request: Request, orgs: OrgService) -> Json:
    identity = request_identity(request.scope)
    if identity is not None and identity.platform_admin:
        principal = Principal(org_id, "platform-admin", Role.OWNER)
    else:
        principal = _in_org(tenant_principal(request), org_id)
    return await orgs.get_org(principal)


def _org_or_platform(request: Request, org_id: str, *, admin: bool) -> Principal | None:
    """The caller in `org_id` (an admin of it when `admin`), or None for the platform admin."""
    identity = request_identity(request.scope)
    if identity is not None and identity.platform_admin:
        return None
    principal = tenant_principal(request)
    if admin:  # the role first, as on every admin route
        principal.require_admin()
    return _in_org(principal, org_id)


@router.get("/{org_id}/limits")
async def get_limits(org_id: str, request: Request, limits: LimitService) -> Json:
    """The org's budgets: the platform admin's and the org's admins' to read."""
    principal = _org_or_platform(request, org_id, admin=True)
    return await limits.effective(principal or Principal(org_id, "platform-admin", Role.OWNER))


@router.put("/{org_id}/limits")
async def set_limit(org_id: str, body: LimitSet, request: Request, limits: LimitService) -> Json:
    """Set one budget or store quota: the platform admin to any value; the org's owners and
    admins only tighter than what applies now (an org cannot raise its own limits)."""
    principal = _org_or_platform(request, org_id, admin=True)
    operator = principal is None
    principal = principal or Principal(org_id, "platform-admin", Role.OWNER)
    if body.quota is not None:
        set_quota = limits.set_quota if operator else limits.tighten_quota
        await set_quota(principal, body.quota, body.limit)
        return await limits.effective(principal)
    assert body.bucket is not None
    chosen = (
        None if body.limit is None else Limit(limit=body.limit, window_seconds=body.window_seconds)
    )
    await (limits.set if operator else limits.tighten)(principal, body.bucket, chosen)
    app_state(request).rate_limiter.invalidate(org_id)
    return await limits.effective(principal)


@router.delete("/{org_id}", status_code=204, dependencies=[PlatformAdmin])
async def delete_org(org_id: str, request: Request, orgs: OrgService) -> None:
    await orgs.delete_org(org_id)
    app_state(request).authenticator.forget_org(org_id)


@router.get("/{org_id}/members")
async def list_members(org_id: str, orgs: OrgService, admin: Admin) -> list[Json]:
    return await orgs.list_members(_in_org(admin, org_id))


@router.put("/{org_id}/members/{user_id}")
async def set_member(
    org_id: str, user_id: str, body: MemberSet, orgs: OrgService, admin: Admin
) -> Json:
    return await orgs.set_member(_in_org(admin, org_id), user_id, body.role)


@router.delete("/{org_id}/members/{user_id}", status_code=204)
async def delete_member(org_id: str, user_id: str, orgs: OrgService, admin: Admin) -> None:
    await orgs.delete_member(_in_org(admin, org_id), user_id)


@router.post("/{org_id}/keys")
async def create_key(org_id: str, body: KeyCreate, orgs: OrgService, admin: Admin) -> Json:
    secret, record = await orgs.create_api_key(
        _in_org(admin, org_id),
        user_id=body.user_id,
        role=body.role,
        name=body.name,
        scopes=body.scopes,
        assistants=body.assistants,
    )
    return {**record, "key": secret}


@router.get("/{org_id}/keys")
async def list_keys(org_id: str, orgs: OrgService, admin: Admin) -> list[Json]:
    return await orgs.list_api_keys(_in_org(admin, org_id))


@router.delete("/{org_id}/keys/{key_id}", status_code=204)
async def revoke_key(org_id: str, key_id: uuid.UUID, orgs: OrgService, admin: Admin) -> None:
    await orgs.revoke_api_key(_in_org(admin, org_id), key_id)
