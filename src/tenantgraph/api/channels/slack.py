"""Slack's Events API and interactivity, one endpoint for every org (README "Channels").

Each request is verified with the signing secret of the connection its `team_id` names
(`X-Slack-Signature`, v0 HMAC-SHA256, timestamp within 5 minutes), answered at once, and
handled in the background: Slack retries what is not acknowledged within 3 s, and retries
are recognised by `event_id`. The app engages on an @mention and keeps answering in that
thread without one; an interrupt becomes approve/reject buttons whose press resumes the run.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier

from tenantgraph.api.channels.inbound import conversation_thread, json_object, verified
from tenantgraph.api.deps import app_state
from tenantgraph.api.state import AppState
from tenantgraph.ephemeral.deliveries import first_delivery
from tenantgraph.errors import InvalidRequest, RateLimited
from tenantgraph.runtime.channel_delivery import APPROVE, REJECT, Reply
from tenantgraph.services.channels import Connection

router = APIRouter(prefix="/channels/slack", tags=["channels"])

log = logging.getLogger(__name__)
_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
_BUSY = "This channel has too many conversations right now; please try again in a minute."


def _ok() -> Response:
    return Response(status_code=200)


async def _connection(state: AppState, request: Request, body: bytes, team_id: Any) -> Connection:
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")

    def valid(connection: Connection) -> bool:
        verifier = SignatureVerifier(connection.secrets["signing_secret"])
        return timestamp.isdigit() and verifier.is_valid(body, timestamp, signature)

    return await verified(state.channels, "slack", team_id, valid)


def _bot_users(payload: dict[str, Any]) -> set[str]:
    return {a.get("user_id") for a in payload.get("authorizations") or [] if isinstance(a, dict)}


@router.post("/events")
async def slack_events(request: Request) -> Response:
    state = app_state(request)
    body = await request.body()
    payload = json_object(body)
    if payload.get("type") == "url_verification":
        # Sent when the URL is set in Slack's app settings, before any team is named.
        return JSONResponse({"challenge": str(payload.get("challenge", ""))})
    connection = await _connection(state, request, body, payload.get("team_id"))
    event = payload.get("event")
    if payload.get("type") != "event_callback" or not isinstance(event, dict):
        return _ok()
    if event.get("bot_id") or event.get("subtype"):  # its own replies, edits, joins
        return _ok()
    mention = event.get("type") == "app_mention"
    text = str(event.get("text") or "")
    if not mention and (
        event.get("type") != "message"
        or not event.get("thread_ts")
        or any(f"<@{bot}>" in text for bot in _bot_users(payload))  # app_mention has it
    ):
        return _ok()
    channel, ts = str(event.get("channel") or ""), str(event.get("thread_ts") or event.get("ts"))
    if not channel or not payload.get("event_id"):
        raise InvalidRequest("event without a channel or an event_id")
    ttl = state.settings.channel_dedup_seconds
    event_id = str(payload["event_id"])
    if await first_delivery(
        state.resources.redis, connection.org_id, "slack", event_id, ttl_seconds=ttl
    ):
        state.channel_turns.spawn(
            _converse(state, connection, payload["team_id"], channel, ts, text, mention)
        )
    return _ok()


async def _converse(
    state: AppState,
    connection: Connection,
    team_id: str,
    channel: str,
    thread_ts: str,
    text: str,
    mention: bool,
) -> None:
    """One message: engage on a mention, answer in an engaged thread, post the reply."""
    thread_id = conversation_thread(connection, team_id, channel, thread_ts)
    flags = state.channel_turns.flags(connection.principal, thread_id)
    if mention:
        await flags.engage()
    elif not await flags.is_engaged():
        return
    metadata = {"channel": "slack", "slack": {"team": team_id, "channel": channel, "ts": thread_ts}}
    try:
        reply = await state.channel_turns.message(
            connection, thread_id, metadata, _MENTION.sub("", text).strip()
        )
    except RateLimited:
        reply = Reply(_BUSY)
    if reply is not None:
        await _post(state, connection, channel, thread_ts, reply)


async def _post(
    state: AppState, connection: Connection, channel: str, thread_ts: str, reply: Reply
) -> None:
    await state.slack_replies.send(connection.secrets["bot_token"], channel, thread_ts, reply)


@router.post("/interactions")
async def slack_interactions(request: Request) -> Response:
    """A button press: the form field `payload` holds Slack's JSON."""
    state = app_state(request)
    body = await request.body()
    try:
        payload = json_object(parse_qs(body.decode())["payload"][0].encode())
    except (KeyError, IndexError, UnicodeDecodeError):
        raise InvalidRequest("no payload field") from None
    team_id = (payload.get("team") or {}).get("id")
    connection = await _connection(state, request, body, team_id)
    actions = payload.get("actions") or []
    if payload.get("type") != "block_actions" or not actions:
        return _ok()
    action = actions[0]
    if action.get("action_id") not in (APPROVE, REJECT):
        return _ok()
    channel = str((payload.get("channel") or {}).get("id") or "")
    message = payload.get("message") or {}
    thread_ts = str(message.get("thread_ts") or (payload.get("container") or {}).get("thread_ts"))
    state.channel_turns.spawn(
        _resume(
            state,
            connection,
            conversation_thread(connection, team_id, channel, thread_ts),
            (channel, thread_ts),
            str(action.get("value")),
            action["action_id"] == APPROVE,
        )
    )
    return _ok()


async def _resume(
    state: AppState,
    connection: Connection,
    thread_id: Any,
    where: tuple[str, str],
    interrupt_id: str,
    approved: bool,
) -> None:
    try:
        reply = await state.channel_turns.answer(connection, thread_id, interrupt_id, approved)
    except RateLimited:
        reply = Reply(_BUSY)
    if reply is not None:
        await _post(state, connection, *where, reply)
