"""Executing one run in its tenant: config layering, streaming to Valkey, final status.

The worker decides *when* a run executes and whether it was cancelled; this module does
the run itself, always as the run's principal (org from the queue, user = run owner):
the checkpointer and the store it hands the graph are bound to that principal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import Command, Send

from tenantgraph.db.database import Database
from tenantgraph.runtime import events, server_keys
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.state_values import interrupts_by_task, jsonable
from tenantgraph.scope import Principal
from tenantgraph.stores import runs as store

__all__ = ["Executor", "Outcome", "StoreFactory", "build_config"]

log = logging.getLogger(__name__)

StoreFactory = Callable[[Principal], BaseStore | None]
OutcomeKind = Literal["success", "error", "interrupt", "rollback", "lost"]


@dataclasses.dataclass
class Outcome:
    """How an execution ended. `lost`: another worker owns the run now (write nothing).
    `checkpoint`: the last checkpoint the graph itself emitted (root graph, stream mode
    `checkpoints`), which is the thread's state when the run ends."""

    kind: OutcomeKind
    error: BaseException | None = None
    checkpoint: dict[str, Any] | None = None


def build_config(
    assistant_config: dict[str, Any],
    run_config: dict[str, Any],
    scope: dict[str, Any],
    metadata: dict[str, Any],
) -> RunnableConfig:
    """graph defaults (applied by LangGraph) < assistant config < run config < server scope;
    the keys the server owns are dropped from the merged client config first."""
    config = merge_configs(assistant_config or {}, run_config or {})  # type: ignore[arg-type]
    config["configurable"] = {**server_keys.client_keys(config.get("configurable")), **scope}
    config["metadata"] = {**(config.get("metadata") or {}), **metadata}
    return config


def _command(raw: dict[str, Any]) -> Command:
    """The API's `command` object as a LangGraph Command (langgraph-api command.py)."""
    goto = raw.get("goto")
    if goto is not None and not isinstance(goto, list):
        goto = [goto]
    update = raw.get("update")
    if isinstance(update, list) and all(
        isinstance(t, list | tuple) and len(t) == 2 and isinstance(t[0], str) for t in update
    ):
        update = [tuple(t) for t in update]
    return Command(
        update=update,
        goto=[g if isinstance(g, str) else Send(g["node"], g["input"]) for g in goto]
        if goto
        else (),
        resume=raw.get("resume"),
    )


def _ended(outcome: Outcome) -> tuple[str, Any, dict[str, Any]] | None:
    """(status, values, interrupts) of a thread whose run ran its graph to the end: the
    last checkpoint has nothing next, so no task and no interrupt (what `aget_state` would
    read back, without the read). None for any other end: read the state."""
    checkpoint = outcome.checkpoint
    if outcome.kind != "success" or checkpoint is None or checkpoint["next"]:
        return None
    return "idle", jsonable(checkpoint["values"]), {}


class Executor:
    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        registry: GraphRegistry,
        store_factory: StoreFactory,
        *,
        events_ttl: int = events.DEFAULT_TTL_SECONDS,
    ) -> None:
        self.db = db
        self.redis = redis
        self.registry = registry
        self.store_factory = store_factory
        self.events_ttl = events_ttl

    async def publish(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        name: str,
        data: Any,
        result: events.RunResult | None = None,
    ) -> None:
        """Append an event to the run's stream, and to `result` when one is kept here."""
        encoded = events.dumps(data)
        await events.publish(self.redis, principal, run_id, name, encoded, ttl=self.events_ttl)
        if result is not None:
            result.add(name, encoded)

    async def load(self, principal: Principal, run_id: uuid.UUID) -> dict[str, Any] | None:
        """The run with its assistant, or None when it was deleted meanwhile."""
        async with self.db.tenant(principal) as conn:
            run = await store.get_run(conn, principal, run_id)
            if run is None:
                return None
            assistant = await store.get_assistant(conn, run["assistant_id"])
        if assistant is None:
            return None
        return {**run, "assistant": assistant}

    async def graph_for(
        self, principal: Principal, run: dict[str, Any], attempt: int
    ) -> tuple[Pregel, RunnableConfig]:
        assistant = run["assistant"]
        config = build_config(
            assistant["config"],
            run["kwargs"].get("config") or {},
            server_keys.run_scope(principal, run),
            server_keys.run_metadata(run, attempt),
        )
        config["run_id"] = run["run_id"]
        graph = await self.registry.get(assistant["graph_id"], config)
        graph = graph.copy(
            update={
                "checkpointer": TenantCheckpointer(self.db, principal),
                "store": self.store_factory(principal),
            }
        )
        return graph, config

    async def execute(
        self,
        principal: Principal,
        run: dict[str, Any],
        attempt: int,
        result: events.RunResult | None = None,
        *,
        announced: bool = False,
    ) -> Outcome:
        """Stream the graph, publishing every event (also into `result`, if given); errors
        become an `error` event. `announced`: the `metadata` event is out already (a run
        claimed at its creation, see events.mark_created)."""
        run_id = run["run_id"]
        kwargs = run["kwargs"]
        checkpoint: dict[str, Any] | None = None

        async def publish(name: str, data: Any) -> None:
            await self.publish(principal, run_id, name, data, result)

        if not announced:
            await events.publish(
                self.redis,
                principal,
                run_id,
                "metadata",
                events.metadata_event(run_id, attempt),
                ttl=self.events_ttl,
            )
        try:
            graph, config = await self.graph_for(principal, run, attempt)
            encoder = events.StreamEncoder(
                kwargs.get("stream_mode") or ["values"], bool(kwargs.get("subgraphs"))
            )
            graph_input = (
                _command(kwargs["command"]) if kwargs.get("command") else kwargs.get("input")
            )
            context = server_keys.schema_context(
                server_keys.context(
                    {**(run["assistant"].get("context") or {}), **(kwargs.get("context") or {})},
                    config["configurable"],
                ),
                graph,
            )
            options: dict[str, Any] = {
                "stream_mode": encoder.graph_modes,
                "subgraphs": encoder.subgraphs,
                "interrupt_before": kwargs.get("interrupt_before"),
                "interrupt_after": kwargs.get("interrupt_after"),
                "durability": kwargs.get("durability"),
                "context": context or None,
            }
            # aclosing: a cancel that lands while an event is being published leaves the
            # graph's stream suspended at a yield; closed only when collected, its pending
            # checkpoint writes would land after `finish` has read the thread's state.
            if encoder.wants_events:
                stream = graph.astream_events(graph_input, config, version="v2", **options)
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if event["event"] == "on_chain_stream" and event["run_id"] == str(run_id):
                            for name, data in encoder.encode(event["data"]["chunk"]):
                                await publish(name, data)
                        else:
                            await publish("events", event)
            else:
                # The `checkpoints` mode is asked for ourselves (the encoder passes it on only
                # when the client asked too): `finish` takes the thread's state from the last
                # one instead of reading it back, as langgraph-api does.
                options["stream_mode"] = sorted({*encoder.graph_modes, "checkpoints"})
                stream = graph.astream(graph_input, config, **options)
                async with contextlib.aclosing(stream):
                    async for chunk in stream:
                        ns, mode, payload = chunk if encoder.subgraphs else ((), *chunk)
                        if mode == "checkpoints" and not ns:
                            checkpoint = payload
                        for name, data in encoder.encode(chunk):
                            await publish(name, data)
        except Exception as exc:
            log.exception("run %s failed", run_id)
            await publish("error", events.error_payload(exc))
            return Outcome("error", exc)
        return Outcome("success", checkpoint=checkpoint)

    async def finish(
        self,
        principal: Principal,
        run: dict[str, Any],
        outcome: Outcome,
        worker_id: str | None,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        """Record the outcome (only while holding the lease), settle the thread, then call
        `on_recorded` (a waiter in this process has its answer) and end the stream.

        The thread state is read before the final transaction, so recording the run and
        settling its thread is one round trip (a rollback deletes checkpoints first).
        """
        run_id, thread_id = run["run_id"], run["thread_id"]
        if outcome.kind == "lost":
            return
        status = {"success": "success", "error": "error", "interrupt": "interrupted"}.get(
            outcome.kind, "interrupted"
        )
        kwargs = run["kwargs"]
        discard = bool(kwargs.get("temporary")) and kwargs.get("on_completion") == "delete"
        recorded = outcome.kind == "rollback"
        if recorded:
            async with self.db.tenant(principal) as conn:
                if not await store.finish_run(
                    conn, principal.org_id, run_id, status, worker_id=worker_id
                ):
                    return
                await store.delete_run(conn, principal.org_id, run_id)
            await TenantCheckpointer(self.db, principal).adelete_for_runs([str(run_id)])
        thread = None if discard else _ended(outcome) or await self._thread_state(principal, run)
        thread_status, values, interrupts = thread or ("idle", None, None)
        settle = {
            "values": values,
            "interrupts": interrupts,
            "error": events.error_payload(outcome.error) if outcome.error else None,
        }
        if outcome.kind == "error":
            thread_status = "error"
        finished = None
        async with self.db.tenant(principal) as conn:
            if discard:
                if not recorded and not await store.finish_run(
                    conn, principal.org_id, run_id, status, worker_id=worker_id
                ):
                    return
                await store.delete_temporary_thread(conn, principal.org_id, thread_id)
            elif recorded:  # a rollback: the run is gone already
                await store.settle_thread(
                    conn, principal.org_id, thread_id, thread_status, **settle
                )
            else:
                finished = await store.finish_and_settle(
                    conn,
                    principal.org_id,
                    run_id,
                    status,
                    worker_id=worker_id,
                    thread_id=thread_id,
                    thread_status=thread_status,
                    **settle,
                )
        if finished is not None and await finished.fetchone() is None:
            return  # the lease was lost: the run's new owner records its end
        if on_recorded is not None:
            on_recorded()
        await events.publish_end(self.redis, principal, run_id, status, ttl=self.events_ttl)

    async def _thread_state(
        self, principal: Principal, run: dict[str, Any]
    ) -> tuple[str, Any, dict[str, Any] | None] | None:
        """(status, values, interrupts) of the thread's latest checkpoint, whatever
        checkpoint the run started from; None if the graph cannot be loaded."""
        try:
            graph, _ = await self.graph_for(principal, run, attempt=0)
        except Exception:
            log.exception("run %s: cannot load its graph to read the thread state", run["run_id"])
            return None
        state = await graph.aget_state({"configurable": {"thread_id": str(run["thread_id"])}})
        values = jsonable(state.values) if state.config else {}
        return ("interrupted" if state.next else "idle", values, interrupts_by_task(state))
