"""Every request body is JSON, whatever its `Content-Type` says.

The LangGraph API parses bodies as JSON regardless of the header, and clients rely on it:
`langgraph-nextjs-api-passthrough` (the chat UI's recommended proxy) forwards POST bodies
without their `Content-Type`, so the browser sends them as `text/plain;charset=UTF-8`.
FastAPI reads a body as JSON only when the header is missing or names JSON, so the header
is set to JSON here before the routes see it. No route of ours takes form or multipart data
through FastAPI (the providers' webhooks, api/channels/, read their signed raw bytes).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["JsonBodyMiddleware"]

_JSON = b"application/json"


def _names_json(value: bytes) -> bool:
    media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == _JSON or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in {"POST", "PUT", "PATCH"}:
            headers = scope["headers"]
            if not any(k == b"content-type" and _names_json(v) for k, v in headers):
                kept = [(k, v) for k, v in headers if k != b"content-type"]
                scope = {**scope, "headers": [*kept, (b"content-type", _JSON)]}
        await self.app(scope, receive, send)
