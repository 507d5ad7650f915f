"""The scope each route needs, checked in one place: an app-wide dependency keyed by the
matched route's method and path template.

A credential without scopes keeps what its role allows; one with scopes (an API key's, a
JWT's `scope`/`permissions` claim, a custom auth handler's `permissions`) reaches only the
routes whose scope it holds, and its role still applies. README "Scopes" is this table.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from tenantgraph.api.identity import request_identity
from tenantgraph.errors import Forbidden

__all__ = ["PLATFORM", "PUBLIC", "ROUTE_SCOPES", "SELF", "require_route_scope"]

# Routes anyone may call: no credential, no scope.
PUBLIC = frozenset({("GET", "/ok"), ("GET", "/ready"), ("GET", "/info"), ("GET", "/metrics")}) | {
    # A browser's feedback: the signed token in the path is the credential (one run, one key).
    ("POST", "/feedback/tokens/{token}"),
    # Providers' webhooks: no credential of ours, each request verified by the signature of
    # the channel connection it names (api/channels/).
    ("POST", "/channels/slack/events"),
    ("POST", "/channels/slack/interactions"),
    ("GET", "/channels/whatsapp/webhook"),
    ("POST", "/channels/whatsapp/webhook"),
    # The console's static files (api/console.py): a page with no data of its own.
    ("GET", "/ui"),
    ("GET", "/ui/{path:path}"),
}
# Routes every tenant credential may call whatever its scopes: they describe the caller.
SELF = frozenset({("GET", "/me")})
# Routes of the platform admin token only (not a tenant credential: scopes do not apply).
PLATFORM = frozenset({("POST", "/orgs"), ("GET", "/orgs"), ("DELETE", "/orgs/{org_id}")})

_T, _A, _R, _C = (
    "/threads/{thread_id}",
    "/assistants/{assistant_id}",
    "/runs/{run_id}",
    "/runs/crons",
)
_TR = _T + "/runs/{run_id}"
_SESSION = "/sessions/{assistant_id}/{session_id}"
_ORG = "/orgs/{org_id}"

ROUTE_SCOPES: dict[tuple[str, str], str] = {
    **dict.fromkeys(
        [
            ("POST", "/assistants/search"),
            ("POST", "/assistants/count"),
            ("GET", _A),
            ("GET", _A + "/graph"),
            ("GET", _A + "/schemas"),
            ("GET", _A + "/subgraphs"),
            ("GET", _A + "/subgraphs/{namespace}"),
            ("POST", _A + "/versions"),
        ],
        "assistants:read",
    ),
    **dict.fromkeys(
        [("POST", "/assistants"), ("PATCH", _A), ("DELETE", _A), ("POST", _A + "/latest")],
        "assistants:write",
    ),
    **dict.fromkeys(
        [
            ("POST", "/threads/search"),
            ("POST", "/threads/count"),
            ("GET", _T),
            ("GET", _T + "/state"),
            ("GET", _T + "/state/{checkpoint_id}"),
            ("POST", _T + "/state/checkpoint"),
            ("POST", _T + "/history"),
            ("GET", _T + "/history"),
            ("GET", _SESSION + "/messages"),
        ],
        "threads:read",
    ),
    **dict.fromkeys(
        [
            ("POST", "/threads"),
            ("PATCH", _T),
            ("DELETE", _T),
            ("POST", _T + "/copy"),
            ("POST", _T + "/state"),
            ("POST", _SESSION + "/messages"),
            ("DELETE", _SESSION),
            ("POST", "/threads/prune"),
            ("POST", _T + "/escalation"),
        ],
        "threads:write",
    ),
    **dict.fromkeys(
        [
            ("POST", _T + "/runs"),
            ("POST", "/runs"),
            ("POST", _T + "/runs/stream"),
            ("POST", "/runs/stream"),
            ("POST", _T + "/runs/wait"),
            ("POST", "/runs/wait"),
            ("POST", "/runs/batch"),
            ("POST", _TR + "/cancel"),
            ("POST", "/runs/cancel"),
            ("DELETE", _TR),
        ],
        "runs:create",
    ),
    **dict.fromkeys(
        [
            ("GET", _T + "/runs"),
            ("GET", _TR),
            ("GET", _R),
            ("GET", _TR + "/join"),
            ("GET", _R + "/join"),
            ("GET", _TR + "/stream"),
            ("GET", _R + "/stream"),
            ("GET", _T + "/stream"),
        ],
        "runs:read",
    ),
    **dict.fromkeys(
        [("POST", _C + "/search"), ("POST", _C + "/count"), ("GET", _C + "/{cron_id}")],
        "crons:read",
    ),
    **dict.fromkeys(
        [
            ("POST", _C),
            ("PATCH", _C + "/{cron_id}"),
            ("DELETE", _C + "/{cron_id}"),
            ("POST", _T + "/runs/crons"),
        ],
        "crons:write",
    ),
    **dict.fromkeys(
        [
            ("GET", "/store/items"),
            ("POST", "/store/items/search"),
            ("POST", "/store/namespaces"),
            ("GET", "/store/usage"),
            ("GET", "/store/users/{user_id}/export"),
        ],
        "store:read",
    ),
    **dict.fromkeys(
        [
            ("PUT", "/store/items"),
            ("DELETE", "/store/items"),
            ("DELETE", "/store/users/{user_id}"),
            ("DELETE", "/store/org"),
        ],
        "store:write",
    ),
    ("POST", "/mcp"): "mcp:invoke",
    **dict.fromkeys(
        [
            ("POST", "/a2a/{assistant_id}"),
            ("GET", "/a2a/{assistant_id}/.well-known/agent-card.json"),
            ("GET", "/.well-known/agent-card.json"),
        ],
        "a2a:invoke",
    ),
    **dict.fromkeys(
        [
            ("GET", _ORG),
            ("GET", _ORG + "/members"),
            ("PUT", _ORG + "/members/{user_id}"),
            ("DELETE", _ORG + "/members/{user_id}"),
            ("POST", _ORG + "/keys"),
            ("GET", _ORG + "/keys"),
            ("DELETE", _ORG + "/keys/{key_id}"),
            ("GET", _ORG + "/limits"),
            ("PUT", _ORG + "/limits"),
            ("GET", _ORG + "/webhooks"),
            ("PUT", _ORG + "/webhooks"),
            ("GET", _ORG + "/webhooks/secret"),
            ("POST", _ORG + "/webhooks/secret"),
            ("POST", _ORG + "/channels"),
            ("GET", _ORG + "/channels"),
            ("GET", _ORG + "/channels/{channel_id}"),
            ("PATCH", _ORG + "/channels/{channel_id}"),
            ("DELETE", _ORG + "/channels/{channel_id}"),
        ],
        "admin",
    ),
    **dict.fromkeys(
        [
            ("POST", _R + "/feedback"),
            ("POST", _TR + "/feedback"),
        ],
        "feedback:write",
    ),
    **dict.fromkeys([("POST", "/feedback/search"), ("GET", "/feedback/stats")], "feedback:read"),
    **dict.fromkeys(
        [
            ("GET", "/experiments"),
            ("GET", "/experiments/{experiment_id}"),
        ],
        "assistants:read",
    ),
    **dict.fromkeys(
        [
            ("POST", "/experiments"),
            ("PATCH", "/experiments/{experiment_id}"),
            ("POST", "/experiments/{experiment_id}/status"),
            ("GET", "/experiments/{experiment_id}/results"),
        ],
        "admin",
    ),
}


async def require_route_scope(request: HTTPConnection) -> None:
    """App-wide dependency: a scoped credential holds the scope of the matched route. A
    route in no table is refused to every scoped credential (fails closed). A WebSocket
    authenticates in its first message and checks its scope itself (api/channels/)."""
    identity = request_identity(request.scope)
    principal = identity.principal if identity is not None else None
    if principal is None or principal.scopes is None:
        return
    route = request.scope.get("route")
    key = (request.scope["method"], getattr(route, "path", ""))
    if key in PUBLIC or key in SELF:
        return
    needed = ROUTE_SCOPES.get(key)
    if needed is None:
        raise Forbidden("this route is not open to scoped credentials")
    if needed not in principal.scopes:
        raise Forbidden(f"this credential lacks the scope {needed!r}")
