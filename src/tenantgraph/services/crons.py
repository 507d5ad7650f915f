"""Crons: stored in the `crons` table (so they survive restarts), fired by the workers.

Each cron keeps `next_run_date`. Workers list due crons across orgs (`due_crons`, an
audited cross-tenant function, stores/crons.py), then each fires a cron only if its
conditional update moved `next_run_date` from the value it saw to the next one: with any
number of workers a due date fires once. Missed dates (all workers down) fire once, not once per
missed date. A firing is claimed before its run is created, so a worker crash between the
two loses that one firing rather than doubling it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from prometheus_client import Counter
from psycopg import AsyncConnection

from tenantgraph.db.database import Database
from tenantgraph.ephemeral.ratelimit import Decision
from tenantgraph.errors import InvalidInput, QuotaExceeded
from tenantgraph.scope import Principal
from tenantgraph.services import experiments
from tenantgraph.services.runs import InvalidRun, RunCreate, RunNotFound, Runs
from tenantgraph.stores import crons as store
from tenantgraph.stores import org_quotas
from tenantgraph.stores import runs as run_store
from tenantgraph.stores.crons import CronSortColumn

__all__ = ["ChargeRun", "CronSortColumn", "Crons", "check_interval", "next_run_date"]

log = logging.getLogger(__name__)
# How many next firings a schedule's interval is checked over (a schedule like
# "0,10 * * * * *" is short only once a minute).
_INTERVAL_SAMPLES = 60
SKIPPED_FIRINGS = Counter(
    "tenantgraph_cron_firings_skipped_total", "Cron firings skipped: the owner's run budget"
)
# Spends one run from a principal's run budget (RateLimiter.check_run).
ChargeRun = Callable[[Principal], Awaitable[Decision]]


class InvalidSchedule(InvalidInput):
    """A schedule or time zone that cannot be read: 422, as the LangGraph API answers."""


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"Invalid timezone: {name!r}. Use an IANA time zone (e.g. 'America/New_York')."
        ) from None


def next_run_date(
    schedule: str,
    timezone: str | None = None,
    *,
    after: datetime | None = None,
    end_time: datetime | None = None,
) -> datetime | None:
    """The first firing strictly after `after` (now), in the cron's zone; None past end_time.
    Five fields as in crontab; a sixth field is seconds."""
    if not croniter.is_valid(schedule):
        raise InvalidSchedule(
            f"Invalid cron schedule: {schedule!r}. Use the cron format (minute hour "
            "day_of_month month day_of_week), e.g. '*/5 * * * *' for every 5 minutes."
        )
    base = (after or datetime.now(UTC)).astimezone(_zone(timezone))
    when = croniter(schedule, base).get_next(datetime).astimezone(UTC)
    return None if end_time is not None and when > end_time else when


def check_interval(schedule: str, timezone: str | None, min_seconds: float) -> None:
    """Refuse a schedule that would fire twice within `min_seconds` (e.g. a six-field
    `* * * * * *`, every second), looking at its next firings from now."""
    when = next_run_date(schedule, timezone)
    for _ in range(_INTERVAL_SAMPLES):
        following = next_run_date(schedule, timezone, after=when)
        if when is None or following is None:
            return
        if (following - when).total_seconds() < min_seconds:
            raise InvalidInput(
                f"schedule {schedule!r} fires more often than every {min_seconds:g} seconds"
            )
        when = following


def _as_cron(row: dict[str, Any]) -> dict[str, Any]:
    """A crons row in the API's Cron shape; its payload names the assistant and carries the
    cron's id in `config.configurable`, as langgraph-api's does."""
    payload = row["payload"]
    config = payload.get("config") or {}
    shown = {
        **payload,
        "assistant_id": str(row["assistant_id"]),
        "config": {
            **config,
            "configurable": {**(config.get("configurable") or {}), "cron_id": str(row["cron_id"])},
        },
    }
    return {
        "cron_id": row["cron_id"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "user_id": row["owner_id"],
        "schedule": row["schedule"],
        "timezone": payload.get("timezone"),
        "on_run_completed": payload.get("on_run_completed"),
        "end_time": row["end_time"],
        "enabled": row["enabled"],
        "next_run_date": row["next_run_date"],
        "payload": shown,
        "metadata": row["metadata"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class Crons:
    """Cron CRUD for the routes, and `fire_due` for the workers (passed to each Worker)."""

    def __init__(
        self,
        db: Database,
        runs: Runs,
        *,
        min_interval_seconds: float = 60.0,
        max_per_user: int = 100,
        charge: ChargeRun | None = None,
    ) -> None:
        self.db = db
        self.runs = runs
        self.min_interval_seconds = min_interval_seconds
        self.max_per_user = max_per_user
        # A fired run spends its owner's run budget like one created over HTTP; without
        # `charge` (tests of firing itself) nothing is charged.
        self.charge = charge

    async def create(
        self,
        principal: Principal,
        assistant_id: uuid.UUID | None,
        payload: dict[str, Any],
        *,
        thread_id: uuid.UUID | None = None,
        experiment: str | None = None,
    ) -> dict[str, Any]:
        """`POST /runs/crons` and `POST /threads/{id}/runs/crons`; `payload` is the body
        (schedule, input, config, metadata, end_time, enabled, timezone, …).

        `experiment` (`experiment:<name>`), or an `assistant_id` that is a running
        experiment's id: every firing runs the owner's variant of it at that moment."""
        schedule = payload.get("schedule")
        if not isinstance(schedule, str):
            raise InvalidRun("schedule is required")
        RunCreate.model_validate(payload)
        end_time = _parse_time(payload.get("end_time"))
        enabled = payload.get("enabled", True) is not False
        next_date = next_run_date(schedule, payload.get("timezone"), end_time=end_time)
        check_interval(schedule, payload.get("timezone"), self.min_interval_seconds)
        async with self.db.tenant(principal) as conn:
            assistant_id, experiment_id = await _assistant(
                conn, principal, assistant_id, experiment
            )
            overrides = await org_quotas.select_overrides(conn, principal)
            most = overrides.get("crons_per_user", self.max_per_user)
            if await store.count_owned(conn, principal) >= most:
                raise QuotaExceeded(f"a user may own at most {most} crons")
            if thread_id is not None and (
                await run_store.lock_thread(conn, principal, thread_id) is None
            ):
                raise RunNotFound("Thread not found")
            row = await store.insert_cron(
                conn,
                principal,
                {
                    "cron_id": uuid.uuid4(),
                    "assistant_id": assistant_id,
                    "thread_id": thread_id,
                    "schedule": schedule,
                    "payload": _stored_payload(payload, thread_id),
                    "metadata": payload.get("metadata") or {},
                    "enabled": enabled and next_date is not None,
                    "end_time": end_time,
                    "next_run_date": next_date,
                    "experiment_id": experiment_id,
                },
            )
        return _as_cron(row)

    async def get(self, principal: Principal, cron_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.tenant(principal) as conn:
            row = await store.get_cron(conn, principal, cron_id)
        if row is None:
            raise RunNotFound("Cron not found")
        return _as_cron(row)

    async def update(
        self, principal: Principal, cron_id: uuid.UUID, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """`PATCH /runs/crons/{id}`: keys present are changed (`end_time: null` clears it)."""
        if not patch:
            raise InvalidRun("nothing to update")
        async with self.db.tenant(principal) as conn:
            row = await store.get_cron(conn, principal, cron_id, lock=True)
            if row is None:
                raise RunNotFound("Cron not found")
            payload = {**row["payload"], **patch}
            RunCreate.model_validate(payload)
            schedule = patch.get("schedule", row["schedule"])
            end_time = _parse_time(patch["end_time"]) if "end_time" in patch else row["end_time"]
            enabled = patch.get("enabled", row["enabled"]) is not False
            next_date = next_run_date(schedule, payload.get("timezone"), end_time=end_time)
            if "schedule" in patch:
                check_interval(schedule, payload.get("timezone"), self.min_interval_seconds)
            changes: dict[str, Any] = {
                "schedule": schedule,
                "payload": _stored_payload(payload, row["thread_id"]),
                "end_time": end_time,
                "enabled": enabled and next_date is not None,
                "next_run_date": next_date,
            }
            if "metadata" in patch:
                changes["metadata"] = patch["metadata"] or {}
            updated = await store.update_cron(conn, principal, cron_id, changes)
        assert updated is not None
        return _as_cron(updated)

    async def delete(self, principal: Principal, cron_id: uuid.UUID) -> None:
        async with self.db.tenant(principal) as conn:
            if not await store.delete_cron(conn, principal, cron_id):
                raise RunNotFound("Cron not found")

    async def search(
        self,
        principal: Principal,
        *,
        assistant_id: uuid.UUID | None = None,
        thread_id: uuid.UUID | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[dict[str, Any]]:
        filters = {
            "assistant_id": assistant_id,
            "thread_id": thread_id,
            "enabled": enabled,
            "metadata": metadata,
        }
        async with self.db.tenant(principal) as conn:
            rows = await store.search_crons(
                conn,
                principal,
                filters,
                limit=limit,
                offset=offset,
                sort_by=sort_by,
                sort_order=sort_order,
            )
        return [_as_cron(r) for r in rows]

    async def count(
        self,
        principal: Principal,
        *,
        assistant_id: uuid.UUID | None = None,
        thread_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        filters = {"assistant_id": assistant_id, "thread_id": thread_id, "metadata": metadata}
        async with self.db.tenant(principal) as conn:
            return await store.count_crons(conn, principal, filters)

    async def fire_due(self, limit: int = 100) -> list[uuid.UUID]:
        """Fire every due cron this worker wins; returns the runs created."""
        async with self.db.system() as conn:
            due = await store.due_crons(conn, limit)
        created = []
        for cron in due:
            try:
                run_id = await self._fire(cron)
            except Exception:
                log.exception("cron %s of org %s failed to fire", cron["cron_id"], cron["org_id"])
                continue
            if run_id is not None:
                created.append(run_id)
        return created

    async def _fire(self, due: dict[str, Any]) -> uuid.UUID | None:
        principal = Principal(due["org_id"], due["owner_id"])
        async with self.db.tenant(principal) as conn:
            row = await store.get_cron(conn, principal, due["cron_id"])
            if row is None or row["next_run_date"] != due["next_run_date"]:
                return None
            payload = row["payload"]
            following = next_run_date(
                row["schedule"], payload.get("timezone"), end_time=row["end_time"]
            )
            claimed = await store.claim_firing(
                conn, principal.org_id, row["cron_id"], due["next_run_date"], following
            )
        if claimed is None:
            return None
        if self.charge is not None and not (await self.charge(principal)).allowed:
            # The date has moved on: this firing is skipped, not queued for later.
            SKIPPED_FIRINGS.inc()
            log.warning(
                "cron %s of org %s skipped a firing: its owner's run budget is spent",
                row["cron_id"],
                principal.org_id,
            )
            return None
        body = RunCreate.model_validate(
            {
                **payload,
                "multitask_strategy": payload.get("multitask_strategy") or "enqueue",
                "on_completion": payload.get("on_run_completed") or "delete",
            }
        )
        run = await self.runs.create(
            principal,
            row["thread_id"],
            row["assistant_id"],
            body,
            server_metadata={"cron_id": str(row["cron_id"])},
            experiment=None if row["experiment_id"] is None else str(row["experiment_id"]),
        )
        return run["run_id"]


async def _assistant(
    conn: AsyncConnection,
    principal: Principal,
    assistant_id: uuid.UUID | None,
    experiment: str | None,
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """A new cron's assistant and experiment. An id that is no assistant's may be a running
    experiment's: the cron keeps the owner's variant now; anything else is a 404."""
    if experiment is None and assistant_id is not None:
        if await run_store.get_assistant(conn, assistant_id) is not None:
            return assistant_id, None
    ref = experiment if experiment is not None else assistant_id
    assigned = None if ref is None else await experiments.assign(conn, principal, ref)
    if assigned is None or not assigned.running:
        raise RunNotFound("Assistant not found")
    return assigned.assistant_id, assigned.experiment_id


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"end_time {value!r} is not an ISO 8601 date and time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stored_payload(payload: dict[str, Any], thread_id: uuid.UUID | None) -> dict[str, Any]:
    """The create body as stored (JSON): the schedule and ids live in their own columns."""
    stored = {k: v for k, v in payload.items() if k not in ("thread_id", "cron_id")}
    if isinstance(stored.get("end_time"), datetime):
        stored["end_time"] = stored["end_time"].isoformat()
    if thread_id is None:
        stored.setdefault("on_run_completed", "delete")
    return stored
