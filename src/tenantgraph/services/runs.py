"""Runs as the HTTP layer sees them: create (with multitask strategies), read, list,
delete, cancel, wait for the result. Execution happens in a `Worker` (runtime/worker.py).

Errors: RunNotFound → 404, RunConflict → 409, InvalidRun → 400 (pydantic's
ValidationError of RunCreate → 422).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, Forbidden, InvalidRequest, NotFound
from tenantgraph.runtime import events
from tenantgraph.runtime.events import RunEvent, RunResult
from tenantgraph.runtime.stream_hub import StreamHub
from tenantgraph.scope import Principal
from tenantgraph.services import experiments
from tenantgraph.services.feedback_tokens import FeedbackTokens
from tenantgraph.services.run_request import RunCreate, run_shape
from tenantgraph.services.run_results import RunResults
from tenantgraph.stores import assistants as assistant_store
from tenantgraph.stores import checkpoints as checkpoint_store
from tenantgraph.stores import runs as store

__all__ = [
    "InvalidRun",
    "LocalWorker",
    "RunConflict",
    "RunCreate",
    "RunNotFound",
    "Runs",
]

CancelAction = Literal["interrupt", "rollback"]


class RunNotFound(NotFound):
    """Unknown run, thread or assistant — or one the principal may not see (HTTP 404)."""


class RunConflict(Conflict):
    """The thread is busy and the strategy is `reject` (HTTP 409)."""


class InvalidRun(InvalidRequest):
    """A run request the LangGraph API refuses with 400 (see the message)."""


class LocalWorker(Protocol):
    """A worker in this process that can take a run at creation (runtime/worker.py)."""

    worker_id: str
    lease_seconds: float
    graph_ids: frozenset[str]

    def reserve(self) -> bool: ...

    def release(self) -> None: ...

    def start_claimed(
        self, principal: Principal, run: dict[str, Any], latest: checkpoint_store.Latest | None
    ) -> None: ...

    async def result(self, run_id: uuid.UUID) -> RunResult | None: ...


class Runs:
    """The run API over one database and Valkey. Every method takes the caller first."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        streams: StreamHub,
        *,
        events_ttl: int = events.DEFAULT_TTL_SECONDS,
        feedback_tokens: FeedbackTokens | None = None,
    ) -> None:
        self.db, self.redis, self.streams, self.events_ttl = db, redis, streams, events_ttl
        self.feedback_tokens = feedback_tokens
        self.results = RunResults(db, streams, RunNotFound)

    async def create(
        self,
        principal: Principal,
        thread_id: uuid.UUID | None,
        assistant_id: uuid.UUID | None,
        body: RunCreate,
        *,
        default_graph: str | None = None,
        run_id: uuid.UUID | None = None,
        server_metadata: dict[str, Any] | None = None,
        worker: LocalWorker | None = None,
        auth_fields: dict[str, Any] | None = None,
        request_id: str | None = None,
        experiment: str | None = None,
    ) -> dict[str, Any]:
        """Queue a run on a thread (None: a stateless run on a temporary thread).

        `auth_fields`: the user a custom auth handler returned, for the graph's
        `langgraph_auth_user`; `request_id`: the request's, its `langgraph_request_id`.

        `default_graph`: the run names a graph, which stands for the org's default assistant
        of that graph (`assistant_id` is then that assistant's fixed id, or None). Its first
        use in the org creates the assistant, in the run's transaction: a run that fails
        leaves no assistant behind.

        `experiment` (`experiment:<name>`), or an `assistant_id` that is an experiment's id,
        runs the caller's variant of it (services/experiments.py `assign`): the run has the
        variant's assistant, and its metadata the `experiment_id` and `variant`.

        `body.feedback_keys`: the run gets a feedback token per key (`feedback_tokens`).

        Multitask strategy when the thread already has a pending or running run:
        `reject` raises RunConflict; `enqueue` queues behind it; `interrupt` and
        `rollback` cancel those runs with that action, then queue this one (it starts
        when they have stopped).

        With a local `worker` that has a free slot, a run that may start now is inserted
        already claimed by it and handed over after the commit: no claim query, no load,
        no wait for the worker to wake (the lease and crash rule are the same).
        """
        if default_graph is not None:
            assistant_id = assistant_store.default_assistant_id(default_graph)
        if assistant_id is None and experiment is None:
            raise RunNotFound("Thread or assistant not found.")
        if body.feedback_keys and self.feedback_tokens is None:
            raise InvalidRun("feedback_keys need the server's secret key")
        reserved = worker is not None and not (body.after_seconds or 0) > 0 and worker.reserve()
        try:
            run, latest = await self._create(
                principal,
                thread_id,
                assistant_id,
                body,
                default_graph=default_graph,
                run_id=run_id,
                server_metadata=server_metadata,
                worker=worker if reserved else None,
                auth_fields=auth_fields,
                request_id=request_id,
                experiment=experiment,
            )
        except BaseException:
            if reserved:
                worker.release()  # type: ignore[union-attr]
            raise
        if reserved:
            assert worker is not None
            if run["status"] == "running":
                worker.start_claimed(principal, run, latest)
            else:
                worker.release()
        return run

    async def _create(
        self,
        principal: Principal,
        thread_id: uuid.UUID | None,
        assistant_id: uuid.UUID | None,
        body: RunCreate,
        *,
        default_graph: str | None,
        run_id: uuid.UUID | None,
        server_metadata: dict[str, Any] | None,
        worker: LocalWorker | None,
        auth_fields: dict[str, Any] | None,
        request_id: str | None,
        experiment: str | None,
    ) -> tuple[dict[str, Any], checkpoint_store.Latest | None]:
        """The run, and when the local `worker` took it, its thread's latest checkpoint read
        in the same transaction (the graph's first read: one transaction fewer a run)."""
        if body.command and body.command.get("resume") is not None and thread_id is None:
            raise InvalidRun("You must provide a thread_id when resuming.")
        if (body.config or {}).get("configurable") and body.context:
            raise InvalidRun("Cannot specify both configurable and context. Use context only.")
        run_id = run_id or uuid.uuid4()
        temporary = thread_id is None
        thread_id = thread_id or uuid.uuid4()
        create = temporary or body.if_not_exists == "create"
        async with self.db.tenant(principal) as conn:
            assigned = None
            if experiment is not None:
                assigned = await experiments.assign(conn, principal, experiment)
                if assigned is None:
                    raise RunNotFound("Thread or assistant not found.")
                assistant_id = assigned.assistant_id
            assert assistant_id is not None
            locked = await store.lock_thread_for_run(
                conn, principal, thread_id, assistant_id, create=create
            )
            if locked is None and default_graph is None and assigned is None:
                # Not an assistant: perhaps an experiment's id (looked up only then).
                assigned = await experiments.assign(conn, principal, assistant_id)
                if assigned is not None:
                    assistant_id = assigned.assistant_id
                    locked = await store.lock_thread_for_run(
                        conn, principal, thread_id, assistant_id, create=create
                    )
            if locked is None and default_graph is not None:
                # The first use of the graph in this org (or a missing thread: then the
                # assistant goes with the rollback). After it, the lookup above finds it.
                await assistant_store.ensure_default(conn, principal, default_graph)
                locked = await store.lock_thread_for_run(
                    conn, principal, thread_id, assistant_id, create=create
                )
            if locked is None:
                raise RunNotFound("Thread or assistant not found.")
            thread, assistant, active = locked
            if assigned is not None:
                server_metadata = {**(server_metadata or {}), **assigned.metadata()}
            kwargs, metadata, thread_config = run_shape(
                principal,
                body,
                run_id=run_id,
                thread=thread,
                assistant=assistant,
                temporary=temporary,
                server_metadata=server_metadata,
                auth_fields=auth_fields,
                request_id=request_id,
            )
            if assigned is not None:
                # What feedback is attributed by: kept where no client value reaches.
                kwargs["experiment"] = assigned.metadata()
            if body.feedback_keys and self.feedback_tokens is not None:
                kwargs["feedback_tokens"] = self.feedback_tokens.issue(
                    principal.org_id, run_id, principal.user_id, body.feedback_keys
                )
            if not principal.may_run(str(assistant_id), assistant["graph_id"]):
                raise Forbidden(f"this credential may not run assistant {str(assistant_id)!r}")
            if active and body.multitask_strategy == "reject":
                raise RunConflict(
                    "Thread is already running a task. Wait for it to finish or choose a "
                    "different multitask strategy."
                )
            ended: list[uuid.UUID] = []
            if active and body.multitask_strategy in ("interrupt", "rollback"):
                ended = await self._cancel(
                    conn, principal, active, body.multitask_strategy, settle=False
                )
            # Taken here only by a local worker that has the graph; else queued for one.
            takes = worker is not None and not active and assistant["graph_id"] in worker.graph_ids
            claimed_by = worker.worker_id if takes else None
            # The stream's opening entry goes out while Postgres inserts the run; both are
            # done before the commit makes the run claimable (the marker must come first).
            # Valkey out: the marker fails, the insert rolls back, nothing is created (503).
            marker = asyncio.ensure_future(
                events.mark_created(
                    self.redis,
                    principal,
                    run_id,
                    readers=[thread["owner_id"]],
                    started=claimed_by is not None,
                    ttl=self.events_ttl,
                    feedback_tokens=kwargs.get("feedback_tokens"),
                )
            )
            try:
                inserted = await store.insert_run(
                    conn,
                    principal,
                    run_id=run_id,
                    thread_id=thread_id,
                    assistant_id=assistant_id,
                    metadata=metadata,
                    kwargs=kwargs,
                    thread_config=thread_config,
                    multitask_strategy=body.multitask_strategy,
                    after_seconds=max(body.after_seconds or 0.0, 0.0),
                    claimed_by=claimed_by,
                    lease_seconds=worker.lease_seconds if worker is not None else 0.0,
                )
            finally:
                await marker
            saved = None
            if claimed_by is not None:
                saved = await checkpoint_store.select_checkpoint(
                    conn, principal.org_id, str(thread_id), ""
                )
        run = await inserted.fetchone()  # after COMMIT: it arrived with it, as did `saved`
        assert run is not None
        for gone in ended:
            await events.publish_end(
                self.redis, principal, gone, "interrupted", ttl=self.events_ttl
            )
        if run["status"] == "running":
            run = {**run, "assistant": assistant}
        if "feedback_tokens" in kwargs:
            run = {**run, "feedback_tokens": kwargs["feedback_tokens"]}
        if saved is None:
            return run, None
        return run, checkpoint_store.Latest(str(thread_id), await saved.fetchone())

    async def get(
        self, principal: Principal, run_id: uuid.UUID, thread_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        async with self.db.tenant(principal) as conn:
            run = await store.get_run(conn, principal, run_id, thread_id)
        if run is None:
            raise RunNotFound("Run not found")
        return run

    async def list(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        *,
        limit: int = 10,
        offset: int = 0,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        async with self.db.tenant(principal) as conn:
            if await store.find_thread(conn, principal, thread_id) is None:
                raise RunNotFound("Thread not found")
            return await store.list_runs(
                conn, principal, thread_id, limit=limit, offset=offset, status=status
            )

    async def delete(
        self, principal: Principal, run_id: uuid.UUID, thread_id: uuid.UUID | None = None
    ) -> None:
        """Delete a run; a running one stops at its worker's next lease renewal."""
        async with self.db.tenant(principal) as conn:
            run = await store.get_run(conn, principal, run_id, thread_id)
            if run is None:
                raise RunNotFound("Run not found")
            await store.delete_run(conn, principal.org_id, run_id)
            if run["status"] in store.ACTIVE and run["thread_id"]:
                await store.settle_thread(conn, principal.org_id, run["thread_id"], "idle")
        await events.publish_end(self.redis, principal, run_id, "deleted", ttl=self.events_ttl)

    async def cancel(
        self,
        principal: Principal,
        run_ids: list[uuid.UUID] | None = None,
        *,
        thread_id: uuid.UUID | None = None,
        status: Literal["pending", "running", "all"] | None = None,
        action: CancelAction = "interrupt",
    ) -> list[uuid.UUID]:
        """Cancel pending or running runs, chosen by ids (within `thread_id` if given), by
        thread, or by status. A pending run ends at once; a running one is flagged and its
        worker stops it within a heartbeat. `interrupt` keeps what the run checkpointed
        (run status `interrupted`); `rollback` deletes the run and its checkpoints.
        Raises RunNotFound when nothing matched (the LangGraph API's 404)."""
        wanted = ("pending", "running") if status in (None, "all") else (status,)
        async with self.db.tenant(principal) as conn:
            if run_ids is not None:
                runs = [await store.get_run(conn, principal, rid, thread_id) for rid in run_ids]
            elif thread_id is not None:
                if await store.lock_thread(conn, principal, thread_id) is None:
                    raise RunNotFound("Thread not found")
                runs = await store.active_runs(conn, thread_id)
            else:
                runs = await store.active_runs_of_org(conn, principal)
            targets = [r for r in runs if r is not None and r["status"] in wanted]
            if not targets:
                raise RunNotFound("No matching runs to cancel")
            ended = await self._cancel(conn, principal, targets, action, settle=True)
        for run_id in ended:
            await events.publish_end(
                self.redis, principal, run_id, "interrupted", ttl=self.events_ttl
            )
        return [r["run_id"] for r in targets]

    async def _cancel(
        self,
        conn: Any,
        principal: Principal,
        runs: list[dict[str, Any]],
        action: CancelAction,
        *,
        settle: bool,
    ) -> list[uuid.UUID]:
        """Cancel `runs` in the open transaction; returns the pending ones ended here."""
        running = [r["run_id"] for r in runs if r["status"] == "running"]
        if running:
            await store.request_cancel(conn, principal.org_id, running, action)
        ended = []
        for run in runs:
            if run["status"] != "pending":
                continue
            if action == "rollback":
                await store.delete_run(conn, principal.org_id, run["run_id"])
            elif not await store.finish_run(
                conn, principal.org_id, run["run_id"], "interrupted", worker_id=None
            ):
                # A worker claimed it meanwhile: it is running now, flag it instead.
                await store.request_cancel(conn, principal.org_id, [run["run_id"]], action)
                continue
            ended.append(run["run_id"])
            if settle and run["thread_id"]:
                await store.settle_thread(conn, principal.org_id, run["thread_id"], "idle")
        return ended

    def events(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        last_event_id: str | None = None,
        *,
        heartbeat_seconds: float | None = None,
    ) -> AsyncIterator[RunEvent | None]:
        """The run's SSE events (services/run_results.py; the hub checks who may read)."""
        return self.results.events(
            principal, run_id, last_event_id, heartbeat_seconds=heartbeat_seconds
        )

    async def check_events(self, principal: Principal, run_id: uuid.UUID) -> None:
        """503 before a join stream starts while its events are out of reach."""
        await self.results.check_events(principal, run_id)

    async def join(self, principal: Principal, run_id: uuid.UUID) -> Any:
        """Wait for the run to end; the body of `/join` (services/run_results.py)."""
        return await self.results.join(principal, run_id)

    async def wait(
        self, principal: Principal, run: dict[str, Any], *, worker: LocalWorker | None = None
    ) -> Any:
        """The body of `/runs/wait` for a run `principal` has just created: handed over by
        the local worker when it executes the run (no stream to read back), else `join`."""
        if worker is not None and (result := await worker.result(run["run_id"])) is not None:
            return result.body()
        return await self.join(principal, run["run_id"])
