"""Webhook settings of an org (its signing secret, the hosts its webhooks may name), and the
check of a webhook URL when a run or a cron is created. Delivery is runtime/webhooks.py."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from tenantgraph.db.database import Database
from tenantgraph.errors import InvalidInput
from tenantgraph.runtime.outbound import MAX_URL_LENGTH, BlockedDestination, OutboundClient
from tenantgraph.runtime.webhooks import host_allowed, new_secret, signing_secret
from tenantgraph.scope import Principal
from tenantgraph.secret_key import SecretKey
from tenantgraph.stores import webhooks as store

__all__ = ["MAX_ALLOWED_HOSTS", "Webhooks"]

MAX_ALLOWED_HOSTS = 100
_HOST_PATTERN = re.compile(r"(\*\.)?([a-z0-9_-]+\.)*[a-z0-9_-]+")


def _pattern(value: str) -> str:
    """An allow-list entry, lower-cased: a host name, `*.domain` or an IP address."""
    pattern = value.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(pattern))
    except ValueError:
        pass
    if len(pattern) > 253 or not _HOST_PATTERN.fullmatch(pattern):
        raise InvalidInput(f"{value!r} is not a host name, '*.domain' or an IP address")
    return pattern


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {"allowed_hosts": row["allowed_hosts"], "updated_at": row["updated_at"]}


def _secret(row: dict[str, Any], shown: str | None) -> dict[str, Any]:
    """The secret's rotation time, and the secret itself only when just created."""
    answer = {"rotated_at": row["rotated_at"]}
    return answer if shown is None else {"secret": shown, **answer}


class Webhooks:
    """The org's webhook settings: read and changed by its owners and admins."""

    def __init__(self, db: Database, outbound: OutboundClient, key: SecretKey) -> None:
        self.db = db
        self.outbound = outbound
        self.key = key

    async def check_url(self, principal: Principal, url: str) -> None:
        """A run's or cron's `webhook`, refused (422) as langgraph-api refuses it: too long,
        not http(s), or a host that resolves to an address the server may not reach; and
        a host outside the org's allow-list."""
        if len(url) > MAX_URL_LENGTH:
            raise InvalidInput("Webhook URL too long")
        try:
            host = self.outbound.parse(url).host
        except BlockedDestination as exc:
            raise InvalidInput(f"Webhook host blocked: {exc}") from None
        async with self.db.tenant(principal) as conn:
            row = await store.get_settings(conn, principal.org_id)
        allowed = row["allowed_hosts"] if row is not None else None
        if allowed is not None and not host_allowed(host, allowed):
            raise InvalidInput("Webhook domain not allowed")
        try:
            await self.outbound.vet(url)
        except BlockedDestination as exc:
            raise InvalidInput(f"Webhook host blocked: {exc}") from None

    async def settings(self, principal: Principal) -> dict[str, Any]:
        """`{"allowed_hosts": [...] | null, "updated_at": …}` (null: any host)."""
        principal.require_admin()
        async with self.db.tenant(principal) as conn:
            row = await store.settings(conn, principal.org_id, new_secret(self.key)[1])
        return _public(row)

    async def set_allowed_hosts(
        self, principal: Principal, hosts: list[str] | None
    ) -> dict[str, Any]:
        """Restrict the org's webhooks to `hosts` (patterns), or lift it with None."""
        principal.require_admin()
        patterns = None
        if hosts is not None:
            if len(hosts) > MAX_ALLOWED_HOSTS:
                raise InvalidInput(f"at most {MAX_ALLOWED_HOSTS} allowed hosts")
            patterns = list(dict.fromkeys(_pattern(h) for h in hosts))
        async with self.db.tenant(principal) as conn:
            sealed = new_secret(self.key)[1]
            row = await store.set_allowed_hosts(conn, principal.org_id, patterns, sealed)
        return _public(row)

    async def secret(self, principal: Principal) -> dict[str, Any]:
        """When the org's signing secret was set; the secret itself only if this call
        created it (write-only: shown once, then never again). A secret stored readable
        before secrets were encrypted is encrypted here."""
        principal.require_admin()
        plain, sealed = new_secret(self.key)
        async with self.db.tenant(principal) as conn:
            row = await store.settings(conn, principal.org_id, sealed)
            if not row["created"]:
                await signing_secret(conn, self.key, principal.org_id, row["secret"])
        return _secret(row, plain if row["created"] else None)

    async def rotate_secret(self, principal: Principal) -> dict[str, Any]:
        """A new signing secret, shown in this answer only; webhooks sent from now on are
        signed with it."""
        principal.require_admin()
        plain, sealed = new_secret(self.key)
        async with self.db.tenant(principal) as conn:
            row = await store.rotate_secret(conn, principal.org_id, sealed)
        return _secret(row, plain)
