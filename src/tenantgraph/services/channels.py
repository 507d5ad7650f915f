"""An org's channel connections (web chat, Slack, WhatsApp): created, listed, changed and
deleted by its owners and admins, and found by an inbound webhook.

A connection's secret fields (signing secrets, tokens, app secrets, verify tokens) are
stored as one Fernet token (purpose `channel-secrets`) and never leave this module in a
route's answer: the answer names the secret fields that are set, not their values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from tenantgraph.db.database import Database
from tenantgraph.errors import Conflict, InvalidInput, NotFound
from tenantgraph.scope import Principal, PrincipalKind, Role
from tenantgraph.secret_key import InvalidToken, SecretKey
from tenantgraph.services.assistants import Assistants
from tenantgraph.stores import channels as store

__all__ = ["PURPOSE", "SHAPES", "ChannelNotFound", "Channels", "Connection"]

PURPOSE = "channel-secrets"
VERIFY_PURPOSE = "channel-verify-token"  # the key of verify tokens' lookup digests
# Per type: the provider id field (None: no inbound webhook), the other plain fields and
# the secret fields; every listed field is required when the connection is created.
SHAPES: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "web": (None, (), ()),
    "slack": ("team_id", (), ("signing_secret", "bot_token")),
    "whatsapp": ("phone_number_id", (), ("app_secret", "verify_token", "access_token")),
}


class ChannelNotFound(NotFound):
    """Unknown connection, or another org's (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A connection as the channel code uses it, secrets decrypted (never answered)."""

    org_id: str
    channel_id: uuid.UUID
    assistant_id: str
    config: dict[str, Any]
    secrets: dict[str, str]

    @property
    def principal(self) -> Principal:
        """Whom the connection acts as: a service account of its own, so its threads are
        its own and its run budget (`user_runs`) is the channel's limit."""
        return Principal(
            self.org_id, f"svc:channel-{self.channel_id}", Role.MEMBER, PrincipalKind.API_KEY
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel_id": row["channel_id"],
        "type": row["type"],
        "name": row["name"],
        "assistant_id": row["assistant_id"],
        "config": row["config"],
        "secrets_set": sorted(row["secret_fields"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _split(channel_type: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(plain fields, secret fields) of a `config`; unknown fields are refused."""
    provider, plain, secret = SHAPES[channel_type]
    known = {*plain, *secret, *([provider] if provider else [])}
    if unknown := sorted(set(config) - known):
        raise InvalidInput(f"config: unknown fields {unknown} for a {channel_type} channel")
    for name, value in config.items():
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise InvalidInput(f"config.{name} must be a non-empty string (≤ 1024 characters)")
    return (
        {k: v for k, v in config.items() if k not in secret},
        {k: v for k, v in config.items() if k in secret},
    )


class Channels:
    """The connection use cases, each one tenant transaction; `secret_key` encrypts."""

    def __init__(self, db: Database, secret_key: SecretKey, assistants: Assistants) -> None:
        self.db = db
        self.secret_key = secret_key
        self.assistants = assistants

    def _seal(self, secrets: dict[str, str]) -> str:
        return self.secret_key.encrypt(PURPOSE, json.dumps(secrets, sort_keys=True))

    def _open(self, token: str) -> dict[str, str]:
        return json.loads(self.secret_key.decrypt(PURPOSE, token))

    async def _check_assistant(self, principal: Principal, assistant_id: str) -> None:
        """The assistant (an id or a graph name) exists in the caller's org."""
        if self.assistants.default_graph(assistant_id) is not None:
            return
        try:
            await self.assistants.get(principal, uuid.UUID(assistant_id))
        except (ValueError, NotFound):
            raise InvalidInput(f"assistant {assistant_id!r} not found") from None

    def _row(
        self,
        channel_type: str,
        name: str,
        assistant_id: str,
        plain: dict[str, Any],
        secrets: dict[str, str],
    ) -> dict[str, Any]:
        provider, plain_fields, secret_fields = SHAPES[channel_type]
        required = [*plain_fields, *secret_fields, *([provider] if provider else [])]
        if missing := [f for f in required if f not in plain and f not in secrets]:
            raise InvalidInput(f"config: missing {missing} for a {channel_type} channel")
        return {
            "type": channel_type,
            "name": name,
            "assistant_id": assistant_id,
            "external_id": plain.get(provider) if provider else None,
            "config": plain,
            "secrets": self._seal(secrets),
            "secret_fields": sorted(secrets),
            "verify_digest": self._digest(secrets["verify_token"])
            if "verify_token" in secrets
            else None,
        }

    def _digest(self, verify_token: str) -> str:
        key = self.secret_key.derive(VERIFY_PURPOSE)
        return hmac.new(key, verify_token.encode(), hashlib.sha256).hexdigest()

    async def create(
        self,
        principal: Principal,
        channel_type: str,
        name: str,
        assistant_id: str,
        config: dict[str, Any],
    ) -> dict[str, Any]:
        principal.require_admin()
        if channel_type not in SHAPES:
            raise InvalidInput(f"type must be one of {sorted(SHAPES)}")
        await self._check_assistant(principal, assistant_id)
        plain, secrets = _split(channel_type, config)
        row = self._row(channel_type, name, assistant_id, plain, secrets)
        async with self.db.tenant(principal) as conn:
            created = await store.insert(conn, principal.org_id, uuid.uuid4(), row)
        if created is None:
            raise Conflict(f"the org has a {channel_type} channel named {name!r}")
        return _public(created)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin()
        async with self.db.tenant(principal) as conn:
            return [_public(r) for r in await store.list_all(conn, principal.org_id)]

    async def get(self, principal: Principal, channel_id: uuid.UUID) -> dict[str, Any]:
        principal.require_admin()
        async with self.db.tenant(principal) as conn:
            row = await store.get(conn, principal.org_id, channel_id)
        if row is None:
            raise ChannelNotFound("Channel not found")
        return _public(row)

    async def update(
        self,
        principal: Principal,
        channel_id: uuid.UUID,
        *,
        name: str | None = None,
        assistant_id: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Change the name, assistant or config; a config's fields replace the stored
        ones they name (a secret not sent is kept)."""
        principal.require_admin()
        if assistant_id is not None:
            await self._check_assistant(principal, assistant_id)
        try:
            async with self.db.tenant(principal) as conn:
                row = await store.get(conn, principal.org_id, channel_id)
                if row is None:
                    raise ChannelNotFound("Channel not found")
                plain, secrets = _split(row["type"], config or {})
                changed = self._row(
                    row["type"],
                    name if name is not None else row["name"],
                    assistant_id if assistant_id is not None else row["assistant_id"],
                    {**row["config"], **plain},
                    {**self._open(row["secrets"]), **secrets},
                )
                updated = await store.update(conn, principal.org_id, channel_id, changed)
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"the org has a {row['type']} channel named {name!r}") from None
        assert updated is not None
        return _public(updated)

    async def delete(self, principal: Principal, channel_id: uuid.UUID) -> None:
        principal.require_admin()
        async with self.db.tenant(principal) as conn:
            if not await store.delete(conn, principal.org_id, channel_id):
                raise ChannelNotFound("Channel not found")

    async def web_assistant(self, principal: Principal, raw: str) -> str:
        """The assistant a web chat's `assistant_id` names: a web connection of the caller's
        org stands for its assistant; anything else (another org's, a Slack one) is as is."""
        try:
            channel_id = uuid.UUID(raw)
        except ValueError:
            return raw
        if self.assistants.default_graph(raw) is not None:
            return raw
        async with self.db.tenant(principal) as conn:
            row = await store.get(conn, principal.org_id, channel_id)
        return row["assistant_id"] if row is not None and row["type"] == "web" else raw

    async def verify_token_known(self, verify_token: str) -> bool:
        """Whether some WhatsApp connection holds `verify_token` (Meta's subscription
        check names nothing else)."""
        async with self.db.system() as conn:
            return await store.verify_token_known(conn, self._digest(verify_token))

    async def resolve(self, channel_type: str, provider_id: str) -> list[Connection]:
        """The connections (of any org) claiming a provider's workspace or number; the
        caller keeps the one whose secret verifies the request."""
        async with self.db.system() as conn:
            rows = await store.resolve(conn, channel_type, provider_id)
        found = []
        for row in rows:
            try:
                secrets = self._open(row["secrets"])
            except InvalidToken:  # sealed under another server key: unusable, skipped
                continue
            found.append(
                Connection(
                    row["org_id"], row["channel_id"], row["assistant_id"], row["config"], secrets
                )
            )
        return found
