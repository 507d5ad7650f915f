"""An org's API-key generation in Valkey: what lets servers cache resolved API keys.

Every server keeps the keys it resolved with the org's generation read *before* the
Postgres lookup, and reads the current one with each request's rate-limit check (the same
round trip, ephemeral/ratelimit.py); a process that revokes a key (or deletes the org)
sets a new generation after its commit, so every server's next request with a key of that
org looks it up again. A generation is the Valkey server's time in µs, never a counter:
a key that expired or was lost with a restart comes back as a value nobody has cached.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from tenantgraph.scope import KeyKind, redis_key

__all__ = ["GENERATION_MS", "bump_generation", "generation_key"]

# A generation lives this long; its loss only makes servers look their keys up once more.
GENERATION_MS = 3_600_000

# KEYS: the generation; ARGV: its lifetime in ms. A new value, greater than the old one
# even within one microsecond.
_BUMP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if old and now <= old then now = old + 1 end
local generation = string.format('%d', now)
redis.call('SET', KEYS[1], generation, 'PX', ARGV[1])
return generation
"""


def generation_key(org_id: str) -> str:
    """`{org}:keygen`: the org's API-key generation."""
    return redis_key(org_id, KeyKind.KEY_GENERATION)


async def bump_generation(redis: aioredis.Redis, org_id: str) -> None:
    """Invalidate every server's cached keys of `org_id` (call after the commit)."""
    await redis.eval(_BUMP, 1, generation_key(org_id), GENERATION_MS)
