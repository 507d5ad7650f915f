"""Replies to a channel's users: Slack's `chat.postMessage` (slack-sdk's AsyncWebClient)
and the WhatsApp Cloud API's messages endpoint (the outbound client). A reply is text,
or a question with approve/reject buttons when the run waits on an interrupt."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tenantgraph.runtime.outbound import BlockedDestination, OutboundClient

__all__ = ["APPROVE", "REJECT", "Reply", "SlackReplies", "WhatsAppReplies"]

log = logging.getLogger(__name__)
APPROVE, REJECT = "approve", "reject"
_TEXT_LIMIT = 3000  # Slack's section text limit; WhatsApp's body allows 4096


@dataclass(frozen=True, slots=True)
class Reply:
    """What the assistant answered: its last message, or the interrupt it waits on."""

    text: str
    interrupt_id: str | None = None


def _question(reply: Reply) -> str:
    return reply.text[:_TEXT_LIMIT] or "Approve?"


class SlackReplies:
    """Posts in a Slack thread with the connection's bot token, at `base_url`."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def send(self, bot_token: str, channel: str, thread_ts: str, reply: Reply) -> bool:
        """Post `reply` in the thread; False (logged, without the token) when Slack
        refused it or could not be reached."""
        blocks: list[dict[str, Any]] | None = None
        if reply.interrupt_id is not None:
            blocks = [
                {"type": "section", "text": {"type": "mrkdwn", "text": _question(reply)}},
                {
                    "type": "actions",
                    "elements": [
                        _button("Approve", APPROVE, reply.interrupt_id, "primary"),
                        _button("Reject", REJECT, reply.interrupt_id, "danger"),
                    ],
                },
            ]
        client = AsyncWebClient(token=bot_token, base_url=self.base_url, timeout=10)
        try:
            await client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=reply.text, blocks=blocks
            )
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("Slack reply in %s was not posted: %s", channel, type(exc).__name__)
            return False
        return True


def _button(label: str, action: str, interrupt_id: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
        "value": interrupt_id,
        "style": style,
    }


class WhatsAppReplies:
    """Sends through `{base_url}/{phone_number_id}/messages` with the connection's access
    token, over the SSRF-guarded outbound client (a private base URL must be listed in
    TENANTGRAPH_OUTBOUND_ALLOWED_NETWORKS)."""

    def __init__(self, base_url: str, outbound: OutboundClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.outbound = outbound

    async def send(self, access_token: str, phone_number_id: str, to: str, reply: Reply) -> bool:
        message: dict[str, Any] = {"messaging_product": "whatsapp", "to": to}
        if reply.interrupt_id is None:
            message |= {"type": "text", "text": {"body": reply.text[:4096]}}
        else:
            buttons = [
                {"type": "reply", "reply": {"id": f"{action}:{reply.interrupt_id}", "title": t}}
                for action, t in ((APPROVE, "Approve"), (REJECT, "Reject"))
            ]
            message |= {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": _question(reply)[:1024]},
                    "action": {"buttons": buttons},
                },
            }
        url = f"{self.base_url}/{phone_number_id}/messages"
        headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json"}
        try:
            response = await self.outbound.post(url, json.dumps(message).encode(), headers)
        except (BlockedDestination, httpx.HTTPError) as exc:
            log.warning("WhatsApp reply was not sent: %s", type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("WhatsApp refused a reply: status %s", response.status_code)
            return False
        return True
