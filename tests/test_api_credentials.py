"""Adversarial credential paths beside the basic ones of test_api_auth: API keys as bearer
tokens, ES256 tokens from a JWKS, membership mode through a real server, and the database
rules the server's credentials rest on (the runtime role's rights, the definer functions)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.datastructures import Headers

from tenantgraph.api.auth import Authenticator
from tenantgraph.db.migrate import APP_ROLE, SCHEMA, MigrationError, migrate
from tenantgraph.errors import Unauthenticated
from tenantgraph.scope import Principal
from tenantgraph.services.orgs import Orgs
from tenantgraph.settings import Settings

from .api_fixtures import ADMIN_TOKEN, mint, start_api_server
from .jwks import serve_jwks


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_api_key_sent_as_a_bearer_token_is_the_key_and_nothing_more(api_url, tenants):
    """`Authorization: Bearer tg_…` authenticates as the key's user, is refused once revoked,
    and cannot be pointed at another org with X-Org-Id."""
    admin = tenants.a_admin
    made = await admin.http.post(f"/orgs/{admin.org}/keys", json={"role": "member"})
    key, key_id = made.json()["key"], made.json()["key_id"]
    async with httpx.AsyncClient(base_url=api_url, headers=_bearer(key)) as client:
        thread = await client.post("/threads", json={})
        assert thread.status_code == 200, thread.text
        assert thread.json()["metadata"]["owner"] == admin.user
        elsewhere = await client.post(
            "/threads", json={}, headers={"X-Org-Id": tenants.b_admin.org}
        )
        assert elsewhere.status_code == 403
        assert (await client.get(f"/orgs/{admin.org}/keys")).status_code == 403  # a member key
        assert (await admin.http.delete(f"/orgs/{admin.org}/keys/{key_id}")).status_code == 204
        revoked = await client.post("/threads", json={})
        assert revoked.status_code == 401
        assert revoked.json()["detail"] == "invalid or revoked API key"
    assert await tenants.b_admin.sdk.threads.count() == 0
    assert await admin.sdk.threads.count() == 1


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks_url(ec_key) -> Iterator[str]:
    """A JWKS endpoint publishing `ec_key`'s public half as kid `ec1`."""
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    with serve_jwks(public, "ec1") as url:
        yield url


async def test_es256_tokens_from_a_jwks_url_and_no_other_key(resources, jwks_url, ec_key):
    auth = Authenticator(Settings(jwks_url=jwks_url), Orgs(resources.db, resources.redis))
    claims = {"sub": "ec", "org_id": "ec-org", "exp": int(time.time()) + 3600}
    token = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "ec1"})
    headers = Headers({"authorization": f"Bearer {token}"})
    assert (await auth.authenticate(headers)).principal == Principal("ec-org", "ec")
    stranger = ec.generate_private_key(ec.SECP256R1())
    for forged in (
        jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "ec1"}),
        jwt.encode(claims, "a-shared-secret-of-sufficient-length", headers={"kid": "ec1"}),
        jwt.encode({**claims, "exp": int(time.time()) - 10}, ec_key, "ES256", {"kid": "ec1"}),
    ):
        with pytest.raises(Unauthenticated, match="invalid token"):
            await auth.authenticate(Headers({"authorization": f"Bearer {forged}"}))


def test_membership_mode_through_a_server_follows_the_memberships_table(
    api_env, tmp_path, resources
):
    """The org comes from X-Org-Id and the role from the memberships table, whatever the
    token claims; a member removed by the owner is refused on their next request."""
    server = start_api_server(tmp_path, TENANTGRAPH_ORG_MODE="membership", **api_env)
    org = f"mm-{uuid.uuid4().hex[:6]}"
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            made = http.post(
                "/orgs", json={"org_id": org, "owner": "olga"}, headers=_bearer(ADMIN_TOKEN)
            )
            assert made.status_code == 200, made.text
            olga = {**_bearer(mint("ignored", "olga", "member")), "X-Org-Id": org}
            # Olga's token says member of "ignored"; the table says owner of `org`.
            assert (
                http.put(
                    f"/orgs/{org}/members/max", json={"role": "member"}, headers=olga
                ).status_code
                == 200
            )
            # Max's token claims owner; the table says member.
            max_ = {**_bearer(mint(org, "max", "owner")), "X-Org-Id": org}
            thread = http.post("/threads", json={}, headers=max_)
            assert thread.status_code == 200 and thread.json()["metadata"]["owner"] == "max"
            assert http.get(f"/orgs/{org}/members", headers=max_).status_code == 403
            no_org = http.post("/threads", json={}, headers=_bearer(mint(org, "max", "owner")))
            assert no_org.status_code == 403
            assert "X-Org-Id" in no_org.json()["detail"]
            stranger = {**_bearer(mint(org, "eve", "owner")), "X-Org-Id": org}
            assert http.post("/threads", json={}, headers=stranger).status_code == 403
            assert http.delete(f"/orgs/{org}/members/max", headers=olga).status_code == 204
            removed = http.get(f"/threads/{thread.json()['thread_id']}", headers=max_)
            assert removed.status_code == 403
            assert removed.json()["detail"] == "not a member of this organisation"
            members = http.get(f"/orgs/{org}/members", headers=olga).json()
            assert [m["user_id"] for m in members] == ["olga"]
    finally:
        server.terminate()


@pytest.mark.parametrize("right", ["SUPERUSER", "BYPASSRLS"])
async def test_migrations_refuse_a_runtime_role_that_escapes_row_level_security(
    resources, fresh_database, right
):
    """The role is the cluster's, so the right is granted only for the call and taken back."""
    async with await psycopg.AsyncConnection.connect(
        resources.admin_conninfo, autocommit=True
    ) as admin:
        await admin.execute(f"ALTER ROLE {APP_ROLE} {right}")
        try:
            with pytest.raises(MigrationError, match="SUPERUSER or BYPASSRLS"):
                await migrate(fresh_database)
        finally:
            await admin.execute(f"ALTER ROLE {APP_ROLE} NO{right}")
        cur = await admin.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)
        )
        assert await cur.fetchone() == (False, False)
    async with await psycopg.AsyncConnection.connect(fresh_database) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {SCHEMA}.schema_migrations")
        assert (await cur.fetchone())[0] == 0  # refused before any migration ran
    assert len(await migrate(fresh_database)) > 0  # the same database, with the role fixed


# docs/architecture.md §3: the only cross-tenant functions, each granted to the runtime role.
SECURITY_DEFINER = {
    "claim_runs(worker_id text, max_runs integer, lease_seconds double precision,"
    " graph_ids text[])",
    "due_crons(max_crons integer)",
    "ensure_store_vector_index(dims integer, m integer, ef_construction integer)",
    "expired_threads(ttl_minutes double precision, keep_latest boolean, batch integer)",
    "gc_store_namespaces()",
    "index_store_vectors(batch integer)",
    "list_orgs(lim integer, off integer)",
    "resolve_api_key(hash bytea)",
    "sweep_feedback(batch integer, default_days integer)",
    "sweep_idempotency_records(batch integer)",
    "sweep_store_items(batch integer)",
    "resolve_channel(channel_type text, provider_id text)",
    "channel_verify_token_known(digest text)",
}


async def test_the_security_definer_functions_are_exactly_the_audited_ones(resources):
    async with await psycopg.AsyncConnection.connect(resources.admin_conninfo) as conn:
        cur = await conn.execute(
            "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',"
            " has_function_privilege(%s, p.oid, 'EXECUTE'),"
            " has_function_privilege('public', p.oid, 'EXECUTE')"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
            (APP_ROLE,),
        )
        rows = await cur.fetchall()
    assert {name for name, _, _ in rows} == SECURITY_DEFINER
    assert [name for name, granted, _ in rows if not granted] == []
    assert [name for name, _, public in rows if public] == []  # PUBLIC may execute none
