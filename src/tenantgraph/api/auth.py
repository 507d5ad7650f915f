"""Authentication: credentials in, a verified Principal out — or 401/403, never a default.

Accepted credentials, in `Authorization: Bearer …` or `X-Api-Key`:
- API keys `tg_…`, per org with a role, stored hashed, revocable.
- JWTs: HS256 with `TENANTGRAPH_JWT_SECRET`, or RS256/ES256 from `TENANTGRAPH_JWKS_URL`.
  In `claims` mode the org and role are signed claims; in `membership` mode the org is the
  `X-Org-Id` header and the role comes from the memberships table.
- The platform admin token `TENANTGRAPH_ADMIN_TOKEN`, which only manages organisations.
- With a custom auth handler (`auth.path`, api/custom_auth.py), every credential but API
  keys and the admin token goes to the handler instead of the JWT checks.
With nothing configured, only API keys work: the server never opens up. A key's or token's
scopes narrow its role (api/scopes.py).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jwt
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantgraph.api import custom_auth
from tenantgraph.api.errors import error_response
from tenantgraph.api.identity import IDENTITY, Identity, request_identity
from tenantgraph.api.key_cache import Check, KeyCache
from tenantgraph.api.middleware.ratelimit import check_request
from tenantgraph.errors import Forbidden, TenantgraphError, Unauthenticated
from tenantgraph.scope import InvalidIdentifier, Principal, Role, validate_person_id
from tenantgraph.services.orgs import API_KEY_PREFIX, Orgs
from tenantgraph.settings import Settings

if TYPE_CHECKING:
    from langgraph_sdk import Auth

    from tenantgraph.api.state import AppState

__all__ = [
    "PUBLIC_PATHS",
    "PUBLIC_PREFIXES",
    "AuthMiddleware",
    "Authenticator",
    "current_principal",
    "require_admin",
    "require_platform_admin",
    "tenant_principal",
]

KNOWN_ORG_SECONDS = 30.0
# A verified token's claims are reused for its next requests (until it expires, at most
# this long): checking the signature again costs ~0.2 ms a request. A key removed from
# the JWKS stops working for tokens it signed within this time.
VERIFIED_TOKEN_SECONDS = 60.0
VERIFIED_TOKENS_MAX = 10_000
PUBLIC_PATHS = frozenset({"/ok", "/ready", "/info", "/metrics", "/docs", "/redoc", "/openapi.json"})
# Paths that carry their own credential (a run's signed feedback token), checked by the route.
PUBLIC_PREFIXES = ("/feedback/tokens/",)
# The console's static files (api/console.py): the page asks for a credential, then calls
# the API with it like any other client.
PUBLIC_PATHS |= {"/ui"}
PUBLIC_PREFIXES += ("/ui/",)
# Providers' webhooks carry no credential of ours: each request is verified by its
# signature against the connection it names (api/channels/).
PUBLIC_PATHS |= {
    "/channels/slack/events",
    "/channels/slack/interactions",
    "/channels/whatsapp/webhook",
}


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by exact name (Auth0's `https://…/org`), else by dotted path (Supabase's
    `app_metadata.org_id`)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any, name: str) -> str | None:
    """An identity claim (org, user, role) as the string it must be, or None when absent: a
    list, number, boolean or object is refused, never turned into an id by `str()`."""
    if value is None or isinstance(value, str):
        return value
    raise Unauthenticated(f"invalid identity: the {name!r} claim must be a string")


class Authenticator:
    """Turns request headers into an Identity using the configured credential types."""

    def __init__(self, settings: Settings, orgs: Orgs, custom: Auth | None = None) -> None:
        self.settings = settings
        self.orgs = orgs
        self.keys = KeyCache(orgs)
        self.custom = custom
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        # Orgs seen to exist recently, so claims mode does not write on every request; the
        # expiry bounds how long an org deleted by another process is assumed present.
        self._known_orgs: dict[str, float] = {}
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}

    async def authenticate(
        self, headers: Headers, scope: Scope | None = None, check: Check | None = None
    ) -> Identity:
        """The caller of a request (`scope`: the request's, for a custom auth handler).
        `check`: spends an API key's rate-limit tokens and reads its org's key generation,
        so the key may come from the cache (api/key_cache.py); without it, Postgres."""
        credential = self._credential(headers)
        admin = self.settings.admin_token
        if (
            credential is not None
            and admin
            and hmac.compare_digest(credential.encode(), admin.get_secret_value().encode())
        ):
            return Identity(platform_admin=True)
        key_id, user = None, None
        if credential is not None and credential.startswith(API_KEY_PREFIX):
            resolved = await (
                self.orgs.resolve_api_key(credential)
                if check is None
                else self.keys.resolve(credential, check)
            )
            if resolved is None:
                raise Unauthenticated("invalid or revoked API key")
            principal, key_id = resolved
        elif self.custom is not None and scope is not None:
            # The handler is authoritative for every other credential, or none.
            user = await custom_auth.authenticate(self.custom, scope)
            principal = await self._from_user(user, headers)
        elif credential is None:
            raise Unauthenticated(
                "missing credentials: send Authorization: Bearer <token> or X-Api-Key"
            )
        else:
            principal = await self._from_jwt(credential, headers)
        requested = headers.get("x-org-id")
        if requested is not None and requested != principal.org_id:
            raise Forbidden("the credential was not issued for this organisation")
        return Identity(principal=principal, api_key_id=key_id, auth_user=user)

    async def _from_user(self, user: custom_auth.AuthUser, headers: Headers) -> Principal:
        """A custom auth user's principal: its org and role fields (named as the JWT
        claims), else membership mode's `X-Org-Id`, else 403."""
        org_id = _text(_claim(user, self.settings.org_claim), self.settings.org_claim)
        if org_id is None and self.settings.org_mode != "membership":
            raise Forbidden("no organisation: the user has no org and no membership mode")
        return await self._principal(
            _text(user.get("identity"), "identity"),
            org_id,
            _text(_claim(user, self.settings.role_claim), self.settings.role_claim),
            user.permissions if "permissions" in user else None,
            headers,
        )

    @staticmethod
    def _credential(headers: Headers) -> str | None:
        authorization = headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return headers.get("x-api-key") or None

    async def _from_jwt(self, token: str, headers: Headers) -> Principal:
        claims = await self._verify(token)
        org_id = None
        if self.settings.org_mode != "membership":
            org_id = _text(_claim(claims, self.settings.org_claim), self.settings.org_claim)
            if org_id is None:
                raise Unauthenticated(f"token has no {self.settings.org_claim!r} claim")
        return await self._principal(
            _text(_claim(claims, self.settings.user_claim), self.settings.user_claim),
            org_id,
            _text(_claim(claims, self.settings.role_claim), self.settings.role_claim),
            self._permissions(claims),
            headers,
        )

    async def _principal(
        self,
        user_id: str | None,
        org_id: str | None,
        role: str | None,
        permissions: list[str] | None,
        headers: Headers,
    ) -> Principal:
        """A verified user's principal: in `org_id` with `role` (the org is created on first
        use), or, with no org, in the `X-Org-Id` org with the role of its membership."""
        try:
            user_id = validate_person_id(user_id, "the token's user")  # not `shared`, `svc:…`
        except InvalidIdentifier as exc:
            raise Unauthenticated(f"invalid identity in token: {exc}") from exc
        if org_id is None:
            org_id = headers.get("x-org-id")
            if not org_id:
                raise Forbidden("membership mode: send the organisation in X-Org-Id")
            try:
                candidate = Principal(org_id, user_id)
            except InvalidIdentifier as exc:
                raise Unauthenticated(f"invalid identity: {exc}") from exc
            member_role = await self.orgs.get_member_role(candidate)
            if member_role is None:
                raise Forbidden("not a member of this organisation")
            return Principal(org_id, user_id, member_role, permissions=permissions)
        try:
            principal = Principal(
                org_id, user_id, Role(role or Role.MEMBER.value), permissions=permissions
            )
        except (InvalidIdentifier, ValueError) as exc:
            raise Unauthenticated(f"invalid identity in token: {exc}") from exc
        now = time.monotonic()
        if self._known_orgs.get(principal.org_id, 0.0) < now:
            await self.orgs.ensure_org(principal)
            self._known_orgs[principal.org_id] = now + KNOWN_ORG_SECONDS
        return principal

    def _permissions(self, claims: Mapping[str, Any]) -> list[str] | None:
        """The token's scopes: the first configured claim present, an OAuth `scope` string
        or a list (Auth0's `permissions`); None if it has none."""
        for name in self.settings.scope_claims:
            value = _claim(claims, name)
            if isinstance(value, str) and value.strip():
                return value.split()
            if isinstance(value, list):
                if not all(isinstance(v, str) for v in value):
                    raise Unauthenticated(f"invalid token: the {name!r} claim must hold strings")
                return list(value)
        return None

    async def _verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it verifies; reused while it is valid (see above)."""
        now = time.time()
        known = self._verified.get(token)
        if known is not None and now < known[0]:
            return known[1]
        claims = await self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS_MAX:
            self._verified = {t: v for t, v in self._verified.items() if now < v[0]}
            if len(self._verified) >= VERIFIED_TOKENS_MAX:
                self._verified.clear()
        self._verified[token] = (min(float(claims["exp"]), now + VERIFIED_TOKEN_SECONDS), claims)
        return claims

    async def _decode(self, token: str) -> dict[str, Any]:
        options = {"require": ["sub", "exp"]}
        common = {
            "audience": self.settings.jwt_audience,
            "issuer": self.settings.jwt_issuer,
            "options": options,
        }
        try:
            if self._jwks is not None:
                key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                return jwt.decode(token, key.key, algorithms=["RS256", "ES256"], **common)
            if self.settings.jwt_secret is not None:
                secret = self.settings.jwt_secret.get_secret_value()
                return jwt.decode(token, secret, algorithms=["HS256"], **common)
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        raise Unauthenticated("invalid credentials: no token issuer is configured")

    def forget_org(self, org_id: str) -> None:
        self._known_orgs.pop(org_id, None)


class AuthMiddleware:
    """Authenticates every request but the public ones and stores the Identity in
    `scope["state"]` (api/identity.py), so later middlewares and routes can key on it."""

    def __init__(self, app: ASGIApp, *, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return

        async def check(principal: Principal, key_id: uuid.UUID) -> str | None:
            identity = Identity(principal=principal, api_key_id=key_id)
            decision = await check_request(self.state, scope, identity, key_generation=True)
            return decision.key_generation

        try:
            identity = await self.state.authenticator.authenticate(
                Headers(scope=scope), scope, check
            )
        except TenantgraphError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except custom_auth.HandlerRejected as exc:
            await exc.response()(scope, receive, send)
            return
        scope.setdefault("state", {})[IDENTITY] = identity
        await self.app(scope, receive, send)


# --- route dependencies ----------------------------------------------------------------


# Dependencies are `async def` although they do no I/O: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per dependency per request.


def _identity(request: Request) -> Identity:
    identity = request_identity(request.scope)
    if identity is None:
        raise Unauthenticated("missing credentials")
    return identity


def tenant_principal(request: Request) -> Principal:
    """The caller as a tenant principal; the platform admin token is not one."""
    principal = _identity(request).principal
    if principal is None:
        raise Forbidden("this route needs an organisation credential")
    return principal


async def current_principal(request: Request) -> Principal:
    """Route dependency: `tenant_principal`."""
    return tenant_principal(request)


async def require_admin(request: Request) -> Principal:
    principal = tenant_principal(request)
    principal.require_admin()
    return principal


async def require_platform_admin(request: Request) -> None:
    if not _identity(request).platform_admin:
        raise Forbidden("this route needs the platform admin token")
