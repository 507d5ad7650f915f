"""`langgraph-nextjs-api-passthrough` 0.1.4 as an ASGI app, for the tests that put it between
a client and the server.

It does what the package's `handleRequest` does (dist/index.js of 0.1.4): the path loses its
leading `api/`, the query its `_path` and `nxtP_path`; of the request's headers only the
`x-*` ones and `authorization` are forwarded, then `x-api-key` is set to the configured key
(`""` when none, the package's default with `LANGSMITH_API_KEY` unset); a POST, PUT or PATCH
body is read as text and handed to `fetch` as a string, which sends it as
`text/plain;charset=UTF-8`. The answer is streamed back with all its headers plus the
package's CORS headers, and OPTIONS is answered 204 by the proxy itself.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.types import Receive, Scope, Send

FETCH_TEXT = "text/plain;charset=UTF-8"
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "access-control-allow-headers": "*",
    "access-control-expose-headers": "content-location",
}
# Set by the ASGI server for the streamed answer; copying them would frame it twice.
HOP_BY_HOP = {"transfer-encoding", "connection", "keep-alive", "content-length"}


class Passthrough:
    """The proxy. `content_type` is what the forwarded body carries: `fetch`'s default for a
    string body, or None for a client that sends none. `forwarded` keeps the header names
    of every forwarded request, so a test can check what reached the server."""

    def __init__(self, api_url: str, api_key: str = "", content_type: str | None = FETCH_TEXT):
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.content_type = content_type
        self.forwarded: list[dict[str, str]] = []
        self.http = httpx.AsyncClient(timeout=60)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.http.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        method = scope["method"]
        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": _raw(CORS)})
            await send({"type": "http.response.body", "body": b""})
            return
        path = re.sub(r"^/?api/", "", scope["path"])
        query = [
            (k, v)
            for k, v in parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            if k not in ("_path", "nxtP_path")
        ]
        url = f"{self.api_url}/{path}" + (f"?{urlencode(query)}" if query else "")
        headers = {
            k.decode().lower(): v.decode()
            for k, v in scope["headers"]
            if k.lower().startswith(b"x-") or k.lower() == b"authorization"
        }
        headers["x-api-key"] = self.api_key
        body = None
        if method in ("POST", "PUT", "PATCH"):
            body = (await _read(receive)).decode()  # `await req.text()`
            if self.content_type is not None:
                headers["content-type"] = self.content_type
        self.forwarded.append(headers)
        request = self.http.build_request(method, url, headers=headers, content=body)
        answer = await self.http.send(request, stream=True)
        try:
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": _raw({**kept, **CORS}),
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await answer.aclose()


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in headers.items()]
