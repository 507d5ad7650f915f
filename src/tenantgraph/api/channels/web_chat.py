"""`GET /chat/ws?assistant_id=…`: the web chat WebSocket (README "Channels"); the id names
an assistant, a graph or one of the caller's org's web connections.

A browser cannot set headers on a WebSocket: its first message authenticates,
`{"type": "auth", "token": <API key or JWT>, "org_id"?: <membership mode's org>}`. Then:
`{"type": "message", "conversation_id"?, "content"}` starts a run (a new conversation
without an id), `{"type": "answer", "conversation_id", "interrupt_id", "value"}` resumes
an interrupt, `{"type": "resume", "conversation_id", "after_seq"}` sends what followed
`after_seq` and follows the conversation's unfinished run. Server frames carry the
conversation's `seq`; `error` frames answer a refused message and keep the socket open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.datastructures import Headers

from tenantgraph.api.state import AppState
from tenantgraph.errors import Forbidden, InvalidInput, TenantgraphError
from tenantgraph.scope import Principal
from tenantgraph.services.web_chat import WebChat, public_frame

router = APIRouter(tags=["channels"])

log = logging.getLogger(__name__)
AUTH_SECONDS = 10.0
_SCOPE = "runs:create"


async def _authenticate(state: AppState, websocket: WebSocket) -> Principal:
    first = await asyncio.wait_for(websocket.receive_json(), AUTH_SECONDS)
    if not isinstance(first, dict) or first.get("type") != "auth":
        raise InvalidInput("the first message must be {type: 'auth', token}")
    headers = {"authorization": f"Bearer {first.get('token') or ''}"}
    if isinstance(first.get("org_id"), str):
        headers["x-org-id"] = first["org_id"]
    identity = await state.authenticator.authenticate(Headers(headers))
    principal = identity.principal
    if principal is None:
        raise Forbidden("the web chat needs an organisation credential")
    if principal.scopes is not None and _SCOPE not in principal.scopes:
        raise Forbidden(f"this credential lacks the scope {_SCOPE!r}")
    return principal


class _Session:
    """One socket's conversations: the task following each one's run."""

    def __init__(
        self, chat: WebChat, websocket: WebSocket, principal: Principal, assistant_id: str
    ) -> None:
        self.chat, self.websocket = chat, websocket
        self.principal, self.assistant_id = principal, assistant_id
        self.followers: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.sent: dict[uuid.UUID, int] = {}  # the last seq sent, per conversation

    async def send(self, conversation: uuid.UUID, frames: list[dict[str, Any]]) -> None:
        for frame in frames:
            await self.websocket.send_json(public_frame(frame))
            self.sent[conversation] = frame["seq"]

    async def handle(self, message: Any) -> None:
        if not isinstance(message, dict):
            raise InvalidInput("messages are JSON objects")
        kind = message.get("type")
        raw = message.get("conversation_id")
        try:
            conversation = uuid.UUID(raw) if raw is not None else None
        except (ValueError, TypeError, AttributeError):
            raise InvalidInput("conversation_id is not a UUID") from None
        if kind == "message":
            conversation, ready = await self.chat.open(
                self.principal, conversation, self.assistant_id
            )
            if ready:  # a new conversation: its frames from the first
                self.sent[conversation] = 0
            logged = await self.chat.send(
                self.principal, conversation, self.assistant_id, content=message.get("content")
            )
        elif kind == "answer" and conversation is not None:
            await self.chat.open(self.principal, conversation, self.assistant_id)
            logged = await self.chat.send(
                self.principal,
                conversation,
                self.assistant_id,
                resume=message.get("value"),
                answer=True,
            )
        elif kind == "resume" and conversation is not None:
            after = message.get("after_seq")
            if not isinstance(after, int) or after < 0:
                raise InvalidInput("after_seq must be a non-negative integer")
            await self.chat.open(self.principal, conversation, self.assistant_id)
            self.sent[conversation] = after
            logged = []
        else:
            raise InvalidInput("send a message, an answer or a resume with a conversation_id")
        if logged:  # this socket's frames start with its own message
            self.sent.setdefault(conversation, logged[0]["seq"] - 1)
        self._follow(conversation)

    def _follow(self, conversation: uuid.UUID) -> None:
        """Relay the conversation's frames from the last one sent (one task per
        conversation: a run queued behind another is followed after it)."""
        if (task := self.followers.get(conversation)) is None or task.done():
            self.followers[conversation] = asyncio.create_task(self._relay(conversation))

    async def _relay(self, conversation: uuid.UUID) -> None:
        try:
            while True:
                before = self.sent[conversation]
                async for frames in self.chat.follow(self.principal, conversation, before):
                    await self.send(conversation, frames)
                if self.sent[conversation] == before:
                    return  # nothing new: the conversation's runs have ended
        except TenantgraphError as exc:
            await self.websocket.send_json({"type": "error", "detail": str(exc)})

    async def close(self) -> None:
        for task in self.followers.values():
            task.cancel()
        await asyncio.gather(*self.followers.values(), return_exceptions=True)


@router.websocket("/chat/ws")
async def web_chat(websocket: WebSocket, assistant_id: str) -> None:
    state: AppState = websocket.app.state.tenantgraph
    await websocket.accept()
    try:
        principal = await _authenticate(state, websocket)
    except (TenantgraphError, TimeoutError, ValueError) as exc:
        detail = str(exc) if isinstance(exc, TenantgraphError) else "authenticate first"
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.send_json({"type": "error", "detail": detail})
            await websocket.close(code=4401)
        return
    except WebSocketDisconnect:
        return
    assistant_id = await state.channels.web_assistant(principal, assistant_id)
    session = _Session(state.web_chat, websocket, principal, assistant_id)
    await websocket.send_json({"type": "ready", "conversation_id": None, "seq": 0})
    try:
        while True:
            message = await websocket.receive_json()
            try:
                await session.handle(message)
            except TenantgraphError as exc:
                await websocket.send_json({"type": "error", "detail": str(exc)})
    except (WebSocketDisconnect, ValueError):  # gone, or a frame that is not JSON
        pass
    finally:
        await session.close()
