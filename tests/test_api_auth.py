"""Authentication fails closed: every bad credential is 401/403 and reads or writes nothing."""

import datetime
import json
import re
import time
import uuid
from types import SimpleNamespace

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.datastructures import Headers

from tenantgraph.api import auth as auth_module
from tenantgraph.api.auth import PUBLIC_PATHS, PUBLIC_PREFIXES, Authenticator
from tenantgraph.api.key_cache import KeyCache
from tenantgraph.errors import Forbidden, NotFound, Unauthenticated
from tenantgraph.scope import InvalidIdentifier, Principal, Role
from tenantgraph.services.orgs import Orgs
from tenantgraph.settings import Settings

from .api_fixtures import ADMIN_TOKEN, JWT_SECRET, mint
from .jwks import serve_jwks
from .route_table import app_routes, with_fresh_ids
from .servers import ServerProcess


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _alg_none(org: str) -> str:
    """Unsigned, but otherwise a valid token (an `exp`), so only `alg: none` can refuse it."""
    claims = {"sub": "alice", "org_id": org, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, None, algorithm="none")


def _wrong_signature(org: str) -> str:
    claims = {"sub": "alice", "org_id": org, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, "another-secret-of-sufficient-length!", algorithm="HS256")


UNKNOWN_KEY = "tg_" + "x" * 43
# name: (headers for the target org, the detail that names the refusal)
BAD_CREDENTIALS = {
    "no credential": (lambda org: {}, "missing credentials"),
    "basic auth": (lambda org: {"Authorization": "Basic dXNlcjpwYXNz"}, "missing credentials"),
    "garbage": (lambda org: _bearer("not-a-jwt"), "invalid token"),
    "expired": (
        lambda org: _bearer(mint(org, "alice", "owner", exp=int(time.time()) - 10)),
        "invalid token: Signature has expired",
    ),
    "wrong signature": (lambda org: _bearer(_wrong_signature(org)), "invalid token"),
    "alg none": (lambda org: _bearer(_alg_none(org)), "invalid token"),
    "no org claim": (lambda org: _bearer(mint(None, "alice")), "token has no 'org_id' claim"),
    "org claim not a string": (
        lambda org: _bearer(mint(None, "alice", org_id=[org])),
        "invalid identity: the 'org_id' claim must be a string",
    ),
    "unknown api key": (lambda org: {"X-Api-Key": UNKNOWN_KEY}, "invalid or revoked API key"),
    "unknown api key as bearer": (lambda org: _bearer(UNKNOWN_KEY), "invalid or revoked API key"),
}


async def _org_contents(admin) -> dict[str, object]:
    """What a bad credential naming this org could write: every kind of org object."""
    org = admin.org
    return {
        "threads": await admin.sdk.threads.count(),
        "assistants": await admin.sdk.assistants.count(),
        "crons": await admin.sdk.crons.count(),
        "keys": (await admin.http.get(f"/orgs/{org}/keys")).json(),
        "members": (await admin.http.get(f"/orgs/{org}/members")).json(),
        "store": (await admin.http.get("/store/usage")).json(),
    }


@pytest.mark.parametrize("name", sorted(BAD_CREDENTIALS))
async def test_bad_credentials_get_401_with_their_reason_on_every_route_and_write_nothing(
    api_url, tenants, name
):
    """Every non-public route of the app, with bad credentials naming org A (which exists)
    and a fresh org (which must not be created): 401, the reason, no change to either."""
    headers_for, detail = BAD_CREDENTIALS[name]
    org, ghost = tenants.a_admin.org, f"ghost-{uuid.uuid4().hex[:6]}"
    await tenants.a_member.sdk.threads.create()  # org A exists and holds a thread
    before = await _org_contents(tenants.a_admin)
    routes = sorted(
        r for r in app_routes() if r[1] not in PUBLIC_PATHS and not r[1].startswith(PUBLIC_PREFIXES)
    )
    assert len(routes) > 60
    for target in (org, ghost):
        async with httpx.AsyncClient(base_url=api_url, headers=headers_for(target)) as client:
            for method, template in routes:
                path = with_fresh_ids(template, org_id=target, user_id="alice")
                body = [] if template == "/runs/batch" else {}
                response = await client.request(method, path, json=body)
                assert response.status_code == 401, (name, method, path, response.text)
                assert response.json()["detail"].startswith(detail), (name, path, response.text)
    assert await _org_contents(tenants.a_admin) == before
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(ADMIN_TOKEN)) as admin:
        assert (await admin.get(f"/orgs/{ghost}")).status_code == 404
        assert (await admin.get(f"/orgs/{org}")).status_code == 200


async def test_public_routes_need_no_credential(api_url):
    async with httpx.AsyncClient(base_url=api_url) as client:
        for path in ("/ok", "/info", "/metrics", "/openapi.json"):
            assert (await client.get(path)).status_code == 200, path


async def test_credential_for_another_org_is_403(tenants):
    a = tenants.a_member
    response = await a.http.post("/threads", json={}, headers={"X-Org-Id": tenants.b_member.org})
    assert response.status_code == 403
    assert await tenants.b_admin.sdk.threads.count() == 0


async def test_platform_admin_token_is_not_a_tenant_credential(api_url):
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(ADMIN_TOKEN)) as client:
        assert (await client.post("/threads", json={})).status_code == 403
        assert (await client.get("/orgs")).status_code == 200


async def test_org_admin_flow_with_api_keys(api_url, tenants):
    org = f"keyed-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(ADMIN_TOKEN)) as admin:
        created = await admin.post("/orgs", json={"org_id": org, "name": "Keyed", "owner": "olga"})
        assert created.status_code == 200 and created.json()["org_id"] == org
        assert (await admin.post("/orgs", json={"org_id": org})).status_code == 409
        assert org in {o["org_id"] for o in (await admin.get("/orgs?limit=1000")).json()}
        bad = await admin.post("/orgs", json={"org_id": "has space"})
        assert bad.status_code == 422 and "org_id" in bad.json()["detail"]
    owner = httpx.AsyncClient(base_url=api_url, headers=_bearer(mint(org, "olga", "owner")))
    async with owner:
        made = await owner.post(f"/orgs/{org}/keys", json={"user_id": "svc:kim", "role": "admin"})
        assert made.status_code == 200, made.text
        key, key_id = made.json()["key"], made.json()["key_id"]
        assert key.startswith("tg_")
        listed = (await owner.get(f"/orgs/{org}/keys")).json()
        assert [k["key_id"] for k in listed] == [key_id] and "key" not in listed[0]
        members = await owner.put(f"/orgs/{org}/members/max", json={"role": "member"})
        assert members.json()["role"] == "member"
        assert {m["user_id"] for m in (await owner.get(f"/orgs/{org}/members")).json()} == {
            "olga",
            "max",
        }
        async with httpx.AsyncClient(base_url=api_url, headers={"X-Api-Key": key}) as kim:
            thread = await kim.post("/threads", json={})
            assert thread.status_code == 200 and thread.json()["metadata"]["owner"] == "svc:kim"
            grant = await kim.post(f"/orgs/{org}/keys", json={"role": "owner"})
            assert grant.status_code == 403  # an admin cannot mint an owner key
            foreign = await kim.get(f"/orgs/{tenants.a_admin.org}/keys")
            assert foreign.status_code == 404
            assert (await owner.delete(f"/orgs/{org}/keys/{key_id}")).status_code == 204
            assert (await kim.post("/threads", json={})).status_code == 401
        member = httpx.AsyncClient(base_url=api_url, headers=_bearer(mint(org, "max")))
        async with member:
            assert (await member.post(f"/orgs/{org}/keys", json={})).status_code == 403
            assert (await member.get(f"/orgs/{org}/members")).status_code == 403
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(ADMIN_TOKEN)) as admin:
        assert (await admin.delete(f"/orgs/{org}")).status_code == 204
        assert (await admin.get(f"/orgs/{org}")).status_code == 404


# --- configuration variants, checked in-process against the real database ---------------


def _headers(token: str, **extra: str) -> Headers:
    return Headers({"authorization": f"Bearer {token}", **extra})


async def test_audience_and_issuer_are_checked(resources):
    settings = Settings(jwt_secret=JWT_SECRET, jwt_audience="tenantgraph", jwt_issuer="https://id")
    auth = Authenticator(settings, Orgs(resources.db, resources.redis))
    good = mint("aud-org", "u", aud="tenantgraph", iss="https://id")
    assert (await auth.authenticate(_headers(good))).principal == Principal("aud-org", "u")
    for token in (
        mint("aud-org", "u", aud="someone-else", iss="https://id"),
        mint("aud-org", "u", iss="https://id"),
        mint("aud-org", "u", aud="tenantgraph", iss="https://evil"),
    ):
        with pytest.raises(Unauthenticated):
            await auth.authenticate(_headers(token))


async def test_a_verified_token_is_reused_only_until_it_expires(resources, monkeypatch):
    """Claims of a verified token are kept for its next requests, never past its `exp`;
    a token differing in any byte is verified on its own. The clock is moved past `exp`
    (for the cache and for PyJWT), so no real wait can race the expiry."""
    auth = Authenticator(Settings(jwt_secret=JWT_SECRET), Orgs(resources.db, resources.redis))
    token = mint("exp-org", "u", exp=int(time.time()) + 3600)
    for _ in range(3):
        assert (await auth.authenticate(_headers(token))).principal == Principal("exp-org", "u")
    assert list(auth._verified) == [token]
    with pytest.raises(Unauthenticated, match="invalid token"):
        await auth.authenticate(_headers(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")))
    later = jwt.decode(token, options={"verify_signature": False})["exp"] + 1

    class _Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.fromtimestamp(later, tz)

    monkeypatch.setattr(
        auth_module, "time", SimpleNamespace(time=lambda: later, monotonic=time.monotonic)
    )
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Later)
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.authenticate(_headers(token))


async def test_no_configured_issuer_rejects_every_token(resources):
    auth = Authenticator(Settings(), Orgs(resources.db, resources.redis))
    with pytest.raises(Unauthenticated, match="no token issuer"):
        await auth.authenticate(_headers(mint("o", "u")))


async def test_membership_mode_takes_the_role_from_the_database(resources, org_ids):
    org, other = org_ids
    orgs = Orgs(resources.db, resources.redis)
    await orgs.create_org(org, "M", owner="owner-1")
    await orgs.set_member(Principal(org, "owner-1", Role.OWNER), "ed", Role.ADMIN)
    settings = Settings(jwt_secret=JWT_SECRET, org_mode="membership")
    auth = Authenticator(settings, orgs)
    # The token's own org/role claims are ignored in this mode.
    token = mint("ignored", "ed", role="owner")
    identity = await auth.authenticate(_headers(token, **{"x-org-id": org}))
    assert identity.principal == Principal(org, "ed", Role.ADMIN)
    for headers in (
        _headers(token),
        _headers(token, **{"x-org-id": other}),
        _headers(mint("x", "stranger"), **{"x-org-id": org}),
    ):
        with pytest.raises(Forbidden):  # 403
            await auth.authenticate(headers)


async def test_custom_claim_names_for_supabase_and_auth0(resources):
    settings = Settings(
        jwt_secret=JWT_SECRET, org_claim="app_metadata.org_id", role_claim="https://x.io/role"
    )
    auth = Authenticator(settings, Orgs(resources.db, resources.redis))
    token = mint(
        None, "sb-user", app_metadata={"org_id": "supa-org"}, **{"https://x.io/role": "admin"}
    )
    principal = (await auth.authenticate(_headers(token))).principal
    assert principal == Principal("supa-org", "sb-user", Role.ADMIN)


async def test_rs256_tokens_from_a_jwks_url(resources):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    with serve_jwks(public, "k1") as url:
        auth = Authenticator(Settings(jwks_url=url), Orgs(resources.db, resources.redis))
        claims = {"sub": "rs", "org_id": "rs-org", "exp": int(time.time()) + 60}
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
        assert (await auth.authenticate(_headers(token))).principal == Principal("rs-org", "rs")
        forged = jwt.encode(claims, JWT_SECRET, algorithm="HS256", headers={"kid": "k1"})
        with pytest.raises(Unauthenticated):
            await auth.authenticate(_headers(forged))


def test_first_start_prints_one_owner_key_and_never_opens_up(tmp_path):
    """With the embedded database and nothing configured: a key, printed once, is the only
    way in."""
    data = tmp_path / "fresh"
    server = ServerProcess(data, env={"TENANTGRAPH_PG_SHARED_BUFFERS_MB": "128"})
    server.wait_ready()
    try:
        keys = re.findall(r"tg_[A-Za-z0-9_-]{20,}", server.log.read_text())
        assert len(keys) == 1
        with httpx.Client(base_url=server.url) as client:
            assert client.post("/threads/search", json={}).status_code == 401
            assert (
                client.post("/threads", json={}, headers={"X-Api-Key": keys[0]}).status_code == 200
            )
            org = client.get("/orgs/default", headers={"X-Api-Key": keys[0]})
            assert org.status_code == 200 and org.json()["org_id"] == "default"
    finally:
        server.terminate()
    again = ServerProcess(data)
    again.wait_ready()
    try:
        assert re.findall(r"tg_[A-Za-z0-9_-]{20,}", again.log.read_text()) == []
    finally:
        again.terminate()


@pytest.mark.parametrize(
    "claims",
    [
        {"org_id": ["{org}"]},
        {"org_id": True},
        {"org_id": 7},
        {"org_id": {"id": "{org}"}},
        {"org_id": "{org}", "sub": ["alice"]},
        {"org_id": "{org}", "sub": 42},
        {"org_id": "{org}", "sub": True},
        {"org_id": "{org}", "org_role": ["owner"]},
        {"org_id": "{org}", "org_role": False},
        {"org_id": "{org}", "scope": ["threads:read", 1]},
    ],
    ids=lambda c: ",".join(f"{k}={type(v).__name__}" for k, v in c.items()),
)
async def test_identity_claims_that_are_not_strings_are_401_and_create_nothing(resources, claims):
    """Not `str()`-ed into an org named `['acme']` or `True`, nor a user named `42`."""
    org = f"claims-{uuid.uuid4().hex[:6]}"
    payload = {
        "sub": "alice",
        "exp": int(time.time()) + 3600,
        **{k: json.loads(json.dumps(v).replace("{org}", org)) for k, v in claims.items()},
    }
    orgs = Orgs(resources.db, resources.redis)
    auth = Authenticator(Settings(jwt_secret=JWT_SECRET), orgs)
    with pytest.raises(Unauthenticated, match=r"must (be a string|hold strings)"):
        await auth.authenticate(_headers(jwt.encode(payload, JWT_SECRET, algorithm="HS256")))
    for created in (org, str([org]), "True", "7"):
        with pytest.raises(NotFound):
            await orgs.get_org(Principal(created, "probe"))


@pytest.mark.parametrize("owner", ["shared", "svc:ci"])
async def test_an_org_owner_is_a_person(resources, owner):
    orgs = Orgs(resources.db, resources.redis)
    org = f"founder-{uuid.uuid4().hex[:6]}"
    with pytest.raises(InvalidIdentifier, match="reserved"):
        await orgs.create_org(org, org, owner=owner)
    with pytest.raises(InvalidIdentifier, match="reserved"):
        await orgs.create_org_with_key(org, org, owner=owner, key_name="first")
    with pytest.raises(NotFound):
        await orgs.get_org(Principal(org, "probe"))


async def test_a_cached_key_is_trusted_only_with_the_generation_it_was_confirmed_with(
    resources, org_ids
):
    """The key cache (api/key_cache.py) serves a key only while the org's generation, as
    the request's rate-limit call reads it, is the one seen before its last lookup: a new
    generation, or none (Valkey out of reach), sends it to Postgres, where it is revoked."""
    org = org_ids[0]
    orgs = Orgs(resources.db, resources.redis)
    owner = Principal(org, "olga", Role.OWNER)
    await orgs.create_org(org, "K", owner="olga")
    secret, record = await orgs.create_api_key(owner, role=Role.MEMBER)
    keys = KeyCache(orgs)
    generation: str | None = "g1"
    checked = []

    async def check(principal: Principal, key_id: uuid.UUID) -> str | None:
        checked.append((principal.org_id, key_id))
        return generation

    for _ in range(3):
        resolved = await keys.resolve(secret, check)
        assert resolved is not None and resolved[1] == record["key_id"]
    assert checked == [(org, record["key_id"])] * 3
    await orgs.revoke_api_key(owner, record["key_id"])
    assert await keys.resolve(secret, check) is not None  # "g1" still: the cached entry
    generation = None
    assert await keys.resolve(secret, check) is None
    generation = "g1"
    assert await keys.resolve(secret, check) is None  # forgotten, looked up again
