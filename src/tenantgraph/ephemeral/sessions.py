"""Session windows: the last N messages of one conversation, as short-term memory.

One list per (org, user, assistant, session). An append pushes, trims to N and renews the
TTL in one MULTI, so the window is never longer than N nor left without an expiry.
Messages are JSON objects (convert LangChain messages with `message_to_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from tenantgraph.ephemeral.context import bound, config_principal, config_value
from tenantgraph.scope import KeyKind, Principal, redis_key

__all__ = ["SessionWindow", "session_window"]


class SessionWindow:
    def __init__(
        self,
        redis: aioredis.Redis,
        principal: Principal,
        assistant_id: str,
        session_id: str,
        *,
        size: int,
        ttl_seconds: int,
    ) -> None:
        if size < 1 or ttl_seconds < 1:
            raise ValueError("a session window needs size >= 1 and ttl_seconds >= 1")
        self.redis = redis
        self.size = size
        self.ttl_seconds = ttl_seconds
        self.key = redis_key(
            principal.org_id, KeyKind.SESSION_WINDOW, principal.user_id, assistant_id, session_id
        )

    async def append(self, *messages: Mapping[str, Any]) -> int:
        """Add messages at the end, drop the oldest beyond `size`; return the new length."""
        if not messages:
            return int(await self.redis.llen(self.key))
        encoded = [json.dumps(dict(m), separators=(",", ":")) for m in messages]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.key, *encoded)
            pipe.ltrim(self.key, -self.size, -1)
            pipe.expire(self.key, self.ttl_seconds)
            pipe.llen(self.key)
            *_, length = await pipe.execute()
        return int(length)

    async def messages(self, last: int | None = None) -> list[dict[str, Any]]:
        """The window, oldest first; only the `last` newest if given."""
        start = -last if last else 0
        return [json.loads(raw) for raw in await self.redis.lrange(self.key, start, -1)]

    async def clear(self) -> None:
        await self.redis.delete(self.key)


def session_window(config: Mapping[str, Any], *, session_id: str | None = None) -> SessionWindow:
    """The window of the running graph's conversation (its thread unless `session_id`)."""
    redis, settings = bound()
    return SessionWindow(
        redis,
        config_principal(config),
        config_value(config, "assistant_id"),
        session_id or config_value(config, "thread_id"),
        size=settings.session_window_size,
        ttl_seconds=settings.session_window_ttl_seconds,
    )
