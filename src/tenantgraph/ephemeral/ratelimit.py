"""Token-bucket rate limits per org, per user and per API key, in Valkey.

A check takes one token from every bucket that applies to the caller, or from none: one
Lua script reads and refills all of them with the server's clock (`TIME`), so API
processes with skewed clocks agree and concurrent checks cannot both spend the last token.
Every key of a check starts with the caller's `{org_id}` hash tag, so the script also runs
unchanged on Redis Cluster. Requests and runs are separate budgets with separate keys.

Limits are global settings (`RateLimits`) that an org may override per bucket in the
tenant table `rate_limits` (read through `load_overrides`); they are cached in-process
for a few seconds.

Valkey out of reach: checks fail open to in-process buckets (ephemeral/local_buckets.py),
so each process still enforces every budget, and Valkey is tried again every second.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis

from tenantgraph.ephemeral.client import VALKEY_DOWN
from tenantgraph.ephemeral.key_generations import GENERATION_MS, generation_key
from tenantgraph.ephemeral.local_buckets import LocalBuckets
from tenantgraph.errors import RateLimited
from tenantgraph.scope import KeyKind, Principal, PrincipalKind, redis_key, validate_identifier
from tenantgraph.settings import EphemeralSettings, Limit, RateLimits

__all__ = ["Bucket", "Decision", "LoadOverrides", "RateLimiter"]

log = logging.getLogger(__name__)
_LOCAL_SECONDS = 1.0  # after a Valkey failure, checks stay local this long before a retry


class Bucket(enum.StrEnum):
    """The buckets a check can draw from; the names are also `rate_limits.bucket` values."""

    ORG_REQUESTS = "org_requests"
    USER_REQUESTS = "user_requests"
    API_KEY_REQUESTS = "api_key_requests"
    ORG_RUNS = "org_runs"
    USER_RUNS = "user_runs"


# KEYS: the buckets, then optionally the org's API-key generation; ARGV: cost, then (limit,
# refill per microsecond) per bucket, then the generation's lifetime in ms if asked for.
# A bucket is a hash {t: tokens, at: server time in µs} (formatted explicitly: Lua's own
# number-to-string keeps 14 digits, too few for microseconds); a missing key is a full bucket,
# and each key expires when it would be full again, so idle buckets cost no memory.
# Reply: allowed, then (remaining, µs until full, µs until `cost` tokens) per bucket, then
# the generation (ephemeral/key_generations.py), started at the server's time if missing.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local buckets = math.floor((#ARGV - 1) / 2)
local levels = {}
local allowed = 1
for i = 1, buckets do
    local limit = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    local state = redis.call('HMGET', KEYS[i], 't', 'at')
    local level = limit
    if state[1] then
        level = math.min(limit, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
    end
    levels[i] = level
    if level < cost then allowed = 0 end
end
local reply = {allowed}
for i = 1, buckets do
    local limit = tonumber(ARGV[2 * i])
    local rate = tonumber(ARGV[2 * i + 1])
    local level = levels[i]
    if allowed == 1 then
        level = level - cost
        local at = string.format('%d', now)
        redis.call('HSET', KEYS[i], 't', string.format('%.17g', level), 'at', at)
        redis.call('PEXPIRE', KEYS[i], math.ceil((limit - level) / rate / 1000) + 1)
    end
    reply[#reply + 1] = math.floor(level)
    reply[#reply + 1] = math.ceil((limit - level) / rate)
    reply[#reply + 1] = math.ceil(math.max(0, cost - level) / rate)
end
if #KEYS > buckets then
    local last = #KEYS
    local generation = redis.call('GET', KEYS[last])
    if not generation then
        generation = string.format('%d', now)
        redis.call('SET', KEYS[last], generation, 'PX', ARGV[#ARGV])
    end
    reply[#reply + 1] = generation
end
return reply
"""


# Reads an org's overrides (services/limits.py: OrgLimits.get); Postgres is not reached
# from this layer.
LoadOverrides = Callable[[Principal], Awaitable[Mapping[Bucket, Limit]]]


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check, reported for its tightest bucket.

    `reset_seconds` is the time until that bucket is full again; `retry_after_seconds`
    (denials only) the time until every bucket of the check holds enough tokens.
    `key_generation`: the org's API-key generation read in the same call, when asked for
    and Valkey answered (None while checks are in-process).
    """

    allowed: bool
    bucket: Bucket
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int
    policy: str
    key_generation: str | None = None

    def budget(self) -> dict[str, str]:
        """The `RateLimit-*` fields (draft-ietf-httpapi-ratelimit-headers-07) of the bucket."""
        return {
            "Limit": str(self.limit),
            "Remaining": str(self.remaining),
            "Reset": str(self.reset_seconds),
            "Policy": self.policy,
        }

    def headers(self) -> list[tuple[str, str]]:
        """The `RateLimit-*` headers of an admitted request."""
        return [(f"RateLimit-{name}", value) for name, value in self.budget().items()]

    def denial(self) -> RateLimited:
        """The error a denied check raises: the bucket, and when to retry."""
        return RateLimited(
            f"Rate limit exceeded ({self.bucket}); retry later.",
            retry_after_seconds=self.retry_after_seconds,
            budget=self.budget(),
        )


def _run_buckets(principal: Principal) -> list[tuple[Bucket, tuple[str, ...]]]:
    """The org's and the user's run budgets (separate from their request budgets)."""
    return [
        (Bucket.ORG_RUNS, ("runs", "org")),
        (Bucket.USER_RUNS, ("runs", "user", principal.user_id)),
    ]


def _text(rest: list) -> str | None:
    """The generation after the buckets' states, if the reply carries one."""
    if not rest:
        return None
    return rest[0].decode() if isinstance(rest[0], bytes) else str(rest[0])


class RateLimiter:
    """Checks request and run budgets; one instance per process, shared by all requests."""

    def __init__(
        self, redis: aioredis.Redis, load_overrides: LoadOverrides, settings: EphemeralSettings
    ) -> None:
        self.redis = redis
        self.load_overrides = load_overrides
        self.defaults = settings.rate_limits
        self.cache_seconds = settings.rate_limit_cache_seconds
        self._take = redis.register_script(_TAKE)
        self._cache: dict[str, tuple[float, asyncio.Future[RateLimits]]] = {}
        self._local = LocalBuckets()
        self._local_until = 0.0  # monotonic time until which checks stay local

    async def check_request(
        self,
        principal: Principal,
        *,
        api_key_id: str | None = None,
        cost: int = 1,
        with_run: bool = False,
        key_generation: bool = False,
    ) -> Decision:
        """Spend `cost` from the org's, the user's and (for API-key callers) the key's
        request buckets, or from none of them. `with_run`: the request creates one run,
        and `cost` is spent from the run budgets too, in the same call (all or nothing).
        `key_generation`: read the org's API-key generation in the same round trip."""
        limits = await self.limits(principal)
        buckets = [
            (Bucket.ORG_REQUESTS, ("req", "org")),
            (Bucket.USER_REQUESTS, ("req", "user", principal.user_id)),
        ]
        if principal.kind is PrincipalKind.API_KEY and api_key_id is not None:
            validate_identifier(api_key_id, "api_key_id")
            buckets.append((Bucket.API_KEY_REQUESTS, ("req", "key", api_key_id)))
        if with_run:
            buckets += _run_buckets(principal)
        return await self._check(principal, limits, buckets, cost, key_generation)

    async def check_run(self, principal: Principal, *, cost: int = 1) -> Decision:
        """Spend `cost` from the org's and the user's run budgets (separate from requests)."""
        limits = await self.limits(principal)
        return await self._check(principal, limits, _run_buckets(principal), cost, False)

    async def limits(self, principal: Principal) -> RateLimits:
        """The defaults with the org's overrides applied, cached for `cache_seconds`.

        Concurrent misses for one org share one database read.
        """
        now = time.monotonic()
        entry = self._cache.get(principal.org_id)
        if entry is None or entry[0] <= now:
            if len(self._cache) > 10_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            future = asyncio.ensure_future(self._load(principal))
            future.add_done_callback(lambda f, org=principal.org_id: self._forget_failed(org, f))
            self._cache[principal.org_id] = (now + self.cache_seconds, future)
        else:
            future = entry[1]
            if future.done():
                return future.result()
        return await asyncio.shield(future)

    def invalidate(self, org_id: str) -> None:
        """Forget an org's cached overrides (other processes see changes within the TTL)."""
        self._cache.pop(org_id, None)

    async def _load(self, principal: Principal) -> RateLimits:
        overrides = await self.load_overrides(principal)
        return self.defaults.model_copy(update={b.value: lim for b, lim in overrides.items()})

    def _forget_failed(self, org_id: str, future: asyncio.Future[RateLimits]) -> None:
        if future.cancelled() or future.exception() is not None:
            entry = self._cache.get(org_id)
            if entry is not None and entry[1] is future:
                del self._cache[org_id]

    async def _check(
        self,
        principal: Principal,
        limits: RateLimits,
        buckets: list[tuple[Bucket, tuple[str, ...]]],
        cost: int,
        key_generation: bool,
    ) -> Decision:
        chosen: list[Limit] = [getattr(limits, bucket.value) for bucket, _ in buckets]
        if cost < 1 or any(cost > limit.limit for limit in chosen):
            raise ValueError(f"cost {cost} must be between 1 and every bucket's limit")
        keys = [redis_key(principal.org_id, KeyKind.RATE_LIMIT, *parts) for _, parts in buckets]
        args: list[float] = [cost]
        for limit in chosen:
            args += [limit.limit, limit.limit / (limit.window_seconds * 1_000_000)]
        generation = generation_key(principal.org_id) if key_generation else None
        reply = await self._spend(keys, args, generation)
        allowed = bool(reply[0])
        states = [tuple(int(x) for x in reply[1 + 3 * i : 4 + 3 * i]) for i in range(len(keys))]
        if allowed:
            tight = min(range(len(keys)), key=lambda i: (states[i][0], -states[i][1]))
        else:
            tight = max(range(len(keys)), key=lambda i: states[i][2])
        remaining, until_full_us, until_cost_us = states[tight]
        return Decision(
            allowed=allowed,
            bucket=buckets[tight][0],
            limit=chosen[tight].limit,
            remaining=max(0, remaining),
            reset_seconds=math.ceil(until_full_us / 1_000_000),
            retry_after_seconds=0 if allowed else max(1, math.ceil(until_cost_us / 1_000_000)),
            policy=", ".join(
                f'{limit.limit};w={limit.window_seconds};comment="{bucket}"'
                for (bucket, _), limit in zip(buckets, chosen, strict=True)
            ),
            key_generation=_text(reply[1 + 3 * len(keys) :]),
        )

    async def _spend(self, keys: list[str], args: list[float], generation: str | None) -> list:
        """One check in Valkey (with the org's key generation, if `generation` names its
        key), or in this process while Valkey is out of reach (and no generation)."""
        if time.monotonic() >= self._local_until:
            extra = ([generation], [GENERATION_MS]) if generation else ([], [])
            try:
                reply = await self._take(keys=[*keys, *extra[0]], args=[*args, *extra[1]])
            except VALKEY_DOWN as exc:
                if not self._local_until:
                    log.warning("rate limits: Valkey out of reach, checked in-process (%r)", exc)
                self._local_until = time.monotonic() + _LOCAL_SECONDS
            else:
                if self._local_until:
                    log.warning("rate limits: Valkey is back")
                    self._local_until = 0.0
                return reply
        return self._local.take(keys, args)
