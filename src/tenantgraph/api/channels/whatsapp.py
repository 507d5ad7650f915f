"""The WhatsApp Cloud API webhook, one endpoint for every org (README "Channels").

`GET` answers Meta's subscription check (`hub.mode=subscribe`, a verify token some
connection holds, `hub.challenge` echoed). `POST` is verified with the app secret of the
connection its `phone_number_id` names (`X-Hub-Signature-256`, HMAC-SHA256 of the body),
answered at once and handled in the background; Meta's retries are recognised by message
id. A chat is one conversation thread per (number, user); an interrupt becomes reply
buttons whose press resumes the run.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from tenantgraph.api.channels.inbound import conversation_thread, json_object, verified
from tenantgraph.api.deps import app_state
from tenantgraph.api.state import AppState
from tenantgraph.ephemeral.deliveries import first_delivery
from tenantgraph.errors import Forbidden, RateLimited
from tenantgraph.runtime.channel_delivery import APPROVE, REJECT, Reply
from tenantgraph.services.channels import Connection

router = APIRouter(prefix="/channels/whatsapp", tags=["channels"])

_BUSY = "Too many conversations right now; please try again in a minute."


@router.get("/webhook")
async def whatsapp_subscribe(request: Request) -> Response:
    params = request.query_params
    token = params.get("hub.verify_token", "")
    known = token and await app_state(request).channels.verify_token_known(token)
    if params.get("hub.mode") != "subscribe" or not known:
        raise Forbidden("unknown verify token")
    return PlainTextResponse(params.get("hub.challenge", ""))


def _changes(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The `value` of every `messages` change of the delivery."""
    found = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if isinstance(change, dict) and isinstance(change.get("value"), dict):
                found.append(change["value"])
    return found


def _number(value: dict[str, Any]) -> Any:
    return (value.get("metadata") or {}).get("phone_number_id")


@router.post("/webhook")
async def whatsapp_messages(request: Request) -> Response:
    state = app_state(request)
    body = await request.body()
    payload = json_object(body)
    changes = _changes(payload)
    number = _number(changes[0]) if changes else None
    signature = request.headers.get("x-hub-signature-256", "")

    def valid(connection: Connection) -> bool:
        secret = connection.secrets["app_secret"].encode()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    connection = await verified(state.channels, "whatsapp", number, valid)
    ttl = state.settings.channel_dedup_seconds
    for value in changes:
        if _number(value) != number:  # one delivery, one number: the one verified
            continue
        for message in value.get("messages") or []:
            if not isinstance(message, dict) or not message.get("id") or not message.get("from"):
                continue
            redis, org_id = state.resources.redis, connection.org_id
            if await first_delivery(redis, org_id, "whatsapp", str(message["id"]), ttl_seconds=ttl):
                state.channel_turns.spawn(_converse(state, connection, number, message))
    return Response(status_code=200)


async def _converse(
    state: AppState, connection: Connection, number: str, message: dict[str, Any]
) -> None:
    """A text answered by the assistant, or a button press resuming its run."""
    user = str(message["from"])
    thread_id = conversation_thread(connection, number, user)
    turns = state.channel_turns
    pressed = (message.get("interactive") or {}).get("button_reply") or {}
    action, _, interrupt_id = str(pressed.get("id") or "").partition(":")
    try:
        if message.get("type") == "interactive" and action in (APPROVE, REJECT):
            reply = await turns.answer(connection, thread_id, interrupt_id, action == APPROVE)
        elif message.get("type") == "text":
            metadata = {"channel": "whatsapp", "whatsapp": {"number": number, "user": user}}
            text = str((message.get("text") or {}).get("body") or "")
            reply = await turns.message(connection, thread_id, metadata, text)
        else:
            return
    except RateLimited:
        reply = Reply(_BUSY)
    if reply is not None:
        token = connection.secrets["access_token"]
        await state.whatsapp_replies.send(token, number, user, reply)
