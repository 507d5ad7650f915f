"""A run request as the stored run: its `kwargs`, its `metadata` and the config its thread
keeps, shaped as langgraph-api shapes them.

- `config["configurable"]`: assistant < thread < run (the client's keys only), then the
  keys the server writes (the scope, `langgraph_auth_user`, `langgraph_auth_permissions`,
  `langgraph_request_id`, …); `context` and the run's configurable mirror each other.
- `metadata`: assistant < thread < `config.metadata` < the request's, then the server's
  (`assistant_id`, `graph_id`, a cron's id); it is also the run's `config.metadata`.
- The thread keeps assistant config < its own < the run's, with the configurable of the
  assistants it ran (not the run's own keys), unless it is busy.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantgraph.runtime import events, server_keys
from tenantgraph.scope import Principal
from tenantgraph.services.feedback_tokens import KEY_PATTERN

__all__ = ["MultitaskStrategy", "RunCreate", "run_shape"]

MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
_RESERVED_METADATA = frozenset({"thread_id", "assistant_id", "run_id", "cron_id"})


class RunCreate(BaseModel):
    """The run-create body of the LangGraph API (`POST /threads/{id}/runs[/stream|/wait]`)."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str | None = None
    input: Any = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] = Field(default_factory=lambda: ["values"])
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = None
    # One feedback token per key (services/feedback_tokens.py).
    feedback_keys: list[Annotated[str, Field(pattern=KEY_PATTERN)]] | None = Field(
        None, max_length=20
    )
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_completion: Literal["delete", "keep"] | None = None
    # Up to a year ahead; a negative delay means now.
    after_seconds: float | None = Field(None, le=365 * 24 * 3600)

    @field_validator("stream_mode")
    @classmethod
    def _known_modes(cls, value: str | list[str]) -> str | list[str]:
        unknown = set([value] if isinstance(value, str) else value) - events.STREAM_MODES
        if unknown:
            raise ValueError(f"unknown stream_mode {sorted(unknown)}")
        return value

    @property
    def stream_modes(self) -> list[str]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]


def _configurable(config: dict[str, Any] | None) -> dict[str, Any]:
    return server_keys.client_keys((config or {}).get("configurable"))


def run_shape(
    principal: Principal,
    body: RunCreate,
    *,
    run_id: uuid.UUID,
    thread: dict[str, Any],
    assistant: dict[str, Any],
    temporary: bool,
    server_metadata: dict[str, Any] | None = None,
    auth_fields: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(kwargs, metadata, thread config or None to leave it) of a new run on `thread`
    (with its `config` and `metadata`) and `assistant` (with its id, graph and config)."""
    config = dict(body.config or {})
    # The checkpoint's keys join the configurable before the filter: the scope and the
    # server's own keys cannot be smuggled in through either.
    checkpoint = {k: v for k, v in (body.checkpoint or {}).items() if v is not None}
    # The context as sent: the executor gives a server key it names the server's value.
    context = dict(body.context or _configurable(config))
    requested = server_keys.client_keys({**context, **checkpoint})
    if body.checkpoint_id:
        requested["checkpoint_id"] = body.checkpoint_id
    assistant_id, graph_id = str(assistant["assistant_id"]), assistant["graph_id"]
    thread_config = thread.get("config") or {}
    client_metadata = {
        k: v for k, v in (body.metadata or {}).items() if k not in _RESERVED_METADATA
    }
    metadata = {
        **(assistant.get("metadata") or {}),
        **(thread.get("metadata") or {}),
        **(config.get("metadata") or {}),
        **client_metadata,
        **(server_metadata or {}),
        "assistant_id": assistant_id,
        "graph_id": graph_id,
    }
    configurable = {
        **_configurable(assistant.get("config")),
        **_configurable(thread_config),
        **requested,
        "org_id": principal.org_id,
        "user_id": principal.user_id,
        "assistant_id": assistant_id,
        "graph_id": graph_id,
        "thread_id": str(thread["thread_id"]),
        "run_id": str(run_id),
        "langgraph_auth_user": server_keys.auth_user(principal, auth_fields),
        "langgraph_auth_user_id": principal.user_id,
        "langgraph_auth_permissions": list(principal.permissions or ()),
        "langgraph_request_id": request_id,
    }
    durability = body.durability
    if durability is None:
        durability = "exit" if body.checkpoint_during is False else "async"
    kwargs = {
        "input": body.input,
        "command": body.command,
        "config": {
            **(assistant.get("config") or {}),
            **config,
            "configurable": configurable,
            "metadata": metadata,
        },
        "context": {**(assistant.get("context") or {}), **context},
        "stream_mode": body.stream_modes,
        "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable,
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "checkpoint_during": body.checkpoint_during is not False,
        "durability": durability,
        "webhook": body.webhook,
        "feedback_keys": body.feedback_keys,
        "temporary": temporary,
        "on_completion": body.on_completion or ("delete" if temporary else "keep"),
    }
    kept = None
    if thread.get("status") != "busy":
        kept = {
            **(assistant.get("config") or {}),
            **thread_config,
            **config,
            "configurable": {
                **_configurable(assistant.get("config")),
                **_configurable(thread_config),
            },
        }
    return kwargs, metadata, kept
