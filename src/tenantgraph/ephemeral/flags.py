"""Conversation flags: small, expiring facts about one user's thread.

The channels of a conversation need to know whether the agent is engaged in a thread
(answer follow-ups without a mention), whether a tool call waits for the user's
confirmation, and whether the thread was escalated to a human. Each is one key per
(org, user, thread, flag) with a TTL; taking a pending confirmation is atomic (GETDEL),
so only one reply can confirm a tool call.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.scope import KeyKind, Principal, redis_key

__all__ = ["ConversationFlags", "Escalation", "Flag", "PendingConfirmation"]


class Flag(enum.StrEnum):
    ENGAGED = "engaged"
    PENDING_CONFIRMATION = "confirm"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class PendingConfirmation:
    """A tool call the agent will only run once the user says yes."""

    tool_call_id: str
    tool_name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Escalation:
    """The thread was handed to a human."""

    reason: str
    level: str = "human"


class ConversationFlags:
    def __init__(
        self, redis: aioredis.Redis, principal: Principal, thread_id: str, *, ttl_seconds: int
    ) -> None:
        self.redis = redis
        self.principal = principal
        self.thread_id = thread_id
        self.ttl_seconds = ttl_seconds

    def key(self, flag: Flag) -> str:
        return redis_key(
            self.principal.org_id,
            KeyKind.FLAG,
            self.principal.user_id,
            self.thread_id,
            Flag(flag).value,
        )

    async def engage(self, ttl_seconds: int | None = None) -> None:
        await self.redis.set(self.key(Flag.ENGAGED), b"1", ex=ttl_seconds or self.ttl_seconds)

    async def is_engaged(self) -> bool:
        return bool(await self.redis.exists(self.key(Flag.ENGAGED)))

    async def disengage(self) -> None:
        await self.redis.delete(self.key(Flag.ENGAGED))

    async def request_confirmation(
        self, pending: PendingConfirmation, ttl_seconds: int | None = None
    ) -> bool:
        """Wait for the user on `pending`; False if another confirmation is already waiting."""
        return bool(
            await self.redis.set(
                self.key(Flag.PENDING_CONFIRMATION),
                json.dumps(asdict(pending)),
                ex=ttl_seconds or self.ttl_seconds,
                nx=True,
            )
        )

    async def pending_confirmation(self) -> PendingConfirmation | None:
        raw = await self.redis.get(self.key(Flag.PENDING_CONFIRMATION))
        return PendingConfirmation(**json.loads(raw)) if raw is not None else None

    async def take_confirmation(self) -> PendingConfirmation | None:
        """Remove and return the waiting confirmation; of concurrent callers one gets it."""
        raw = await self.redis.getdel(self.key(Flag.PENDING_CONFIRMATION))
        return PendingConfirmation(**json.loads(raw)) if raw is not None else None

    async def escalate(self, escalation: Escalation, ttl_seconds: int | None = None) -> None:
        await self.redis.set(
            self.key(Flag.ESCALATION),
            json.dumps(asdict(escalation)),
            ex=ttl_seconds or self.ttl_seconds,
        )

    async def escalation(self) -> Escalation | None:
        raw = await self.redis.get(self.key(Flag.ESCALATION))
        return Escalation(**json.loads(raw)) if raw is not None else None

    async def clear_escalation(self) -> None:
        await self.redis.delete(self.key(Flag.ESCALATION))
