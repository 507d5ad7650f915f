"""What the providers' webhooks share: their JSON bodies, the connection whose secret
verifies a request, and the thread a provider's conversation maps to."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from tenantgraph.errors import InvalidRequest, Unauthenticated
from tenantgraph.services.channels import Channels, Connection

__all__ = ["conversation_thread", "json_object", "verified"]

# The namespace of channel conversation thread ids (uuid5): the same conversation always
# maps to the same thread, in its own org.
_THREADS = uuid.UUID("6f1d3a8e-2b7c-5e4f-9a1d-0c8b7e6f5a41")


def json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidRequest("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("the body is not a JSON object")
    return payload


async def verified(
    channels: Channels,
    channel_type: str,
    provider_id: Any,
    valid: Callable[[Connection], bool],
) -> Connection:
    """The connection claiming `provider_id` whose secret `valid` accepts; 401 when none
    does (an unknown workspace or number answers the same as a forged signature)."""
    if isinstance(provider_id, str) and provider_id:
        for connection in await channels.resolve(channel_type, provider_id):
            if valid(connection):
                return connection
    raise Unauthenticated("invalid signature")


def conversation_thread(connection: Connection, *parts: str) -> uuid.UUID:
    """The thread of a provider's conversation (e.g. Slack team, channel, thread ts)."""
    return uuid.uuid5(_THREADS, "/".join([connection.org_id, str(connection.channel_id), *parts]))
