"""Webhooks: when a run ends, its `webhook` URL is POSTed the run, signed with the org's secret.

The POST is off the run's path: the worker hands the ended run over once its outcome is
recorded (`WebhookSender.run_ended`, called synchronously) and the delivery runs as a task
of its own, through the SSRF-guarded `OutboundClient` (timeout, retries). A slow or failing
receiver never delays or fails a run. Delivery is at most once: a delivery still in flight
when the process stops (after `CLOSE_GRACE_SECONDS`) or dies is not sent again.

The body is langgraph-api's: the run object plus `status`, `run_started_at`,
`run_ended_at`, `webhook_sent_at`, `values` and, for a failed run, `error`. The signature
header is `X-Tenantgraph-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`
with the org's secret (the scheme Stripe and Slack use: the time stamp lets a receiver
refuse replays).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tenantgraph.db.database import Database
from tenantgraph.runtime import events
from tenantgraph.runtime.executor import Outcome
from tenantgraph.runtime.outbound import OutboundClient
from tenantgraph.runtime.state_values import jsonable
from tenantgraph.scope import Principal
from tenantgraph.secret_key import InvalidToken, SecretKey
from tenantgraph.stores import webhooks as store

__all__ = [
    "CLOSE_GRACE_SECONDS",
    "SECRET_PURPOSE",
    "SIGNATURE_HEADER",
    "WebhookSender",
    "host_allowed",
    "new_secret",
    "signature",
    "signing_secret",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Tenantgraph-Signature"
CLOSE_GRACE_SECONDS = 5.0
# The run's fields the API shows (the worker's copy has more).
_RUN_FIELDS = (
    "run_id",
    "thread_id",
    "assistant_id",
    "status",
    "metadata",
    "kwargs",
    "multitask_strategy",
    "created_at",
    "updated_at",
)


SECRET_PURPOSE = "webhook-secrets"  # noqa: S105 - a key derivation label, not a secret


def new_secret(key: SecretKey) -> tuple[str, str]:
    """A new signing secret, and its encrypted form: the only one the database holds."""
    plain = "whsec_" + secrets.token_urlsafe(32)
    return plain, key.encrypt(SECRET_PURPOSE, plain)


async def signing_secret(conn: Any, key: SecretKey, org_id: str, stored: str) -> str:
    """The org's signing secret from its stored form; one stored readable (written before
    secrets were encrypted at rest) is stored encrypted from now on, in `conn`'s
    transaction."""
    try:
        return key.decrypt(SECRET_PURPOSE, stored)
    except InvalidToken:
        await store.replace_secret(conn, org_id, key.encrypt(SECRET_PURPOSE, stored))
        return stored


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` matches one of an org's patterns: a host name (exactly) or
    `*.domain` (any name below the domain, not the domain itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _payload(
    run: dict[str, Any],
    row: dict[str, Any] | None,
    outcome: Outcome,
    started_at: datetime,
    ended_at: datetime,
) -> dict[str, Any]:
    if row is not None:
        body = {k: row[k] for k in _RUN_FIELDS}
        values = row["values"]
    else:  # deleted with its thread (a stateless run) or rolled back
        status = {"success": "success", "error": "error"}.get(outcome.kind, "interrupted")
        body = {**{k: run.get(k) for k in _RUN_FIELDS}, "status": status, "updated_at": ended_at}
        checkpoint = outcome.checkpoint
        values = jsonable(checkpoint["values"]) if checkpoint is not None else None
    body.update(
        run_started_at=started_at.isoformat(),
        run_ended_at=ended_at.isoformat(),
        webhook_sent_at=datetime.now(UTC).isoformat(),
        values=values,
    )
    if outcome.error is not None:
        body["error"] = events.error_payload(outcome.error)
    return body


class WebhookSender:
    """Delivers the webhooks of runs that end in this process; closed after its worker."""

    def __init__(self, db: Database, client: OutboundClient, key: SecretKey) -> None:
        self.db = db
        self.client = client
        self.key = key
        self._tasks: set[asyncio.Task[None]] = set()

    def run_ended(
        self, principal: Principal, run: dict[str, Any], outcome: Outcome, started_at: datetime
    ) -> None:
        """The worker's hook: the run's end is recorded; send its webhook, if it has one."""
        url = run["kwargs"].get("webhook")
        if not url:
            return
        ended_at = datetime.now(UTC)
        task = asyncio.create_task(
            self._deliver(principal, run, outcome, started_at, ended_at, url),
            name=f"webhook {run['run_id']}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self,
        principal: Principal,
        run: dict[str, Any],
        outcome: Outcome,
        started_at: datetime,
        ended_at: datetime,
        url: str,
    ) -> None:
        run_id = run["run_id"]
        try:
            async with self.db.tenant(principal) as conn:
                row = await store.ended_run(conn, principal.org_id, run_id)
                org = await store.settings(conn, principal.org_id, new_secret(self.key)[1])
                secret = await signing_secret(conn, self.key, principal.org_id, org["secret"])
            # The allow-list may have changed since the run (or its cron) was created.
            allowed = org["allowed_hosts"]
            if allowed is not None and not host_allowed(OutboundClient.parse(url).host, allowed):
                log.warning("run %s: webhook host no longer allowed by its org", run_id)
                return
            body = events.dumps(_payload(run, row, outcome, started_at, ended_at))
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(secret, body, int(time.time())),
                "X-Tenantgraph-Org": principal.org_id,
            }
            response = await self.client.post(url, body, headers)
        except Exception as exc:
            log.warning("run %s: webhook not delivered: %s", run_id, exc)
            return
        if response.is_success:
            log.info("run %s: webhook delivered (%s)", run_id, response.status_code)
        else:
            log.warning("run %s: webhook answered %s", run_id, response.status_code)

    async def aclose(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Let deliveries in flight finish for up to `grace` seconds, then drop them."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
