"""Feedback routes: give feedback on a run (with a credential, or with the run's feedback
token and none), search it, and aggregate it (`services/feedback.py`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import Field

from tenantgraph.api.deps import Caller, FeedbackService
from tenantgraph.api.payloads import Body, Count, JsonObject, Text
from tenantgraph.services.feedback_tokens import KEY_PATTERN

router = APIRouter(tags=["feedback"])

Json = dict[str, Any]
Key = Annotated[str, Field(pattern=KEY_PATTERN)]
Score = Annotated[float, Field(allow_inf_nan=False)]
GroupBy = Literal["key", "assistant_version", "variant", "day", "tool"]


class TokenFeedback(Body):
    """What a browser sends with a feedback token: the key is the token's."""

    score: Score | None = None
    value: Any = None
    comment: Text | None = None
    run_id: uuid.UUID | None = None


class FeedbackCreate(TokenFeedback):
    key: Key
    correction: Any = None
    source: JsonObject | None = None


class FeedbackSearch(Body):
    run_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    assistant_id: uuid.UUID | None = None
    key: Key | None = None
    user_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: Count = 0


def _event(body: TokenFeedback) -> Json:
    return body.model_dump(exclude={"run_id"})


@router.post("/runs/{run_id}/feedback")
async def create_feedback(
    run_id: uuid.UUID, body: FeedbackCreate, feedback: FeedbackService, caller: Caller
) -> Json:
    return await feedback.record(caller, run_id, _event(body))


@router.post("/threads/{thread_id}/runs/{run_id}/feedback")
async def create_thread_run_feedback(
    thread_id: uuid.UUID,
    run_id: uuid.UUID,
    body: FeedbackCreate,
    feedback: FeedbackService,
    caller: Caller,
) -> Json:
    return await feedback.record(caller, run_id, _event(body), thread_id=thread_id)


@router.post("/feedback/tokens/{token}")
async def create_feedback_with_token(
    token: str, body: TokenFeedback, feedback: FeedbackService
) -> Json:
    """No credential: the token is one (signed, expiring, for one run and key)."""
    return await feedback.record_with_token(token, _event(body), run_id=body.run_id)


@router.post("/feedback/search")
async def search_feedback(body: FeedbackSearch, feedback: FeedbackService, caller: Caller) -> list:
    """The caller's own events; an admin's search covers the org (and may name a user)."""
    filters = body.model_dump(exclude={"limit", "offset"})
    return await feedback.search(caller, filters, limit=body.limit, offset=body.offset)


@router.get("/feedback/stats")
async def feedback_stats(
    feedback: FeedbackService,
    caller: Caller,
    key: Annotated[Key | None, Query()] = None,
    assistant_id: uuid.UUID | None = None,
    experiment_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: GroupBy | None = None,
) -> list:
    """Per group: count, scored, mean, stddev, min, max, and for 0/1 scores the rate with
    its 95% Wilson interval."""
    filters = {
        "key": key,
        "assistant_id": assistant_id,
        "experiment_id": experiment_id,
        "since": since,
        "until": until,
    }
    return await feedback.stats(caller, filters, group_by)
