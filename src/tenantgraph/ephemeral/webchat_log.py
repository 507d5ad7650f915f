"""A web chat conversation's frames, kept so a client that reconnects gets what it missed.

Frames are appended in batches (all frames of one run event at once) to a Valkey list;
a frame's `seq` is its position in the list (1-based), so numbering and storing are one
atomic `RPUSH`. One task at a time follows a conversation's run: it holds the
conversation's follower lease while it writes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.scope import webchat_key

__all__ = ["ConversationLog"]

# Push a batch and refresh the TTL in one call: returns the list's new length.
_APPEND = """
local n = redis.call('RPUSH', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""
# Drop the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ConversationLog:
    """The frames of one conversation of one org, and its follower lease."""

    def __init__(
        self, redis: aioredis.Redis, org_id: str, conversation_id: str, *, ttl_seconds: int
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.frames_key = webchat_key(org_id, conversation_id, "frames")
        self.lease_key = webchat_key(org_id, conversation_id, "follower")
        self.lease_token = uuid.uuid4().hex

    async def append(self, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store `frames` in order; returns them with their `seq`."""
        if not frames:
            return []
        raw = [json.dumps(f, separators=(",", ":")) for f in frames]
        length = int(
            await self.redis.eval(_APPEND, 1, self.frames_key, self.ttl_seconds, *raw)  # type: ignore[misc]
        )
        first = length - len(frames) + 1
        return [{**f, "seq": first + i} for i, f in enumerate(frames)]

    async def after(self, seq: int) -> list[dict[str, Any]]:
        """Every frame after `seq`, with its `seq`."""
        raw = await self.redis.lrange(self.frames_key, max(seq, 0), -1)
        return [{**json.loads(r), "seq": seq + 1 + i} for i, r in enumerate(raw)]

    async def lease(self, seconds: float) -> bool:
        """Take or renew the follower lease (False: another task holds it)."""
        ms = int(seconds * 1000)
        if await self.redis.set(self.lease_key, self.lease_token, nx=True, px=ms):
            return True
        if await self.redis.get(self.lease_key) == self.lease_token.encode():
            await self.redis.pexpire(self.lease_key, ms)
            return True
        return False

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.lease_key, self.lease_token)  # type: ignore[misc]
