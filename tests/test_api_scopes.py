"""Scoped credentials: every route of the app has a scope (or is public), is refused
without it and allowed with it; keys, JWT claims and runs carry scopes."""

import re
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from tenantgraph.api.app import create_app
from tenantgraph.api.scopes import PLATFORM, PUBLIC, ROUTE_SCOPES, SELF
from tenantgraph.scope import SCOPES

from .api_fixtures import ADMIN_TOKEN, mint


def _app_routes(routes) -> set[tuple[str, str]]:
    """(method, path template) of every API route, through included routers too."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods}
        elif hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.16x)
            found |= _app_routes(route.original_router.routes)
    return found


APP_ROUTES = sorted(_app_routes(create_app().routes))
SCOPED_ROUTES = sorted(r for r in APP_ROUTES if r not in PUBLIC | PLATFORM | SELF)


def test_every_route_has_a_scope_or_is_public():
    assert len(APP_ROUTES) > 60  # the walk found the routers' routes
    assert set(SCOPED_ROUTES) == set(ROUTE_SCOPES), "route table and app routes differ"
    assert set(ROUTE_SCOPES.values()) <= SCOPES
    assert not (PUBLIC | PLATFORM | SELF) & set(ROUTE_SCOPES)


@pytest.fixture(scope="module")
async def scoped_org(api_url):
    """An org whose owner olga mints keys: one holding every scope but X, one only X."""
    org = f"scoped-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as admin:
        assert (await admin.post("/orgs", json={"org_id": org, "owner": "olga"})).is_success
    owner = {"Authorization": f"Bearer {mint(org, 'olga', 'owner')}"}
    keys: dict[tuple[str, bool], str] = {}
    async with httpx.AsyncClient(base_url=api_url, headers=owner) as olga:
        for scope in SCOPES:
            for has in (True, False):
                scopes = [scope] if has else sorted(SCOPES - {scope})
                made = await olga.post(
                    f"/orgs/{org}/keys", json={"role": "owner", "scopes": scopes}
                )
                assert made.status_code == 200, made.text
                assert made.json()["scopes"] == scopes
                keys[scope, has] = made.json()["key"]
    return org, keys


def _concrete(path: str, org: str) -> str:
    values = {"org_id": org, "user_id": "nobody", "namespace": "x", "session_id": "s"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


async def test_a_key_of_one_scope_still_reads_who_it_is(api_url, scoped_org):
    """`GET /me` describes the caller only, so a key narrowed to any one scope reads it."""
    org, keys = scoped_org
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        me = await client.get("/me", headers={"X-Api-Key": keys["feedback:read", True]})
        assert me.status_code == 200, me.text
        assert me.json() | {"api_key_id": None} == {
            "org_id": org,
            "user_id": "olga",
            "role": "owner",
            "scopes": ["feedback:read"],
            "assistants": None,
            "api_key_id": None,
        }
        assert (await client.get("/me")).status_code == 401


@pytest.mark.parametrize(("method", "path"), SCOPED_ROUTES)
async def test_a_route_needs_its_scope(api_url, scoped_org, method, path):
    org, keys = scoped_org
    scope = ROUTE_SCOPES[method, path]
    url = _concrete(path, org)
    body = {} if method in ("POST", "PUT", "PATCH") else None
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        without = await client.request(
            method, url, json=body, headers={"X-Api-Key": keys[scope, False]}
        )
        assert without.status_code == 403, without.text
        assert without.json()["detail"] == f"this credential lacks the scope {scope!r}"
        allowed = await client.request(
            method, url, json=body, headers={"X-Api-Key": keys[scope, True]}
        )
        assert "lacks the scope" not in allowed.text, allowed.text
        assert allowed.status_code != 401


async def test_jwt_scopes_from_the_scope_or_permissions_claim(api_url, tenants):
    org = tenants.a_member.org
    for claims in ({"scope": "openid threads:read"}, {"permissions": ["threads:read"]}):
        token = mint(org, "alice", "member", **claims)
        async with httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            assert (await c.post("/threads/search", json={})).status_code == 200
            refused = await c.post("/threads", json={})
            assert refused.status_code == 403 and "threads:write" in refused.text
    # A token whose scopes are none of ours (an OAuth login's) keeps its role's meaning.
    token = mint(org, "alice", "member", scope="openid profile")
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        assert (await c.post("/threads", json={})).status_code == 200


async def test_a_keys_scopes_and_assistants_are_at_most_its_creators(api_url, tenants):
    anna, org = tenants.a_admin.http, tenants.a_admin.org
    unknown = await anna.post(f"/orgs/{org}/keys", json={"scopes": ["threads:delete-all"]})
    assert unknown.status_code == 422
    made = await anna.post(
        f"/orgs/{org}/keys",
        json={"role": "admin", "scopes": ["admin", "runs:create"], "assistants": ["agent"]},
    )
    scoped = {"X-Api-Key": made.json()["key"]}
    async with httpx.AsyncClient(base_url=api_url, headers=scoped) as key:
        wider = await key.post(f"/orgs/{org}/keys", json={"scopes": ["store:read"]})
        assert wider.status_code == 403
        other = await key.post(f"/orgs/{org}/keys", json={"assistants": ["other"]})
        assert other.status_code == 403
        child = await key.post(f"/orgs/{org}/keys", json={})  # inherits both
        assert child.json()["scopes"] == ["admin", "runs:create"]
        assert child.json()["assistants"] == ["agent"]
        listed = {k["key_id"]: k for k in (await key.get(f"/orgs/{org}/keys")).json()}
        assert listed[made.json()["key_id"]]["scopes"] == ["admin", "runs:create"]
        # It runs the assistant it names, no other; the run carries its permissions.
        body = {"input": {"messages": []}}
        refused = await key.post("/runs", json={**body, "assistant_id": "other"})
        assert refused.status_code == 403 and "may not run" in refused.text
        run = await key.post("/runs", json={**body, "assistant_id": "agent"})
        assert run.status_code == 200, run.text
        configurable = run.json()["kwargs"]["config"]["configurable"]
        assert configurable["langgraph_auth_permissions"] == ["admin", "runs:create"]


def test_the_readme_table_is_the_code_table():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    documented = {
        (method, path): scope
        for scope, routes in re.findall(r"^\| `([a-z0-9:]+)` \| (.*) \|$", readme, re.M)
        for method, path in re.findall(r"`([A-Z]+) (/[^`]*)`", routes)
    }
    assert documented == ROUTE_SCOPES
