"""Workers: claim queued runs of every org, execute each in its tenant, fire crons.

Durability rules, in one place:
- A run is claimed through `claim_runs` (the audited cross-tenant path, stores/run_queue.py),
  which gives the claiming worker a lease (`locked_until`). The worker renews it every
  `heartbeat_seconds`; a worker that cannot renew (the lease was taken over, the run was
  deleted) stops the graph at once and writes nothing, so a run never executes in two
  places past one heartbeat.
- Crash rule: `attempts` counts claims. A run whose worker died is claimed again when its
  lease expires and retried once (attempt 2, the `metadata` event says so). If that lease
  expires too, the next claim (attempt 3) marks the run `error` without executing it.
- A worker that is stopped cancels its graphs and gives their runs back to the queue
  (status pending, the attempt not counted).
- Cancel requests (`runs.cancel_action`) are read with each lease renewal.
- A Valkey outage stops no run: its events wait in memory (runtime/publisher.py) while the
  lease, which lives in Postgres, is renewed as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.db.database import Database
from tenantgraph.runtime import events
from tenantgraph.runtime.executor import Executor, Outcome, StoreFactory
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.publisher import DEFAULT_BUFFER_BYTES
from tenantgraph.scope import Principal
from tenantgraph.settings import Settings
from tenantgraph.stores import checkpoints, run_queue

__all__ = ["MAX_ATTEMPTS", "Claim", "CronFiring", "RunEnded", "Worker", "claim_runs"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
# Fires the due crons (services/crons.py `Crons.fire_due`), passed in by whoever builds the
# worker: the worker only decides when.
CronFiring = Callable[[], Awaitable[object]]
# Told of each run whose end this worker recorded (principal, run, outcome, start time),
# e.g. runtime/webhooks.py `WebhookSender.run_ended`; it must return at once.
RunEnded = Callable[[Principal, dict[str, Any], Outcome, datetime], None]


@dataclass(frozen=True, slots=True)
class Claim:
    org_id: str
    run_id: uuid.UUID
    owner_id: str
    attempt: int

    @property
    def principal(self) -> Principal:
        """The run executes as its owner inside its org (role member: no admin paths)."""
        return Principal(self.org_id, self.owner_id)


async def claim_runs(
    db: Database, worker_id: str, max_runs: int, lease_seconds: float, graph_ids: Sequence[str]
) -> list[Claim]:
    """The audited cross-tenant path: claim due runs (and runs with expired leases) of the
    graphs `graph_ids` (those the claiming worker has)."""
    async with db.system() as conn:
        rows = await run_queue.claim_runs(conn, worker_id, max_runs, lease_seconds, graph_ids)
    return [Claim(r["org_id"], r["run_id"], r["owner_id"], r["attempt"]) for r in rows]


class Worker:
    """Executes up to `concurrency` runs at a time and, given `fire_crons`, fires the due
    crons every `cron_seconds`; started and stopped by its owner (the app lifespan or
    `tenantgraph worker`)."""

    def __init__(
        self,
        db: Database,
        redis: aioredis.Redis,
        registry: GraphRegistry,
        store_factory: StoreFactory = lambda principal: None,
        *,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 1.0,
        poll_seconds: float = 0.5,
        cron_seconds: float = 5.0,
        events_ttl: int = events.DEFAULT_TTL_SECONDS,
        events_buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        worker_id: str | None = None,
        fire_crons: CronFiring | None = None,
        on_end: RunEnded | None = None,
    ) -> None:
        if heartbeat_seconds >= lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds")
        self.db = db
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.cron_seconds = cron_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = Executor(
            db,
            redis,
            registry,
            store_factory,
            events_ttl=events_ttl,
            events_buffer_bytes=events_buffer_bytes,
        )
        self.graph_ids = frozenset(registry.ids())
        self.fire_crons = fire_crons
        self.on_end = on_end
        self._loop_task: asyncio.Task[None] | None = None
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Results of runs started here at their creation, for a `wait` in this process.
        self._results: dict[uuid.UUID, asyncio.Future[events.RunResult | None]] = {}
        self._reserved = 0  # slots promised to runs being created in this process
        self._wake = asyncio.Event()
        self._stopping = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        db: Database,
        redis: aioredis.Redis,
        registry: GraphRegistry,
        store_factory: StoreFactory,
        *,
        concurrency: int | None = None,
        fire_crons: CronFiring | None = None,
        on_end: RunEnded | None = None,
    ) -> Worker:
        return cls(
            db,
            redis,
            registry,
            store_factory,
            concurrency=settings.worker_concurrency if concurrency is None else concurrency,
            lease_seconds=settings.worker_lease_seconds,
            heartbeat_seconds=settings.worker_heartbeat_seconds,
            poll_seconds=settings.worker_poll_seconds,
            cron_seconds=settings.worker_cron_seconds,
            events_buffer_bytes=settings.events_buffer_bytes,
            fire_crons=fire_crons,
            on_end=on_end,
        )

    async def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name=f"worker {self.worker_id}")

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming; cancel the runs in flight and hand them back to the queue. What
        is not handed back within `grace` seconds is left to its lease: retried on expiry."""
        try:
            async with asyncio.timeout(grace):
                await self._stop()
        except TimeoutError:
            log.warning(
                "worker %s: %d runs not handed back within %.1f s; they are retried when "
                "their leases expire",
                self.worker_id,
                len(self._running),
                grace,
            )

    async def _stop(self) -> None:
        if self._loop_task is not None:
            # Let the loop finish a claim in flight (cancelling it mid-query could leave
            # runs claimed by nobody until their lease expires), then stop at its wait.
            self._stopping = True
            self._wake.set()
            await self._loop_task
            self._loop_task = None
            self._stopping = False
        # Runs created here while stopping still start, then go back to the queue too.
        while self._running or self._reserved:
            await asyncio.sleep(0)  # runs claimed last get to start, so they release on cancel
            tasks = list(self._running.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._reserved and not self._running:
                await asyncio.sleep(0.01)
        await self.executor.close()

    def wake(self) -> None:
        """Claim now rather than at the next poll (e.g. after a run was created here)."""
        self._wake.set()

    def reserve(self) -> bool:
        """Promise a slot to a run being created here (Runs.create inserts it claimed)."""
        if self._loop_task is None or self._stopping:
            return False
        if self.concurrency - len(self._running) - self._reserved <= 0:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        """Give back a reserved slot the run did not take (it was queued instead)."""
        self._reserved -= 1
        self.wake()

    def start_claimed(
        self, principal: Principal, run: dict[str, Any], latest: checkpoints.Latest | None
    ) -> None:
        """Execute a run inserted already claimed by this worker (attempt 1), with its
        assistant loaded and its thread's `latest` checkpoint as read in that transaction;
        takes the slot reserved for it."""
        self._reserved -= 1
        self._results[run["run_id"]] = asyncio.get_running_loop().create_future()
        self._spawn(Claim(principal.org_id, run["run_id"], run["owner_id"], 1), run, latest)

    async def result(self, run_id: uuid.UUID) -> events.RunResult | None:
        """The result of a run started here by `start_claimed`, once its end is recorded;
        None for any other run, or when it did not end here (lease lost, worker stopped)."""
        future = self._results.get(run_id)
        return None if future is None else await asyncio.shield(future)

    def _spawn(
        self,
        claim: Claim,
        run: dict[str, Any] | None = None,
        latest: checkpoints.Latest | None = None,
    ) -> None:
        task = asyncio.create_task(self._run(claim, run, latest), name=f"run {claim.run_id}")
        self._running[claim.run_id] = task
        task.add_done_callback(lambda ended, run_id=claim.run_id: self._done(run_id, ended))

    def _done(self, run_id: uuid.UUID, task: asyncio.Task) -> None:
        if self._running.get(run_id) is not task:
            return  # this worker claimed the run again (its lease had lapsed): the new task owns it
        # A full worker may have left runs in the queue: claim them now, not at the next poll.
        if len(self._running) + self._reserved >= self.concurrency:
            self._wake.set()
        self._running.pop(run_id, None)
        self.executor.release(run_id)
        future = self._results.pop(run_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def _loop(self) -> None:
        next_cron = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                if self.fire_crons is not None and loop.time() >= next_cron:
                    next_cron = loop.time() + self.cron_seconds
                    await self.fire_crons()
                free = self.concurrency - len(self._running) - self._reserved
                if free > 0:
                    for claim in await claim_runs(
                        self.db, self.worker_id, free, self.lease_seconds, self.graph_ids
                    ):
                        self._spawn(claim)
            except Exception:
                log.exception("worker %s: claim loop failed; retrying", self.worker_id)
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _run(
        self, claim: Claim, run: dict[str, Any] | None, latest: checkpoints.Latest | None
    ) -> None:
        try:
            await self._execute(claim, run, latest)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s: worker failed; its lease will expire", claim.run_id)

    async def _execute(
        self, claim: Claim, run: dict[str, Any] | None, latest: checkpoints.Latest | None
    ) -> None:
        """Execute and record one claimed run: `run` and its thread's `latest` checkpoint
        come from the transaction that claimed it at its creation, or are loaded here."""
        principal = claim.principal
        execution: asyncio.Task[Outcome] | None = None
        # Started by start_claimed: a local `wait` may want the result, and the stream's
        # metadata event is out already. The result is also the run's output in Postgres.
        waited = self._results.get(claim.run_id)
        result = events.RunResult()
        started_at = datetime.now(UTC)
        try:
            if run is None:
                loaded = await self.executor.load(principal, claim.run_id)
                if loaded is None:
                    return
                run, latest = loaded
            if claim.attempt > MAX_ATTEMPTS:
                lost = RuntimeError(f"run abandoned: its worker stopped {MAX_ATTEMPTS} times")
                await self.executor.publish(
                    principal, claim.run_id, "error", events.error_payload(lost), result
                )
                outcome = Outcome("error", lost)
            else:
                execution = asyncio.create_task(
                    self.executor.execute(
                        principal,
                        run,
                        claim.attempt,
                        result,
                        announced=waited is not None,
                        latest=latest,
                    )
                )
                outcome = await self._supervise(claim, execution)
        except asyncio.CancelledError:
            if execution is not None:
                execution.cancel()
                with contextlib.suppress(BaseException):
                    await execution
            async with self.db.tenant(principal) as conn:
                await run_queue.release_lease(conn, claim.org_id, claim.run_id, self.worker_id)
            raise

        def answer() -> None:  # the outcome is recorded: a local `wait` has its result
            if waited is not None and not waited.done():
                waited.set_result(result)
            if self.on_end is not None:
                self.on_end(principal, run, outcome, started_at)

        # Recording the outcome is not interrupted by stop(): the run has ended already.
        finishing = asyncio.ensure_future(
            self.executor.finish(
                principal, run, outcome, self.worker_id, answer, output=result.body()
            )
        )
        try:
            await asyncio.shield(finishing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await finishing
            raise

    async def _supervise(self, claim: Claim, execution: asyncio.Task[Outcome]) -> Outcome:
        """Renew the lease while the graph runs; stop it on cancel or when the lease is lost
        (taken over, the run deleted, or not renewable for a whole lease)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            done, _ = await asyncio.wait({execution}, timeout=self.heartbeat_seconds)
            if done:
                return execution.result()
            try:
                async with self.db.tenant(claim.principal) as conn:
                    held, action = await run_queue.renew_lease(
                        conn, claim.org_id, claim.run_id, self.worker_id, self.lease_seconds
                    )
                renewed = loop.time()
            except Exception:
                log.exception("run %s: lease renewal failed", claim.run_id)
                held = loop.time() - renewed < self.lease_seconds - self.heartbeat_seconds
                action = None
            if held and action is None:
                continue
            execution.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await execution
            kind: Any = "lost" if not held else action
            return Outcome(kind)
