"""Episodic memory: what happened in one session, fading after a TTL, ranked by recency.

Per (org, user, session) two keys in one slot: a sorted set of episode ids scored by their
server-clock creation time (µs) and a hash holding each episode (`<id>` → JSON) and its
summarized mark (`s:<id>`). Each episode expires `ttl` after it was written even though
Valkey 8 has no per-field TTL: reads skip and writes drop episodes older than `ttl`, and
both keys expire `ttl` after the last write. A session holds at most `max_episodes`.

A graph may keep an episode for good with `promote`, which writes it to the long-term
store under the caller's memory namespace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from langgraph.store.base import BaseStore

from tenantgraph.ephemeral.context import bound, config_principal, config_value
from tenantgraph.scope import MEMORIES, KeyKind, Principal, memory_namespace, redis_key

__all__ = ["Episode", "EpisodicMemory", "episodes", "promote"]

# KEYS: index, data. ARGV: id, JSON, ttl µs, max episodes. Returns the creation time (µs):
# server time, or one more than the newest episode's, so creation order is strict.
# Numbers are formatted explicitly: Lua's own number-to-string keeps only 14 digits.
_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] and tonumber(last[2]) >= now then now = tonumber(last[2]) + 1 end
local ttl = tonumber(ARGV[3])
local function drop(ids)
    for _, id in ipairs(ids) do
        redis.call('ZREM', KEYS[1], id)
        redis.call('HDEL', KEYS[2], id, 's:' .. id)
    end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - ttl)))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if extra > 0 then drop(redis.call('ZRANGE', KEYS[1], 0, extra - 1)) end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000))
redis.call('PEXPIRE', KEYS[2], math.ceil(ttl / 1000))
return now
"""

# KEYS: index, data. ARGV: ttl µs. Returns now, then (id, created µs, JSON, summarized)
# for every live episode, newest first.
_READ = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local oldest = '(' .. string.format('%d', now - tonumber(ARGV[1]))
local found = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', oldest, 'WITHSCORES')
local reply = {now}
for i = 1, #found, 2 do
    local id = found[i]
    local data = redis.call('HMGET', KEYS[2], id, 's:' .. id)
    if data[1] then
        reply[#reply + 1] = id
        reply[#reply + 1] = found[i + 1]
        reply[#reply + 1] = data[1]
        reply[#reply + 1] = data[2] and 1 or 0
    end
end
return reply
"""

# KEYS: index, data. ARGV: ids. Marks the live ones; returns how many.
_MARK = """
local marked = 0
for _, id in ipairs(ARGV) do
    if redis.call('ZSCORE', KEYS[1], id) then
        redis.call('HSET', KEYS[2], 's:' .. id, '1')
        marked = marked + 1
    end
end
return marked
"""


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    content: Any
    created_at_ms: int
    importance: float = 1.0
    summarized: bool = False

    def score(self, now_ms: int, half_life_seconds: float) -> float:
        """`importance` halved for every `half_life_seconds` of age."""
        age = max(0, now_ms - self.created_at_ms) / 1000
        return self.importance * 0.5 ** (age / half_life_seconds)


class EpisodicMemory:
    def __init__(
        self,
        redis: aioredis.Redis,
        principal: Principal,
        session_id: str,
        *,
        ttl_seconds: int,
        max_episodes: int,
    ) -> None:
        if ttl_seconds < 1 or max_episodes < 1:
            raise ValueError("episodic memory needs ttl_seconds >= 1 and max_episodes >= 1")
        self.ttl_us = ttl_seconds * 1_000_000
        self.max_episodes = max_episodes
        base = (principal.org_id, KeyKind.EPISODES, principal.user_id, session_id)
        self.keys = [redis_key(*base, "idx"), redis_key(*base, "data")]
        self._add = redis.register_script(_ADD)
        self._read = redis.register_script(_READ)
        self._mark = redis.register_script(_MARK)
        self.redis = redis

    async def add(self, content: Any, *, importance: float = 1.0) -> Episode:
        """Remember `content` (JSON-serialisable) as the session's newest episode."""
        episode_id = uuid.uuid4().hex
        value = json.dumps({"content": content, "importance": importance})
        created = await self._add(
            keys=self.keys, args=[episode_id, value, self.ttl_us, self.max_episodes]
        )
        return Episode(episode_id, content, int(created) // 1000, importance)

    async def recent(
        self, limit: int | None = None, *, include_summarized: bool = True
    ) -> list[Episode]:
        """Live episodes, newest first."""
        _, found = await self._load()
        if not include_summarized:
            found = [e for e in found if not e.summarized]
        return found[:limit] if limit is not None else found

    async def ranked(
        self, limit: int = 10, *, half_life_seconds: float = 3600, include_summarized: bool = False
    ) -> list[tuple[float, Episode]]:
        """The `limit` best episodes by recency-decayed importance, best first."""
        now, found = await self._load()
        scored = [
            (e.score(now, half_life_seconds), e)
            for e in found
            if include_summarized or not e.summarized
        ]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return scored[:limit]

    async def mark_summarized(self, *episode_ids: str) -> int:
        """Mark episodes as folded into a summary; returns how many were still live."""
        if not episode_ids:
            return 0
        return int(await self._mark(keys=self.keys, args=list(episode_ids)))

    async def expire_session(self) -> None:
        """Forget the whole session now."""
        await self.redis.delete(*self.keys)

    async def _load(self) -> tuple[int, list[Episode]]:
        reply = await self._read(keys=self.keys, args=[self.ttl_us])
        found = []
        for i in range(1, len(reply), 4):
            raw_id, created, raw, summarized = reply[i : i + 4]
            value = json.loads(raw)
            found.append(
                Episode(
                    id=raw_id.decode() if isinstance(raw_id, bytes) else raw_id,
                    content=value["content"],
                    created_at_ms=int(float(created)) // 1000,
                    importance=value["importance"],
                    summarized=bool(summarized),
                )
            )
        return int(reply[0]) // 1000, found


def episodes(config: Mapping[str, Any], *, session_id: str | None = None) -> EpisodicMemory:
    """The running graph's episodic memory (for its thread unless `session_id`)."""
    redis, settings = bound()
    return EpisodicMemory(
        redis,
        config_principal(config),
        session_id or config_value(config, "thread_id"),
        ttl_seconds=settings.episode_ttl_seconds,
        max_episodes=settings.episode_max_per_session,
    )


async def promote(
    store: BaseStore,
    config: Mapping[str, Any],
    episode: Episode,
    *,
    category: str = MEMORIES,
    global_assistant: bool = False,
) -> tuple[str, ...]:
    """Keep `episode` in long-term memory; returns the namespace it was written to.

    The namespace comes from `scope.memory_namespace`; the tenant store the server hands
    the graph adds the org and owner, so this never names a tenant itself.
    """
    namespace = memory_namespace(config, category, global_assistant=global_assistant)
    await store.aput(
        namespace,
        episode.id,
        {
            "content": episode.content,
            "importance": episode.importance,
            "created_at_ms": episode.created_at_ms,
            "source": "episode",
        },
    )
    return namespace
