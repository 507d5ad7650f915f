"""Resolved API keys kept in the process, so most requests skip the Postgres lookup.

A cached key is used only when the org's key generation, read in the request's own
rate-limit call (one Valkey round trip), is the one read before the lookup that confirmed
it; a process that revokes a key or deletes an org sets a new generation after its commit
(ephemeral/key_generations.py), so every server's next request with a key of that org
looks it up again, and a revoked key fails at once everywhere. While the rate limits are
checked in-process (Valkey out of reach) there is no generation: every request looks its
key up, as without a cache. An entry is also looked up again after `KEY_CACHE_SECONDS`,
which bounds a change made to the keys table by hand.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenantgraph.scope import Principal
from tenantgraph.services.orgs import Orgs, hash_api_key

__all__ = ["KEY_CACHE_SECONDS", "Check", "KeyCache"]

KEY_CACHE_SECONDS = 60.0
_MAX_ENTRIES = 10_000

# Spends the request's rate-limit tokens as the key's principal and returns the org's key
# generation read in the same call (None: unknown, Valkey is out of reach).
Check = Callable[[Principal, uuid.UUID], Awaitable[str | None]]


@dataclass(slots=True)
class _Entry:
    principal: Principal
    key_id: uuid.UUID
    generation: str | None  # read before the lookup that last confirmed the key
    until: float


class KeyCache:
    """API key secrets (by hash) to their principal and key id."""

    def __init__(self, orgs: Orgs) -> None:
        self.orgs = orgs
        self._entries: dict[bytes, _Entry] = {}

    async def resolve(self, secret: str, check: Check) -> tuple[Principal, uuid.UUID] | None:
        """The key's principal and id, or None if unknown or revoked; `check` is called
        exactly once (for a known key)."""
        digest = hash_api_key(secret)
        entry = self._entries.get(digest)
        if entry is None:
            resolved = await self.orgs.resolve_api_key(secret)
            if resolved is None:
                return None
            # The org is known only now: a generation read after the lookup confirms nothing.
            await check(*resolved)
            self._keep(digest, _Entry(*resolved, generation=None, until=0.0))
            return resolved
        generation = await check(entry.principal, entry.key_id)
        now = time.monotonic()
        if generation is not None and generation == entry.generation and now < entry.until:
            return entry.principal, entry.key_id
        resolved = await self.orgs.resolve_api_key(secret)
        if resolved is None:
            self._entries.pop(digest, None)
            return None
        entry.principal, entry.key_id = resolved
        entry.generation, entry.until = generation, now + KEY_CACHE_SECONDS
        return resolved

    def _keep(self, digest: bytes, entry: _Entry) -> None:
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()  # keys in use come back with their next request
        self._entries[digest] = entry
