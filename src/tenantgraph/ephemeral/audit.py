"""Operations on the whole keyspace: the tenant-key audit and purging one org.

Both walk the keyspace with SCAN (never KEYS), in batches, so they are safe on a live
server. On Redis Cluster pass a `RedisCluster` client: its `scan_iter` visits every node.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from tenantgraph.scope import InvalidIdentifier, org_key_pattern, validate_identifier

__all__ = ["AuditReport", "audit_keys", "purge_org"]

_ORG_TAG = re.compile(rb"^\{([^{}]+)\}:")
_BATCH = 500


@dataclass
class AuditReport:
    scanned: int = 0
    without_ttl: list[str] = field(default_factory=list)
    untagged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.without_ttl and not self.untagged


async def audit_keys(redis: aioredis.Redis) -> AuditReport:
    """Every key that has no TTL or does not start with a valid `{org_id}:` hash tag."""
    report = AuditReport()
    batch: list[bytes] = []
    async for key in redis.scan_iter(count=_BATCH):
        batch.append(key if isinstance(key, bytes) else key.encode())
        if len(batch) >= _BATCH:
            await _check(redis, batch, report)
            batch = []
    await _check(redis, batch, report)
    return report


async def _check(redis: aioredis.Redis, keys: list[bytes], report: AuditReport) -> None:
    if not keys:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.pttl(key)
        ttls = await pipe.execute()
    for key, ttl in zip(keys, ttls, strict=True):
        # -2: the key expired between SCAN and PTTL, which is fine.
        if ttl == -2:
            continue
        report.scanned += 1
        name = key.decode("utf-8", "backslashreplace")
        if ttl == -1:
            report.without_ttl.append(name)
        if not _has_org_tag(key):
            report.untagged.append(name)


def _has_org_tag(key: bytes) -> bool:
    match = _ORG_TAG.match(key)
    if match is None:
        return False
    try:
        validate_identifier(match.group(1).decode())
    except (InvalidIdentifier, UnicodeDecodeError):
        return False
    return True


async def purge_org(redis: aioredis.Redis, org_id: str) -> int:
    """Delete every key of `org_id`; returns how many were removed."""
    removed = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=org_key_pattern(org_id), count=_BATCH):
        batch.append(key)
        if len(batch) >= _BATCH:
            removed += await redis.unlink(*batch)
            batch = []
    if batch:
        removed += await redis.unlink(*batch)
    return removed
