"""Idempotency keys: the first response to a request is kept and replayed for its retries.

One Valkey hash per `(org, user, Idempotency-Key)` holds the request's fingerprint and, once
the request finished, its response. Claiming a key and storing the response are each one
Lua script, so of two concurrent requests with one key exactly one runs; the other learns
that the first is in flight. A claim holds the key for `idempotency_pending_seconds` (so a
crashed process frees it); a stored response lives `idempotency_ttl_seconds` (24 h).

Responses that cannot be replayed — streams (SSE) and bodies larger than the limit — are
recorded as `UNREPLAYABLE` with their status and headers: a retry learns that the request
already ran (and where, from `Content-Location`) instead of running it a second time.
The HTTP side is `tenantgraph.api.middleware.idempotency`; this module knows no HTTP.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from tenantgraph.errors import InvalidInput
from tenantgraph.scope import KeyKind, Principal, redis_key
from tenantgraph.settings import EphemeralSettings

__all__ = [
    "Claim",
    "ClaimResult",
    "IdempotencyStore",
    "InvalidIdempotencyKey",
    "StoredResponse",
    "fingerprint",
]

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class InvalidIdempotencyKey(InvalidInput, ValueError):
    """The client's key is empty, too long or not visible ASCII."""


class ClaimResult(enum.StrEnum):
    STARTED = "started"  # this request owns the key: run it, then `complete` or `release`
    IN_FLIGHT = "in_flight"  # another request with this key has not finished
    MISMATCH = "mismatch"  # the key was used for a different request
    REPLAY = "done"  # the first response is stored: send it again
    UNREPLAYABLE = "unreplayable"  # the first response was a stream or too large to keep


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    result: ClaimResult
    token: str = ""
    response: StoredResponse | None = None


# KEYS[1]: the key's hash. ARGV: fingerprint, claim token, claim lifetime in ms.
_CLAIM = """
local cur = redis.call('HMGET', KEYS[1], 'fp', 'state', 'status', 'headers', 'body')
if not cur[1] then
    redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'pending', 'token', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'started'}
end
if cur[1] ~= ARGV[1] then return {'mismatch'} end
if cur[2] == 'pending' then return {'in_flight'} end
return {cur[2], cur[3], cur[4], cur[5]}
"""

# KEYS[1]: the key's hash. ARGV: claim token, state, status, headers JSON, body, ttl in ms.
# Only the claim's owner may store; a claim that expired meanwhile stores nothing.
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'status', ARGV[3], 'headers', ARGV[4],
           'body', ARGV[5])
redis.call('HDEL', KEYS[1], 'token')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What "the same request" means: same method, path, query string and body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    """Claims, stores and replays responses by idempotency key, per requester: the org, the
    user, the role and the credential (an API key's id, or `token`), so a replay never
    crosses roles or credentials.

    Expects a client with `decode_responses=False` (the process default): bodies are bytes.
    """

    def __init__(self, redis: aioredis.Redis, settings: EphemeralSettings) -> None:
        self.ttl_ms = settings.idempotency_ttl_seconds * 1000
        self.pending_ms = settings.idempotency_pending_seconds * 1000
        self.max_body_bytes = settings.idempotency_max_body_bytes
        self._claim = redis.register_script(_CLAIM)
        self._complete = redis.register_script(_COMPLETE)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def key(principal: Principal, credential: str, idempotency_key: str) -> str:
        if not _VALID_KEY.match(idempotency_key):
            raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters")
        return redis_key(
            principal.org_id,
            KeyKind.IDEMPOTENCY,
            principal.user_id,
            principal.role.value,
            credential,
            idempotency_key,
        )

    async def claim(
        self, principal: Principal, credential: str, idempotency_key: str, request_fp: str
    ) -> Claim:
        """Claim the key for this request, or say why not (and give the stored response)."""
        token = secrets.token_hex(16)
        key = self.key(principal, credential, idempotency_key)
        reply = await self._claim(keys=[key], args=[request_fp, token, self.pending_ms])
        result = ClaimResult(_text(reply[0]))
        if result is ClaimResult.STARTED:
            return Claim(result, token=token)
        if result in (ClaimResult.IN_FLIGHT, ClaimResult.MISMATCH):
            return Claim(result)
        headers = [(name, value) for name, value in json.loads(_text(reply[2]))]
        body = reply[3].encode() if isinstance(reply[3], str) else bytes(reply[3])
        return Claim(result, response=StoredResponse(int(reply[1]), headers, body))

    async def complete(
        self,
        principal: Principal,
        credential: str,
        idempotency_key: str,
        token: str,
        response: StoredResponse,
        *,
        replayable: bool = True,
    ) -> bool:
        """Store the claimed request's response for `ttl`; False if the claim was lost.

        An unreplayable response keeps its status and headers but not its body.
        """
        replayable = replayable and len(response.body) <= self.max_body_bytes
        state = ClaimResult.REPLAY if replayable else ClaimResult.UNREPLAYABLE
        stored = await self._complete(
            keys=[self.key(principal, credential, idempotency_key)],
            args=[
                token,
                state.value,
                response.status,
                json.dumps(response.headers),
                response.body if replayable else b"",
                self.ttl_ms,
            ],
        )
        return bool(stored)

    async def release(
        self, principal: Principal, credential: str, idempotency_key: str, token: str
    ) -> None:
        """Give the key up (the request failed before it answered): a retry runs anew."""
        await self._release(keys=[self.key(principal, credential, idempotency_key)], args=[token])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
