"""LangGraph custom auth: the `langgraph_sdk.Auth` object named by the config file's
`auth.path`, run as LangGraph Platform runs it.

`@auth.authenticate` turns any credential but a tenantgraph API key into a user (api/auth.py
makes the principal of it). `@auth.on…` handlers run per resource and action, for every
tenant caller: `None`/`True` allow, `False` is 403, a dict is a metadata filter that narrows
what the caller reads and is stamped on what the caller creates. They only ever narrow: the
org and user isolation below them is unchanged.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantgraph.api.errors import error_response
from tenantgraph.api.identity import request_identity
from tenantgraph.errors import Forbidden, NotFound, TenantgraphError
from tenantgraph.runtime.graphs import load_graph_spec
from tenantgraph.runtime.server_keys import AuthUser
from tenantgraph.settings import Settings

if TYPE_CHECKING:
    from tenantgraph.api.state import AppState
    from tenantgraph.scope import Principal

__all__ = ["AuthUser", "CustomAuthMiddleware", "HandlerRejected", "authenticate", "load_auth"]


def load_auth(settings: Settings) -> Auth | None:
    """The config file's `auth.path` object (`./auth.py:auth`), or None if not configured."""
    spec = settings.config_file.auth.get("path")
    if not spec:
        return None
    auth = load_graph_spec(spec, settings.config_file.base_dir)
    if not isinstance(auth, Auth):
        raise ValueError(f"auth.path {spec!r} is not a langgraph_sdk.Auth object")
    return auth


class HandlerRejected(Exception):
    """The handler raised `Auth.exceptions.HTTPException`: answered with its status."""

    def __init__(self, exc: AuthHTTPException) -> None:
        super().__init__(exc.detail)
        self.exc = exc

    def response(self) -> JSONResponse:
        exc = self.exc
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


async def authenticate(auth: Auth, scope: Scope) -> AuthUser:
    """Call `@auth.authenticate` with the arguments it names, as the Platform does."""
    handler = auth._authenticate_handler
    if handler is None:
        raise HandlerRejected(AuthHTTPException(401, "no authentication handler is configured"))
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization")
    available = {
        "request": lambda: Request(scope),
        "scope": lambda: scope,
        "path": lambda: scope["path"],
        "method": lambda: scope["method"],
        "path_params": lambda: scope.get("path_params") or {},
        "query_params": lambda: QueryParams(scope.get("query_string", b"")),
        "headers": lambda: headers,
        "authorization": lambda: authorization.decode() if authorization else None,
    }
    names = inspect.signature(handler).parameters
    try:
        result = await handler(**{n: available[n]() for n in names if n in available})
    except AuthHTTPException as exc:
        raise HandlerRejected(exc) from exc
    if isinstance(result, str):
        return AuthUser(identity=result)
    if isinstance(result, Mapping):
        return AuthUser(result)
    if hasattr(result, "identity"):
        return AuthUser(
            identity=result.identity,
            permissions=list(getattr(result, "permissions", None) or []),
            display_name=getattr(result, "display_name", result.identity),
        )
    raise HandlerRejected(AuthHTTPException(500, "the authentication handler returned no user"))


def _handler(auth: Auth, resource: str, action: str) -> Any:
    """The handler the Platform picks: the most specific registered, else the global one."""
    for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
        if key in auth._handlers:
            return auth._handlers[key][-1]
    return auth._global_handlers[-1] if auth._global_handlers else None


def _containment(filters: Mapping[str, Any]) -> dict[str, Any]:
    """A handler's filter as a metadata containment object: `{"k": v}` and `{"$eq": v}`
    match a value, `{"$contains": v}` a list holding it."""
    out: dict[str, Any] = {}
    for key, condition in filters.items():
        if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
            out[key] = condition["$eq"]
        elif isinstance(condition, Mapping) and set(condition) == {"$contains"}:
            out[key] = [condition["$contains"]]
        elif isinstance(condition, Mapping):
            raise Forbidden(f"unsupported filter operator in {dict(condition)!r}")
        else:
            out[key] = condition
    return out


def _contains(metadata: Any, wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        have = (metadata or {}).get(key)
        if isinstance(value, list):
            if not isinstance(have, list) or not all(v in have for v in value):
                return False
        elif have != value:
            return False
    return True


# Per route: the resource and action a handler sees, and what a filter does there:
# "stamp" (merged into the body's metadata: creates, stateless runs and searches), "check"
# (the addressed thread's or assistant's metadata must match, else 404) or "run" (a
# stateless run's metadata, or its thread's, must match). Elsewhere the handler allows or
# denies, and a filter is refused (403: it could not be applied).
_T, _A, _C = "/threads/{thread_id}", "/assistants/{assistant_id}", "/runs/crons"
_ROUTES: list[tuple[str, str, str, str, str | None]] = [
    ("POST", "/threads", "threads", "create", "stamp"),
    ("POST", "/threads/search", "threads", "search", "stamp"),
    ("POST", "/threads/count", "threads", "search", "stamp"),
    ("GET", _T, "threads", "read", "check"),
    ("PATCH", _T, "threads", "update", "check"),
    ("DELETE", _T, "threads", "delete", "check"),
    ("POST", _T + "/copy", "threads", "read", "check"),
    ("POST", _T + "/state", "threads", "update", "check"),
    ("POST", _T + "/runs", "threads", "create_run", "check"),
    ("POST", _T + "/runs/stream", "threads", "create_run", "check"),
    ("POST", _T + "/runs/wait", "threads", "create_run", "check"),
    ("POST", _T + "/runs/{run_id}/cancel", "threads", "update", "check"),
    ("DELETE", _T + "/runs/{run_id}", "threads", "delete", "check"),
    ("POST", _T + "/runs/crons", "crons", "create", None),
    ("GET", _T + "/{rest:path}", "threads", "read", "check"),
    ("POST", _T + "/{rest:path}", "threads", "read", "check"),
    ("POST", "/runs", "threads", "create_run", "stamp"),
    ("POST", "/runs/stream", "threads", "create_run", "stamp"),
    ("POST", "/runs/wait", "threads", "create_run", "stamp"),
    ("POST", "/runs/batch", "threads", "create_run", None),
    ("POST", _C, "crons", "create", None),
    ("POST", _C + "/search", "crons", "search", None),
    ("POST", _C + "/count", "crons", "search", None),
    ("GET", _C + "/{cron_id}", "crons", "read", None),
    ("PATCH", _C + "/{cron_id}", "crons", "update", None),
    ("DELETE", _C + "/{cron_id}", "crons", "delete", None),
    ("GET", "/runs/{run_id}", "threads", "read", "run"),
    ("GET", "/runs/{run_id}/join", "threads", "read", "run"),
    ("GET", "/runs/{run_id}/stream", "threads", "read", "run"),
    ("POST", "/runs/cancel", "threads", "update", None),
    ("POST", "/assistants", "assistants", "create", "stamp"),
    ("POST", "/assistants/search", "assistants", "search", "stamp"),
    ("POST", "/assistants/count", "assistants", "search", "stamp"),
    ("GET", _A, "assistants", "read", "check"),
    ("PATCH", _A, "assistants", "update", "check"),
    ("DELETE", _A, "assistants", "delete", "check"),
    ("GET", _A + "/{rest:path}", "assistants", "read", "check"),
    ("POST", _A + "/{rest:path}", "assistants", "read", "check"),
    ("PUT", "/store/items", "store", "put", None),
    ("GET", "/store/items", "store", "get", None),
    ("DELETE", "/store/items", "store", "delete", None),
    ("POST", "/store/items/search", "store", "search", None),
    ("POST", "/store/namespaces", "store", "list_namespaces", None),
    # MCP and A2A calls start runs (their JSON-RPC methods are not resources of their own):
    # the create_run handler allows or denies them, and a filter cannot be applied (403).
    ("POST", "/mcp", "threads", "create_run", None),
    ("POST", "/a2a/{assistant_id}", "threads", "create_run", None),
    ("GET", "/a2a/{assistant_id}/.well-known/agent-card.json", "assistants", "read", "check"),
    ("GET", "/.well-known/agent-card.json", "assistants", "read", None),
]
_COMPILED = [(m, compile_path(p)[0], r, a, f) for m, p, r, a, f in _ROUTES]


def _route(method: str, path: str) -> tuple[str, str, str | None, dict[str, str]] | None:
    for m, regex, resource, action, effect in _COMPILED:
        match = regex.match(path) if m == method else None
        if match:
            return resource, action, effect, match.groupdict()
    return None


class CustomAuthMiddleware:
    """Runs the `@auth.on…` handler of each request's resource and action (after the auth
    middleware): denies, stamps the filter into a create's or search's body, or checks the
    addressed object's metadata against it."""

    def __init__(self, app: ASGIApp, *, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = self.state.custom_auth if scope["type"] == "http" else None
        identity = request_identity(scope) if auth is not None else None
        if auth is None or identity is None or identity.principal is None:
            await self.app(scope, receive, send)
            return
        route = _route(scope["method"], scope["path"])
        handler = _handler(auth, *route[:2]) if route else None
        if route is None or handler is None:
            await self.app(scope, receive, send)
            return
        resource, action, effect, params = route
        body = await _read_body(receive)
        try:
            payload = json.loads(body) if body else {}
            query = dict(QueryParams(scope.get("query_string", b"")))
            value = {**query, **params, **(payload if isinstance(payload, dict) else {})}
            user = identity.auth_user or AuthUser(
                identity=identity.principal.user_id,
                permissions=list(identity.principal.permissions or []),
            )
            ctx = Auth.types.AuthContext(
                user=user, permissions=user.permissions, resource=resource, action=action
            )
            result = await handler(ctx=ctx, value=value)
            if result is False:
                raise Forbidden("Forbidden")
            if isinstance(result, Mapping):
                await self._apply(identity.principal, resource, effect, params, value, result)
            if isinstance(payload, dict) and isinstance(value.get("metadata"), dict):
                # The handler's edits of `metadata` (and a stamped filter) reach the route.
                body = json.dumps({**payload, "metadata": value["metadata"]}).encode()
        except AuthHTTPException as exc:
            await HandlerRejected(exc).response()(scope, receive, send)
            return
        except TenantgraphError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except json.JSONDecodeError:
            pass  # the route answers the malformed body itself
        await self.app(scope, _replay(body, receive), send)

    async def _apply(
        self,
        principal: Principal,
        resource: str,
        effect: str | None,
        params: dict[str, str],
        value: dict[str, Any],
        result: Mapping[str, Any],
    ) -> None:
        """Apply a handler's filter: stamp it into `value`'s metadata, or check the addressed
        object's metadata (404 if the filter hides it); elsewhere a filter is refused (403),
        since it could not be applied."""
        wanted = _containment(result)
        if effect == "stamp":
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            value["metadata"] = {**metadata, **wanted}
            return
        if effect not in ("check", "run"):
            raise Forbidden(f"a filter cannot be applied to {resource} on this route")
        try:
            if effect == "run":
                row = await self.state.runs.get(principal, uuid.UUID(params["run_id"]))
                if not _contains(row.get("metadata"), wanted):
                    row = await self.state.threads.get(principal, row["thread_id"])
            elif resource == "threads":
                row = await self.state.threads.get(principal, uuid.UUID(params["thread_id"]))
            else:
                row = await self.state.assistants.get(principal, params["assistant_id"])
        except ValueError:
            return  # a malformed id: the route answers it
        if not _contains(row.get("metadata"), wanted):
            raise NotFound(f"{resource[:-1].capitalize()} not found")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the (possibly rewritten) body to the app once, then
    the client's own messages (a streaming route listens for its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
