"""The keys of a run's config and context that the server owns, and the one rule that keeps
every client-supplied source of them (run and assistant `config` and `context`, the run's
`checkpoint`, a cron's payload) from reaching a graph. A `command` reaches only the graph's
state channels (`update`, `goto`, `resume`), never its config.

The scope keys (`org_id`, `user_id`, `assistant_id`, …) are dropped from what the client
sent and written by the server; `langgraph_…` keys (`langgraph_auth_user`, …) and LangGraph's
internal `__…` keys are dropped and, where LangGraph needs them, set by the server too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langgraph.version import __version__ as langgraph_version

from tenantgraph import __version__
from tenantgraph.scope import Principal

if TYPE_CHECKING:
    from langgraph.pregel import Pregel

__all__ = [
    "SERVER_CONFIGURABLE",
    "AuthUser",
    "auth_user",
    "client_keys",
    "context",
    "reserved",
    "run_metadata",
    "run_scope",
    "schema_context",
]

# The run's scope: a client value is dropped, the executor writes its own.
SERVER_CONFIGURABLE = frozenset(
    {"org_id", "user_id", "assistant_id", "thread_id", "run_id", "graph_id"}
)


def reserved(key: object) -> bool:
    """Whether a client may not set `key`: the scope, `langgraph_auth_user…`-style server
    keys and LangGraph's internal `__…` keys."""
    return not isinstance(key, str) or (
        key in SERVER_CONFIGURABLE or key.startswith(("langgraph_", "__"))
    )


def client_keys(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """`values` without the keys the server owns."""
    return {k: v for k, v in (values or {}).items() if not reserved(k)}


def context(merged: Mapping[str, Any] | None, configurable: Mapping[str, Any]) -> dict[str, Any]:
    """A run's context (assistant context < run context) as the graph receives it: the keys
    the server owns are dropped, and one the client named holds the server's value from the
    run's `configurable` (as `build_config` made it), so a context schema that declares
    `user_id` reads the caller's id, not a forged one."""
    merged = merged or {}
    named = {k: v for k, v in configurable.items() if reserved(k) and k in merged}
    return {**client_keys(merged), **named}


class AuthUser(dict):
    """The caller as LangGraph Platform hands it to auth handlers (`ctx.user`) and graphs
    (`config["configurable"]["langgraph_auth_user"]`): attributes and keys, JSON as a dict."""

    @property
    def identity(self) -> str:
        return self["identity"]

    @property
    def display_name(self) -> str:
        return self.get("display_name") or self["identity"]

    @property
    def is_authenticated(self) -> bool:
        return self.get("is_authenticated", True)

    @property
    def permissions(self) -> list[str]:
        return list(self.get("permissions") or [])


def auth_user(principal: Principal, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `langgraph_auth_user` of a run `principal` starts, as JSON: the fields a custom
    auth handler returned (`fields`), over which the server writes what it verified: the
    identity, the credential's permissions, and tenantgraph's org and role."""
    extra = json.loads(json.dumps(dict(fields or {}), default=str))
    return {
        **extra,
        "identity": principal.user_id,
        "display_name": extra.get("display_name") or principal.user_id,
        "is_authenticated": True,
        "permissions": list(principal.permissions or ()),
        "org_id": principal.org_id,
        "role": principal.role.value,
    }


def run_scope(principal: Principal, run: Mapping[str, Any]) -> dict[str, Any]:
    """The configurable keys the server writes for a run of `principal` (its owner): the
    scope, and the caller's auth keys as the run's creation recorded them."""
    recorded = ((run["kwargs"].get("config") or {}).get("configurable")) or {}
    user = recorded.get("langgraph_auth_user") or auth_user(principal)
    return {
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "langgraph_auth_user": AuthUser(user),
        "langgraph_auth_user_id": principal.user_id,
        "langgraph_auth_permissions": list(recorded.get("langgraph_auth_permissions") or []),
        "langgraph_request_id": recorded.get("langgraph_request_id"),
        "assistant_id": str(run["assistant_id"]),
        "graph_id": run["assistant"]["graph_id"],
        "thread_id": str(run["thread_id"]),
        "run_id": str(run["run_id"]),
    }


def run_metadata(run: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    """A run's `config["metadata"]` (so its checkpoints' metadata): the run's metadata, the
    attempt and the versions, as langgraph-api writes them."""
    return {
        **(run["metadata"] or {}),
        "run_attempt": attempt,
        "langgraph_version": langgraph_version,
        "langgraph_api_version": __version__,
        "langgraph_host": "self-hosted",
    }


def schema_context(context: dict[str, Any], graph: Pregel) -> dict[str, Any]:
    """`context` reduced to the properties of the graph's context schema, if it declares
    any: a run's context mirrors its configurable, whose other keys the schema refuses."""
    try:
        schema = graph.get_context_jsonschema()
    except Exception:  # a schema pydantic cannot describe: the context goes as it is
        return context
    properties = (schema or {}).get("properties")
    if not properties:
        return context
    return {k: v for k, v in context.items() if k in properties}
