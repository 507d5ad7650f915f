"""The keys of a run's config and context that the server owns, and the one rule that keeps
every client-supplied source of them (run and assistant `config` and `context`, the run's
`checkpoint`, a cron's payload) from reaching a graph. A `command` reaches only the graph's
state channels (`update`, `goto`, `resume`), never its config.

The scope keys (`org_id`, `user_id`, `assistant_id`, …) are dropped from what the client
sent and written by the server; `langgraph_…` keys (`langgraph_auth_user`, …) and LangGraph's
internal `__…` keys are dropped and, where LangGraph needs them, set by the server too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SERVER_CONFIGURABLE", "client_keys", "context", "reserved"]

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
