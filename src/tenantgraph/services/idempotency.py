"""Idempotency keys: the first response to a request is kept and replayed for its retries.

One Postgres row per `(org, user, role, credential, Idempotency-Key)` holds the request's
fingerprint and, once the request finished, its response. Claiming a key is one upsert, so
of two concurrent requests with one key exactly one runs; the other learns that the first
is in flight. A claim holds the key for `idempotency_pending_seconds` (so a crashed process
frees it); a stored response lives `idempotency_ttl_seconds` (24 h), and `StoreSweeper`
deletes it after that.

The records live in Postgres, not Valkey: the embedded Valkey runs without persistence, and
a restart that forgot them would run a retry twice. A Valkey copy in front would not save
the durable write a claim needs before the route runs; it would only speed up replays,
which are rare, so there is none.

Responses that cannot be replayed — streams (SSE) and bodies larger than the limit — are
recorded as `UNREPLAYABLE` with their status and headers: a retry learns that the request
already ran (and where, from `Content-Location`) instead of running it a second time.
The HTTP side is `tenantgraph.api.middleware.idempotency`; this module knows no HTTP.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass

from tenantgraph.db.database import Database
from tenantgraph.errors import InvalidInput
from tenantgraph.scope import Principal
from tenantgraph.settings import EphemeralSettings
from tenantgraph.stores import idempotency as store
from tenantgraph.stores.idempotency import Requester

__all__ = [
    "Claim",
    "ClaimResult",
    "Idempotency",
    "InvalidIdempotencyKey",
    "StoredResponse",
    "fingerprint",
]

_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class InvalidIdempotencyKey(InvalidInput, ValueError):
    """The client's key is empty, too long or not visible ASCII."""


class ClaimResult(enum.StrEnum):
    STARTED = "started"  # this request owns the key: run it, then `complete` or `release`
    IN_FLIGHT = "pending"  # another request with this key has not finished
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


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What "the same request" means: same method, path, query string and body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _requester(principal: Principal, credential: str, idempotency_key: str) -> Requester:
    if not _VALID_KEY.match(idempotency_key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return Requester(principal, credential, idempotency_key)


class Idempotency:
    """Claims, stores and replays responses by idempotency key, per requester: the org, the
    user, the role and the credential (an API key's id, or `token`), so a replay never
    crosses roles or credentials. Each call is one transaction in the requester's org."""

    def __init__(self, db: Database, settings: EphemeralSettings | None = None) -> None:
        settings = settings or EphemeralSettings()
        self.db = db
        self.ttl_seconds = settings.idempotency_ttl_seconds
        self.pending_seconds = settings.idempotency_pending_seconds
        self.max_body_bytes = settings.idempotency_max_body_bytes

    async def claim(
        self, principal: Principal, credential: str, idempotency_key: str, request_fp: str
    ) -> Claim:
        """Claim the key for this request, or say why not (and give the stored response)."""
        requester = _requester(principal, credential, idempotency_key)
        token = secrets.token_hex(16)
        async with self.db.tenant(principal) as conn:
            row = await store.claim(conn, requester, request_fp, token, self.pending_seconds)
        if row["token"] == token:
            return Claim(ClaimResult.STARTED, token=token)
        if row["fingerprint"] != request_fp:
            return Claim(ClaimResult.MISMATCH)
        result = ClaimResult(row["state"])
        if result is ClaimResult.IN_FLIGHT:
            return Claim(result)
        headers = [(name, value) for name, value in row["headers"]]
        response = StoredResponse(row["status"], headers, bytes(row["body"]))
        return Claim(result, response=response)

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
        async with self.db.tenant(principal) as conn:
            return await store.complete(
                conn,
                _requester(principal, credential, idempotency_key),
                token,
                state=state.value,
                status=response.status,
                headers=response.headers,
                body=response.body if replayable else b"",
                ttl_seconds=self.ttl_seconds,
            )

    async def release(
        self, principal: Principal, credential: str, idempotency_key: str, token: str
    ) -> None:
        """Give the key up (the request failed before it answered): a retry runs anew."""
        async with self.db.tenant(principal) as conn:
            await store.release(conn, _requester(principal, credential, idempotency_key), token)
