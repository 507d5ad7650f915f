"""Escalation: a thread handed to a human. While it is with a human, the channels record
their users' messages in the thread and the assistant does not answer.

The state is the thread's `metadata.escalation` (durable) and a conversation flag in
Valkey (`ConversationFlags`, keyed by the thread's owner), which the channels read first.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import redis.asyncio as aioredis

from tenantgraph.ephemeral.flags import ConversationFlags, Escalation
from tenantgraph.scope import Principal
from tenantgraph.services.threads import Threads

__all__ = ["EscalationStatus", "Escalations"]

EscalationStatus = Literal["human", "agent"]


class Escalations:
    """`POST /threads/{id}/escalation` and the channels' check of it."""

    def __init__(self, threads: Threads, redis: aioredis.Redis, *, ttl_seconds: int) -> None:
        self.threads = threads
        self.redis = redis
        self.ttl_seconds = ttl_seconds

    def _flags(self, org_id: str, thread: dict[str, Any]) -> ConversationFlags:
        """The flags of the thread's owner (an admin may escalate a user's thread)."""
        owner = Principal(org_id, thread["metadata"]["owner"])
        return ConversationFlags(
            self.redis, owner, str(thread["thread_id"]), ttl_seconds=self.ttl_seconds
        )

    async def set(
        self,
        principal: Principal,
        thread_id: uuid.UUID,
        status: EscalationStatus,
        reason: str | None,
    ) -> dict[str, Any]:
        """Hand the thread to a human or back to the assistant (whoever may see it)."""
        escalation = {"status": status, "reason": reason}
        thread = await self.threads.update(
            principal, thread_id, metadata={"escalation": escalation}
        )
        flags = self._flags(principal.org_id, thread)
        if status == "human":
            await flags.escalate(Escalation(reason or ""))
        else:
            await flags.clear_escalation()
        return {"thread_id": thread_id, **escalation}

    async def with_human(self, principal: Principal, thread: dict[str, Any]) -> bool:
        """Whether `thread` (a row of `principal`'s org) is with a human now: its Valkey
        flag, else (the flag expired or Valkey was emptied) its metadata."""
        if await self._flags(principal.org_id, thread).escalation() is not None:
            return True
        return (thread["metadata"].get("escalation") or {}).get("status") == "human"
