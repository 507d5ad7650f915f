"""`POST /threads/{id}/escalation`: hand a conversation to a human, or back to the
assistant. Whoever may see the thread may do it (its owner, the org's admins)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from tenantgraph.api.deps import Caller, app_state
from tenantgraph.api.payloads import Body, Text
from tenantgraph.services.escalation import EscalationStatus

router = APIRouter(tags=["channels"])


class EscalationBody(Body):
    status: EscalationStatus
    reason: Text | None = Field(None, max_length=1000)


@router.post("/threads/{thread_id}/escalation")
async def escalate_thread(
    thread_id: uuid.UUID, body: EscalationBody, request: Request, caller: Caller
) -> dict[str, Any]:
    escalations = app_state(request).escalations
    return await escalations.set(caller, thread_id, body.status, body.reason)
