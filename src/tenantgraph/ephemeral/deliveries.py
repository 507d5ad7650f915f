"""Channel deliveries seen once: a provider retries a webhook it thinks was lost (Slack
after 3 s, WhatsApp for days), and each retry must not start a second run."""

from __future__ import annotations

import redis.asyncio as aioredis

from tenantgraph.scope import dedup_key

__all__ = ["first_delivery"]


async def first_delivery(
    redis: aioredis.Redis, org_id: str, channel: str, delivery_id: str, *, ttl_seconds: int
) -> bool:
    """True for the first call with this delivery id within `ttl_seconds`, False after."""
    key = dedup_key(org_id, channel, delivery_id)
    return bool(await redis.set(key, b"1", nx=True, ex=ttl_seconds))
