"""In-process token buckets: the rate limits' fallback while Valkey is out of reach.

The same buckets, limits and reply as the Valkey script (ephemeral/ratelimit.py), kept in
this process's memory with its monotonic clock. Each process then enforces every budget on
its own, so N server processes admit at most N times a budget until Valkey is back: a
bound, where failing closed would turn a Valkey outage into an outage of every route.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

__all__ = ["LocalBuckets"]


class LocalBuckets:
    """Buckets by key: `{key: (tokens, at µs)}`; a missing key is a full bucket."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, int, float, float]] = {}

    def take(self, keys: Sequence[str], args: Sequence[float]) -> list[int]:
        """The Valkey script's contract: `args` = cost, then (limit, refill per µs) per key;
        the reply is allowed, then (remaining, µs until full, µs until `cost`) per key."""
        now = time.monotonic_ns() // 1000
        cost = args[0]
        limits = [(args[1 + 2 * i], args[2 + 2 * i]) for i in range(len(keys))]
        levels = [
            self._level(key, limit, rate, now)
            for key, (limit, rate) in zip(keys, limits, strict=True)
        ]
        allowed = all(level >= cost for level in levels)
        if len(self._buckets) > self.max_keys:
            self._sweep(now)
        reply = [int(allowed)]
        for key, (limit, rate), level in zip(keys, limits, levels, strict=True):
            if allowed:
                level -= cost
                self._buckets[key] = (level, now, limit, rate)
            reply += [
                math.floor(level),
                math.ceil((limit - level) / rate),
                math.ceil(max(0, cost - level) / rate),
            ]
        return reply

    def _level(self, key: str, limit: float, rate: float, now: int) -> float:
        state = self._buckets.get(key)
        if state is None:
            return limit
        tokens, at, _, _ = state
        return min(limit, tokens + max(0, now - at) * rate)

    def _sweep(self, now: int) -> None:
        """Forget full buckets (as Valkey expires their keys)."""
        self._buckets = {
            key: state
            for key, state in self._buckets.items()
            if state[0] + (now - state[1]) * state[3] < state[2]
        }
