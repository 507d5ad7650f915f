"""SQL of the idempotency records (tenant table `idempotency_records`, migration 0010).

A record is named by `Requester` (the org's user, role and credential) and the client's key.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from psycopg import AsyncConnection

from tenantgraph.scope import Principal

__all__ = ["Requester", "claim", "complete", "release", "sweep_batch"]


class Requester(NamedTuple):
    """Who a record belongs to: the whole principal and the credential it acted through."""

    principal: Principal
    credential: str
    key: str

    def params(self) -> dict[str, Any]:
        return {
            "org": self.principal.org_id,
            "user": self.principal.user_id,
            "role": self.principal.role.value,
            "credential": self.credential,
            "key": self.key,
        }


_WHERE = """org_id = %(org)s AND user_id = %(user)s AND role = %(role)s
AND credential = %(credential)s AND idem_key = %(key)s"""

# A new key, or one whose record expired, is claimed; a live record is left as it is (and
# locked until the transaction ends, so the read that follows sees what the claim saw).
_CLAIM = """
INSERT INTO idempotency_records AS r
    (org_id, user_id, role, credential, idem_key, fingerprint, state, token, expires_at)
VALUES (%(org)s, %(user)s, %(role)s, %(credential)s, %(key)s, %(fp)s, 'pending', %(token)s,
        now() + make_interval(secs => %(seconds)s))
ON CONFLICT (org_id, user_id, role, credential, idem_key) DO UPDATE
SET fingerprint = excluded.fingerprint, state = 'pending', token = excluded.token,
    status = NULL, headers = NULL, body = NULL, expires_at = excluded.expires_at
WHERE r.expires_at <= now()
"""
_READ = f"""
SELECT fingerprint, state, token, status, headers, body FROM idempotency_records
WHERE {_WHERE}
"""
_COMPLETE = f"""
UPDATE idempotency_records
SET state = %(state)s, status = %(status)s, headers = %(headers)s::jsonb, body = %(body)s,
    token = NULL, expires_at = now() + make_interval(secs => %(seconds)s)
WHERE {_WHERE} AND token = %(token)s
RETURNING 1 AS stored
"""
_RELEASE = f"DELETE FROM idempotency_records WHERE {_WHERE} AND token = %(token)s"
_SWEEP_BATCH = "SELECT sweep_idempotency_records(%s) AS n"


async def claim(
    conn: AsyncConnection,
    requester: Requester,
    fingerprint: str,
    token: str,
    pending_seconds: float,
) -> dict[str, Any]:
    """Claim the key with `token` unless a live record holds it; return the record as it now
    stands (fingerprint, state, token, status, headers, body): the claim is ours if its
    token is `token`. Both statements go out in one round trip."""
    params = requester.params() | {"fp": fingerprint, "token": token, "seconds": pending_seconds}
    await conn.execute(_CLAIM, params)
    cur = await conn.execute(_READ, requester.params())
    row = await cur.fetchone()
    assert row is not None  # the claim inserted it, or it was there and is locked
    return row


async def complete(
    conn: AsyncConnection,
    requester: Requester,
    token: str,
    *,
    state: str,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    ttl_seconds: float,
) -> bool:
    """Store the answer of the claim `token` for `ttl_seconds`; False if the claim is gone."""
    params = requester.params() | {
        "token": token,
        "state": state,
        "status": status,
        "headers": json.dumps(headers),
        "body": body,
        "seconds": ttl_seconds,
    }
    cur = await conn.execute(_COMPLETE, params)
    return await cur.fetchone() is not None


async def release(conn: AsyncConnection, requester: Requester, token: str) -> None:
    """Delete the record of the claim `token` (if it is still that claim's)."""
    await conn.execute(_RELEASE, requester.params() | {"token": token})


async def sweep_batch(conn: AsyncConnection, batch: int) -> int:
    """Delete up to `batch` expired records of every org; returns how many it deleted."""
    cur = await conn.execute(_SWEEP_BATCH, (batch,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
