"""`Idempotency-Key` on POST, PUT and PATCH: run a request once, replay its first response.

- first use of a key: the request runs; its response (status, headers, body — errors too)
  is stored for 24 h (in Postgres: a Valkey restart forgets nothing), before the
  response's last byte goes out, so a retry sent the moment the answer arrived is
  replayed, never told "still in progress";
- same key, same request (method, path, query, body): the stored response is sent again
  with `Idempotent-Replayed: true`, and the route does not run;
- same key, different request: `422`; same key while the first is still running: `409`;
- streamed (`text/event-stream`) or oversized responses are not stored: a retry gets `409`
  carrying the first response's `Content-Location`, so it can join the run, not repeat it;
- a request that raised or was abandoned before its response finished frees its key, so
  the client's retry runs it again (no response was ever delivered); so does a `503`, an
  infrastructure fault that wrote nothing (Postgres or Valkey out of reach): its
  `Retry-After` invites the retry, which must run, not replay the outage for 24 h.

Keys belong to the requester — org, user, role and credential: two tenants, or one user
acting through two roles or two API keys, never meet.
Requests without a principal or without the header pass through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantgraph.api.identity import request_identity
from tenantgraph.services.idempotency import (
    ClaimResult,
    InvalidIdempotencyKey,
    StoredResponse,
    fingerprint,
)

if TYPE_CHECKING:
    from tenantgraph.api.state import AppState

__all__ = ["IdempotencyMiddleware"]

METHODS = frozenset({"POST", "PUT", "PATCH"})
HEADER = "idempotency-key"
# Per-connection or per-delivery headers that must not be replayed as stored.
_NOT_STORED = frozenset(
    {"content-length", "connection", "date", "keep-alive", "server", "set-cookie",
     "transfer-encoding"}
)  # fmt: skip


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = request_identity(scope)
        principal = identity.principal if identity is not None else None
        key = Headers(scope=scope).get(HEADER) if principal is not None else None
        if principal is None or key is None or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        assert identity is not None
        credential = str(identity.api_key_id) if identity.api_key_id is not None else "token"
        store = self.state.idempotency
        try:
            body = await _read_body(receive, store.max_body_bytes)
        except _Disconnected:
            return
        if body is None:
            await _error(413, "Request body too large for an Idempotency-Key.", scope, send)
            return
        request_fp = fingerprint(scope["method"], scope["path"], scope["query_string"], body)
        try:
            claim = await store.claim(principal, credential, key, request_fp)
        except InvalidIdempotencyKey as exc:
            await _error(400, str(exc), scope, send)
            return

        if claim.result is ClaimResult.MISMATCH:
            await _error(
                422, "Idempotency-Key was already used for a different request.", scope, send
            )
            return
        if claim.result is ClaimResult.IN_FLIGHT:
            await _error(
                409, "A request with this Idempotency-Key is still in progress.", scope, send,
                headers={"Retry-After": "1"},
            )  # fmt: skip
            return
        if claim.result is ClaimResult.UNREPLAYABLE:
            assert claim.response is not None
            location = dict(claim.response.headers).get("content-location")
            await _error(
                409,
                "The first request with this Idempotency-Key already ran; its response was "
                "streamed or too large to keep, so it cannot be replayed.",
                scope,
                send,
                headers={"Content-Location": location} if location else None,
            )
            return
        if claim.result is ClaimResult.REPLAY:
            assert claim.response is not None
            stored = claim.response
            response = Response(stored.body, status_code=stored.status)
            response.raw_headers = [
                *((n.encode("latin-1"), v.encode("latin-1")) for n, v in stored.headers),
                (b"content-length", str(len(stored.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ]
            await response(scope, receive, send)
            return

        async def record(response: StoredResponse, replayable: bool) -> None:
            # Shielded: a cancelled request still stores its answer.
            await asyncio.shield(
                store.complete(
                    principal, credential, key, claim.token, response, replayable=replayable
                )
            )

        async def release() -> None:
            await asyncio.shield(store.release(principal, credential, key, claim.token))

        recorder = _Recorder(send, store.max_body_bytes, record, release)
        try:
            await self.app(scope, _replay_body(body, receive), recorder.send)
        finally:
            if not recorder.finished:
                await release()


class _Recorder:
    """Passes a response through unchanged while keeping a copy, which it stores (`record`)
    before it lets the response's last part go out; a 503 frees the key (`release`) then
    instead, so a retry sent the moment it arrives runs."""

    def __init__(
        self,
        send: Send,
        max_body_bytes: int,
        record: Callable[[StoredResponse, bool], Awaitable[None]],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self._send = send
        self._max = max_body_bytes
        self._record = record
        self._release = release
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.replayable = True
        self.finished = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in message.get("headers", ())
                if name.decode("latin-1").lower() not in _NOT_STORED
            ]
            if dict(self.headers).get("content-type", "").startswith("text/event-stream"):
                self.replayable = False
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.replayable and self.size <= self._max:
                self.chunks.append(chunk)
            else:
                self.replayable = False
                self.chunks.clear()
            if not message.get("more_body", False):
                if self.status == 503:
                    await self._release()
                else:
                    await self._record(self.response(), self.replayable)
                self.finished = True
        await self._send(message)

    def response(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, b"".join(self.chunks))


class _Disconnected(Exception):
    """The client went away before its request body arrived."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it exceeds `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the already-read body once, then the real channel."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _error(
    status: int, detail: str, scope: Scope, send: Send, headers: dict[str, str] | None = None
) -> None:
    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
