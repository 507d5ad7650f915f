"""Experiment routes: create, read, list, change and move an experiment along its
lifecycle, and its results (`services/experiments.py`). Admins manage; members read."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import Field

from tenantgraph.api.deps import Caller, ExperimentService
from tenantgraph.api.payloads import Body, Count, Text
from tenantgraph.services.feedback_tokens import KEY_PATTERN

router = APIRouter(tags=["experiments"])

Json = dict[str, Any]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Weight = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
Status = Literal["draft", "running", "paused", "completed", "archived"]


class Variant(Body):
    name: Name
    assistant_id: uuid.UUID
    weight: Weight = 1.0


class Metric(Body):
    key: Annotated[str, Field(pattern=KEY_PATTERN)]
    goal: Literal["maximize", "minimize"] = "maximize"


class ExperimentCreate(Body):
    name: Name
    description: Text | None = None
    variants: list[Variant] = Field(min_length=1, max_length=20)
    metric: Metric


class ExperimentPatch(Body):
    description: Text | None = None
    weights: dict[str, Weight] | None = None


class StatusChange(Body):
    status: Status
    reason: Text | None = None
    winner: str | None = None


@router.post("/experiments")
async def create_experiment(
    body: ExperimentCreate, experiments: ExperimentService, caller: Caller
) -> Json:
    return await experiments.create(caller, body.model_dump(mode="json"))


@router.get("/experiments")
async def list_experiments(
    experiments: ExperimentService,
    caller: Caller,
    status: Status | None = None,
    limit: Annotated[int, Field(ge=1, le=1000)] = 100,
    offset: Count = 0,
) -> list:
    return await experiments.list(caller, status=status, limit=limit, offset=offset)


@router.get("/experiments/{experiment_id}")
async def get_experiment(
    experiment_id: uuid.UUID, experiments: ExperimentService, caller: Caller
) -> Json:
    """The experiment with its history of transitions (who, when, from, to, why)."""
    return await experiments.get(caller, experiment_id)


@router.patch("/experiments/{experiment_id}")
async def patch_experiment(
    experiment_id: uuid.UUID, body: ExperimentPatch, experiments: ExperimentService, caller: Caller
) -> Json:
    return await experiments.update(
        caller, experiment_id, weights=body.weights, description=body.description
    )


@router.post("/experiments/{experiment_id}/status")
async def set_experiment_status(
    experiment_id: uuid.UUID, body: StatusChange, experiments: ExperimentService, caller: Caller
) -> Json:
    return await experiments.set_status(
        caller, experiment_id, body.status, reason=body.reason, winner=body.winner
    )


@router.get("/experiments/{experiment_id}/results")
async def experiment_results(
    experiment_id: uuid.UUID, experiments: ExperimentService, caller: Caller
) -> Json:
    """Per variant: users, runs, feedback on the metric, mean ± 95% interval, and the
    difference to the first variant with its p-value and whether it is significant; the
    significant winner, if any."""
    return await experiments.results(caller, experiment_id)
