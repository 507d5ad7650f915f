"""Experiments over an org's assistants: create and change them (admins), their lifecycle
(draft → running ⇄ paused → completed → archived, each transition recorded), the sticky
assignment of a user to a variant, and the results per variant.

Errors: ExperimentNotFound → 404, ExperimentConflict → 409 (a taken name, a transition the
lifecycle does not allow), InvalidExperiment → 422, Forbidden → 403 (members).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from scipy import stats as scipy_stats

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenantgraph.scope import Principal
from tenantgraph.stores import experiments as store

__all__ = [
    "ALPHA",
    "PREFIX",
    "TRANSITIONS",
    "Assignment",
    "ExperimentConflict",
    "ExperimentNotFound",
    "Experiments",
    "InvalidExperiment",
    "assign",
    "pick_variant",
]

# `experiment:<name>` names an experiment wherever an assistant id is accepted.
PREFIX = "experiment:"
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"running"}),
    "running": frozenset({"paused", "completed"}),
    "paused": frozenset({"running", "completed"}),
    "completed": frozenset({"archived"}),
    "archived": frozenset(),
}
# A difference to the first variant is significant below this two-sided p-value (the
# intervals are 95% ones too).
ALPHA = 0.05


class ExperimentNotFound(NotFound):
    """No such experiment in the caller's org (HTTP 404)."""


class ExperimentConflict(Conflict):
    """The name is taken, or the lifecycle forbids the transition (HTTP 409)."""


class InvalidExperiment(InvalidInput):
    """Variants or weights that cannot make an experiment (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class Assignment:
    """The variant a run of an experiment uses."""

    experiment_id: uuid.UUID
    variant: str
    assistant_id: uuid.UUID
    running: bool

    def metadata(self) -> dict[str, str]:
        return {"experiment_id": str(self.experiment_id), "variant": self.variant}


def pick_variant(experiment_id: uuid.UUID, user_id: str, variants: list[dict[str, Any]]) -> str:
    """The variant a deterministic hash of (experiment, user) lands on, over the weights."""
    digest = hashlib.sha256(f"{experiment_id}:{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v["weight"] for v in variants)
    for variant in variants:
        point -= variant["weight"]
        if point < 0:
            return variant["name"]
    return variants[-1]["name"]


def _ref(raw: uuid.UUID | str) -> uuid.UUID | str:
    """An experiment id, or the name after `experiment:`."""
    if isinstance(raw, uuid.UUID):
        return raw
    if raw.startswith(PREFIX):
        return raw[len(PREFIX) :]
    return uuid.UUID(raw)


async def assign(
    conn: AsyncConnection, principal: Principal, ref: uuid.UUID | str
) -> Assignment | None:
    """The variant of the experiment `ref` (an id or `experiment:<name>`) for the caller, in
    their open transaction: a running experiment's sticky assignment (recorded at the first
    one), a paused or completed one's winner (else its first variant). None when there is
    no such experiment, or it is a draft or archived."""
    try:
        experiment = await store.get(conn, _ref(ref))
    except ValueError:
        return None
    if experiment is None or experiment["status"] in ("draft", "archived"):
        return None
    variants = experiment["variants"]
    if experiment["status"] == "running":
        chosen = pick_variant(experiment["experiment_id"], principal.user_id, variants)
        name = await store.assign(conn, principal, experiment["experiment_id"], chosen)
    else:
        name = experiment["winner"] or variants[0]["name"]
    variant = next(v for v in variants if v["name"] == name)
    return Assignment(
        experiment["experiment_id"],
        name,
        uuid.UUID(variant["assistant_id"]),
        experiment["status"] == "running",
    )


async def _detailed(conn: AsyncConnection, row: dict[str, Any]) -> dict[str, Any]:
    """The experiment with its history and the statuses its lifecycle allows next."""
    history = await store.history(conn, row["experiment_id"])
    return {**row, "history": history, "transitions": sorted(TRANSITIONS[row["status"]])}


def _require_admin(principal: Principal) -> None:
    if not principal.sees_all_users:
        raise Forbidden("only the org's admins may manage experiments")


def _check_variants(variants: list[dict[str, Any]]) -> None:
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise InvalidExperiment("variant names must be unique")
    if not any(v["weight"] > 0 for v in variants):
        raise InvalidExperiment("at least one variant needs a positive weight")


class Experiments:
    """The experiment use cases over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, principal: Principal, experiment: dict[str, Any]) -> dict[str, Any]:
        """A draft experiment; its variants' assistants must be the org's."""
        _require_admin(principal)
        _check_variants(experiment["variants"])
        wanted = {uuid.UUID(v["assistant_id"]) for v in experiment["variants"]}
        async with self.db.tenant(principal) as conn:
            if await store.existing_assistants(conn, list(wanted)) != wanted:
                raise ExperimentNotFound("Assistant not found")
            row = await store.insert(conn, principal, experiment)
            if row is None:
                raise ExperimentConflict(f"an experiment named {experiment['name']!r} exists")
            return await _detailed(conn, row)

    async def get(self, principal: Principal, ref: uuid.UUID | str) -> dict[str, Any]:
        """The experiment (by id or name) with its history of transitions and the next
        statuses it may take."""
        async with self.db.tenant(principal) as conn:
            row = await store.get(conn, ref)
            if row is None:
                raise ExperimentNotFound("Experiment not found")
            return await _detailed(conn, row)

    async def list(
        self, principal: Principal, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        async with self.db.tenant(principal) as conn:
            return await store.list_all(conn, status, limit, offset)

    @asynccontextmanager
    async def _locked(
        self, principal: Principal, experiment_id: uuid.UUID
    ) -> AsyncIterator[tuple[AsyncConnection, dict[str, Any]]]:
        """An admin's transaction with the experiment locked in it (404 if missing)."""
        _require_admin(principal)
        async with self.db.tenant(principal) as conn:
            row = await store.lock(conn, experiment_id)
            if row is None:
                raise ExperimentNotFound("Experiment not found")
            yield conn, row

    async def update(
        self,
        principal: Principal,
        experiment_id: uuid.UUID,
        *,
        weights: dict[str, float] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Change the description and the variants' weights (users assigned keep theirs)."""
        async with self._locked(principal, experiment_id) as (conn, row):
            changes: dict[str, Any] = {"description": description}
            if weights is not None:
                unknown = set(weights) - {v["name"] for v in row["variants"]}
                if unknown:
                    raise InvalidExperiment(f"unknown variants {sorted(unknown)}")
                variants = [
                    {**v, "weight": weights.get(v["name"], v["weight"])} for v in row["variants"]
                ]
                _check_variants(variants)
                changes["variants"] = variants
            row = await store.update(conn, experiment_id, changes)
            return await _detailed(conn, row)

    async def set_status(
        self,
        principal: Principal,
        experiment_id: uuid.UUID,
        status: str,
        *,
        reason: str | None = None,
        winner: str | None = None,
    ) -> dict[str, Any]:
        """Move the experiment along its lifecycle; a move it does not allow is a 409."""
        async with self._locked(principal, experiment_id) as (conn, row):
            if status not in TRANSITIONS[row["status"]]:
                raise ExperimentConflict(
                    f"an experiment cannot go from {row['status']} to {status}"
                )
            if winner is not None and winner not in {v["name"] for v in row["variants"]}:
                raise InvalidExperiment(f"unknown variant {winner!r}")
            row = await store.set_status(conn, principal, row, status, reason, winner)
            return await _detailed(conn, row)

    async def results(self, principal: Principal, ref: uuid.UUID | str) -> dict[str, Any]:
        """Per variant: users, runs, feedback on the metric key, its mean with a 95%
        interval, and the difference to the first variant with a two-sided p-value."""
        _require_admin(principal)
        async with self.db.tenant(principal) as conn:
            experiment = await store.get(conn, ref)
            if experiment is None:
                raise ExperimentNotFound("Experiment not found")
            rows = await store.result_rows(
                conn, experiment["experiment_id"], experiment["metric"]["key"]
            )
        variants = [_summary(v["name"], rows.get(v["name"], {})) for v in experiment["variants"]]
        first = variants[0]
        for variant in variants[1:]:
            variant.update(_compare(first, variant))
            variant["significant"] = variant["p_value"] is not None and variant["p_value"] < ALPHA
        return {
            "experiment_id": experiment["experiment_id"],
            "name": experiment["name"],
            "status": experiment["status"],
            "metric": experiment["metric"],
            "variants": variants,
            "alpha": ALPHA,
            "significant_winner": _significant_winner(variants, experiment["metric"]["goal"]),
        }


def _summary(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A variant's counts and its mean's 95% interval: Wilson for 0/1 scores, Student's t
    otherwise (None with too few scores)."""
    n, mean, sd = row.get("n") or 0, row.get("mean"), row.get("stddev")
    low = high = None
    if n and row.get("is_binary"):
        ci = scipy_stats.binomtest(round(mean * n), n).proportion_ci(method="wilson")
        low, high = float(ci.low), float(ci.high)
    elif n > 1 and sd is not None:
        half = float(scipy_stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return {
        "name": name,
        "users": row.get("users") or 0,
        "runs": row.get("runs") or 0,
        "feedback": n,
        "mean": mean,
        "stddev": sd,
        "binary": bool(row.get("is_binary")),
        "ci_low": low,
        "ci_high": high,
    }


def _compare(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """`other` minus `base`, with the p-value of a two-proportion z-test (both 0/1) or of
    Welch's t-test; None where either side has too few scores."""
    if base["mean"] is None or other["mean"] is None:
        return {"difference": None, "p_value": None, "test": None}
    difference = other["mean"] - base["mean"]
    n1, n2 = base["feedback"], other["feedback"]
    if base["binary"] and other["binary"]:
        pooled = (base["mean"] * n1 + other["mean"] * n2) / (n1 + n2)
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        p = 1.0 if se == 0 else float(2 * scipy_stats.norm.sf(abs(difference) / se))
        return {"difference": difference, "p_value": p, "test": "two-proportion z"}
    if n1 < 2 or n2 < 2:
        return {"difference": difference, "p_value": None, "test": None}
    test = scipy_stats.ttest_ind_from_stats(
        other["mean"], other["stddev"], n2, base["mean"], base["stddev"], n1, equal_var=False
    )
    p = float(test.pvalue)
    return {"difference": difference, "p_value": p if math.isfinite(p) else None, "test": "welch t"}


def _significant_winner(variants: list[dict[str, Any]], goal: str) -> str | None:
    """The best of the variants significantly better than the first in the metric's
    direction; the first when every other is significantly worse; else None (no winner)."""
    sign = 1 if goal == "maximize" else -1
    first, others = variants[0], variants[1:]
    better = [v for v in others if v["significant"] and sign * v["difference"] > 0]
    if better:
        return max(better, key=lambda v: sign * v["mean"])["name"]
    if others and all(v["significant"] and sign * v["difference"] < 0 for v in others):
        return first["name"]
    return None
