"""How graph code reaches the ephemeral state: the run's config plus a bound client.

The runtime binds the process's Valkey client and settings once (`bind`) around graph
execution; graph nodes then call `session_window(config)` or `episodes(config)` without
plumbing a client through their state. The principal comes from the server-injected
`configurable.org_id` / `user_id`, which clients cannot override (docs/architecture.md §1).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.scope import Principal
from tenantgraph.settings import EphemeralSettings

__all__ = ["bind", "bound", "config_principal", "config_value"]

_bound: ContextVar[tuple[aioredis.Redis, EphemeralSettings] | None] = ContextVar(
    "tenantgraph_ephemeral", default=None
)


@contextmanager
def bind(redis: aioredis.Redis, settings: EphemeralSettings) -> Iterator[None]:
    """Make `redis` the client of the ephemeral helpers in this context (and its tasks)."""
    token = _bound.set((redis, settings))
    try:
        yield
    finally:
        _bound.reset(token)


def bound() -> tuple[aioredis.Redis, EphemeralSettings]:
    value = _bound.get()
    if value is None:
        raise RuntimeError("no Valkey client bound; run inside tenantgraph.ephemeral.context.bind")
    return value


def config_principal(config: Mapping[str, Any]) -> Principal:
    """The run's principal from the server-injected scope in `config["configurable"]`."""
    configurable = config.get("configurable") or {}
    try:
        return Principal(org_id=configurable["org_id"], user_id=configurable["user_id"])
    except KeyError as exc:
        raise ValueError(
            f"config has no configurable.{exc.args[0]}; is this a server run?"
        ) from exc


def config_value(config: Mapping[str, Any], name: str) -> str:
    """A server-injected id (`assistant_id`, `thread_id`) from the run's config."""
    value = (config.get("configurable") or {}).get(name)
    if not value:
        raise ValueError(f"config has no configurable.{name}; is this a server run?")
    return str(value)
