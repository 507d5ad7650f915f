"""Settings of the ephemeral state: global rate limits, idempotency and memory lifetimes.

A sub-model of the process `Settings` (field `ephemeral`), so every value can be set from
the environment as `TENANTGRAPH_EPHEMERAL__<FIELD>` or from the config file.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["EphemeralSettings", "Limit", "RateLimits"]


class Limit(BaseModel):
    """A token bucket: holds `limit` tokens and refills all of them in `window_seconds`."""

    limit: int = Field(gt=0)
    window_seconds: int = Field(gt=0)


class RateLimits(BaseModel):
    """Global defaults of every bucket; an org may override each one (table `rate_limits`)."""

    org_requests: Limit = Limit(limit=6000, window_seconds=60)
    user_requests: Limit = Limit(limit=600, window_seconds=60)
    api_key_requests: Limit = Limit(limit=600, window_seconds=60)
    org_runs: Limit = Limit(limit=600, window_seconds=60)
    user_runs: Limit = Limit(limit=60, window_seconds=60)


class EphemeralSettings(BaseModel):
    rate_limits: RateLimits = RateLimits()
    rate_limit_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long an org's overrides are cached in-process."
    )
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    idempotency_pending_seconds: int = Field(
        default=600,
        gt=0,
        description="How long an in-flight request holds its key if the process dies mid-way.",
    )
    idempotency_max_body_bytes: int = Field(
        default=1 << 20, gt=0, description="Larger request or response bodies are not stored."
    )
    session_window_size: int = Field(default=50, gt=0)
    session_window_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    episode_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    episode_max_per_session: int = Field(default=1000, gt=0)
    flag_ttl_seconds: int = Field(default=24 * 3600, gt=0)
