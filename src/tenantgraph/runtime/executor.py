"""Executing one run in its tenant: config layering, streaming to Valkey, final status.

The worker decides *when* a run executes and whether it was cancelled; this module does
the run itself, always as the run's principal (org from the queue, user = run owner):
the checkpointer and the store it hands the graph are bound to that principal.
"""

from __future__ import annotations

import asyncio
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
from tenantgraph.errors import Unavailable
from tenantgraph.runtime import events, server_keys
from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.publisher import DEFAULT_BUFFER_BYTES, RunPublisher, append_script
from tenantgraph.runtime.state_values import interrupts_by_task, jsonable
from tenantgraph.scope import Principal
from tenantgraph.stores import checkpoints
from tenantgraph.stores import runs as store

__all__ = ["Executor", "Outcome", "StoreFactory", "build_config"]

log = logging.getLogger(__name__)

# How long a run's checkpoint writes are held to be committed together (TenantCheckpointer
# `hold`): long enough for its last checkpoint to meet its finish, short beside any step.
CHECKPOINT_HOLD_SECONDS = 0.01

StoreFactory = Callable[[Principal], BaseStore | None]
OutcomeKind = Literal["success", "error", "interrupt", "rollback", "lost"]


@dataclasses.dataclass
class Outcome:
    """How an execution ended. `lost`: not this execution's to record (another worker owns
    the run now, or the database stayed out of reach): write nothing.
    `checkpoint`: the last checkpoint the graph itself emitted (root graph, stream mode
    `checkpoints`), which is the thread's state when the run ends."""

    kind: OutcomeKind
    error: BaseException | None = None
    checkpoint: dict[str, Any] | None = None
    checkpointer: TenantCheckpointer | None = None  # holding the run's last writes, if any


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
        events_buffer_bytes: int = DEFAULT_BUFFER_BYTES,
    ) -> None:
        self.db = db
        self.registry = registry
        self.store_factory = store_factory
        self.events_ttl = events_ttl
        self.events_buffer_bytes = events_buffer_bytes
        self._append = append_script(redis)
        self._publishers: dict[uuid.UUID, RunPublisher] = {}
        self._retrying: set[asyncio.Task[None]] = set()  # publishers waiting out an outage

    async def publish(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        name: str,
        data: Any,
        result: events.RunResult | None = None,
    ) -> None:
        """Append an event to the run's stream (kept in memory while Valkey is out, see
        runtime/publisher.py), and to `result` when one is kept here."""
        encoded = events.dumps(data)
        await self._publish(principal, run_id, name.encode(), encoded)
        if result is not None:
            result.add(name, encoded)

    async def _publish(
        self, principal: Principal, run_id: uuid.UUID, event: bytes, data: bytes
    ) -> None:
        publisher = self._publishers.get(run_id)
        if publisher is None:
            publisher = self._publishers[run_id] = RunPublisher(
                principal,
                run_id,
                lambda: self._readers(principal, run_id),
                self._append,
                self._drained,
                ttl=self.events_ttl,
                max_bytes=self.events_buffer_bytes,
                background=self._retrying,
            )
        publisher.released = False
        await publisher.publish(event, data)

    async def _readers(self, principal: Principal, run_id: uuid.UUID) -> list[str]:
        async with self.db.tenant(principal) as conn:
            return await store.run_readers(conn, run_id)

    def release(self, run_id: uuid.UUID) -> None:
        """The run's worker is done with it: its events still waiting for Valkey are sent
        in the background, before those of a later execution of the run here."""
        publisher = self._publishers.get(run_id)
        if publisher is not None:
            publisher.released = True
            self._drained(publisher)

    def _drained(self, publisher: RunPublisher) -> None:
        if publisher.released and not publisher.retrying:
            self._publishers.pop(publisher.run_id, None)

    async def close(self) -> None:
        """Give up the events still waiting for Valkey (the process stops)."""
        for task in list(self._retrying):
            task.cancel()
        await asyncio.gather(*self._retrying, return_exceptions=True)
        self._publishers.clear()

    async def load(
        self, principal: Principal, run_id: uuid.UUID
    ) -> tuple[dict[str, Any], checkpoints.Latest] | None:
        """The run with its assistant, and its thread's latest checkpoint (for `execute`),
        or None when the run was deleted meanwhile. `resume_from`: the last checkpoint the
        run saved, when an earlier execution of it got that far."""
        async with self.db.tenant(principal) as conn:
            run = await store.get_run(conn, principal, run_id)
            if run is None:
                return None
            thread_id = str(run["thread_id"])
            assistant = await store.get_assistant(conn, run["assistant_id"])
            saved = await checkpoints.last_of_run(conn, principal.org_id, thread_id, str(run_id))
            latest = await checkpoints.select_checkpoint(conn, principal.org_id, thread_id, "")
        if assistant is None:
            return None
        last = await saved.fetchone()
        run = {**run, "assistant": assistant, "resume_from": last and last["checkpoint_id"]}
        return run, checkpoints.Latest(thread_id, await latest.fetchone())

    async def graph_for(
        self,
        principal: Principal,
        run: dict[str, Any],
        attempt: int,
        latest: checkpoints.Latest | None = None,
        hold: float | None = None,
    ) -> tuple[Pregel, RunnableConfig]:
        """The run's graph bound to its principal, with its config; `latest`: the thread's
        latest checkpoint as read when the run was claimed, `hold`: how long its checkpoint
        writes are held (see TenantCheckpointer)."""
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
                "checkpointer": TenantCheckpointer(self.db, principal, latest=latest, hold=hold),
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
        latest: checkpoints.Latest | None = None,
    ) -> Outcome:
        """Stream the graph, publishing every event (also into `result`, if given); errors
        become an `error` event. `announced`: the `metadata` event is out already (a run
        claimed at its creation, see events.mark_created); `latest`: the thread's latest
        checkpoint read then."""
        run_id = run["run_id"]
        kwargs = run["kwargs"]
        checkpoint: dict[str, Any] | None = None
        resume_from = run.get("resume_from")
        checkpointer: TenantCheckpointer | None = None

        async def publish(name: str, data: Any) -> None:
            await self.publish(principal, run_id, name, data, result)

        if not announced:
            await self._publish(
                principal,
                run_id,
                b"metadata",
                events.metadata_event(run_id, attempt, resume_from, kwargs.get("feedback_tokens")),
            )
        try:
            # "sync": LangGraph waits for each checkpoint's commit before the next step.
            hold = None if kwargs.get("durability") == "sync" else CHECKPOINT_HOLD_SECONDS
            graph, config = await self.graph_for(principal, run, attempt, latest, hold)
            checkpointer = graph.checkpointer
            encoder = events.StreamEncoder(
                kwargs.get("stream_mode") or ["values"], bool(kwargs.get("subgraphs"))
            )
            graph_input = (
                _command(kwargs["command"]) if kwargs.get("command") else kwargs.get("input")
            )
            if resume_from is not None:
                # An earlier execution saved checkpoints: continue from the thread's latest
                # (that one), so only the step in flight runs again, not the whole input.
                graph_input = None
                for key in ("checkpoint_id", "checkpoint_map"):
                    config["configurable"].pop(key, None)
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
        except asyncio.CancelledError:
            # Stopped (by the worker or a lost lease): what the graph saved is committed
            # before the run is handed back, as LangGraph's own exit waits for its writes.
            if checkpointer is not None:
                try:
                    await checkpointer.flush()
                except Exception:
                    log.exception("run %s: its held checkpoint writes were not committed", run_id)
            raise
        except Unavailable:
            # Postgres stayed out of reach through the checkpointer's retries: not the
            # graph's failure. Nothing is recorded; once the lease expires the run is retried
            # (from its last saved checkpoint).
            log.warning("run %s: the database is out of reach; left to its retry", run_id)
            return Outcome("lost")
        except Exception as exc:
            log.exception("run %s failed", run_id)
            await publish("error", events.error_payload(exc))
            return Outcome("error", exc, checkpointer=checkpointer)
        return Outcome("success", checkpoint=checkpoint, checkpointer=checkpointer)

    async def finish(
        self,
        principal: Principal,
        run: dict[str, Any],
        outcome: Outcome,
        worker_id: str | None,
        on_recorded: Callable[[], None] | None = None,
        *,
        output: Any = None,
    ) -> None:
        """Record the outcome (only while holding the lease) with the run's `output` (what
        `join` answers, see events.RunResult), settle the thread, then call `on_recorded`
        (a waiter in this process has its answer) and end the stream.

        The thread state is read before the final transaction, so recording the run and
        settling its thread is one round trip (a rollback deletes checkpoints first). A run
        that ran its graph to the end commits its last checkpoint writes in it too.
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
        at_end = None if discard else _ended(outcome)
        checkpointer = outcome.checkpointer
        if checkpointer is not None and at_end is None:
            await checkpointer.flush()  # before the state is read, or the thread deleted
            checkpointer = None
        held = checkpointer.handing_over() if checkpointer else contextlib.nullcontext(None)
        if recorded:
            async with self.db.tenant(principal) as conn:
                if not await store.finish_run(
                    conn, principal.org_id, run_id, status, worker_id=worker_id
                ):
                    return
                await store.delete_run(conn, principal.org_id, run_id)
            await TenantCheckpointer(self.db, principal).adelete_for_runs([str(run_id)])
        thread = None if discard else at_end or await self._thread_state(principal, run)
        thread_status, values, interrupts = thread or ("idle", None, None)
        settle = {
            "values": values,
            "interrupts": interrupts,
            "error": events.error_payload(outcome.error) if outcome.error else None,
        }
        if outcome.kind == "error":
            thread_status = "error"
        finished = None
        async with held as write_held, self.db.tenant(principal) as conn:
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
                if write_held is not None:  # the run's last checkpoint commits with its end
                    await write_held(conn)
                finished = await store.finish_and_settle(
                    conn,
                    principal.org_id,
                    run_id,
                    status,
                    worker_id=worker_id,
                    thread_id=thread_id,
                    thread_status=thread_status,
                    output=output,
                    **settle,
                )
        if finished is not None and await finished.fetchone() is None:
            return  # the lease was lost: the run's new owner records its end
        if on_recorded is not None:
            on_recorded()
        await self._publish(principal, run_id, *events.end_entry(run_id, status))

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
