"""Every request body through `langgraph-nextjs-api-passthrough` 0.1.4, the proxy the official
chat UI recommends for production: only `x-*` and `authorization` headers reach the server,
bodies arrive as `text/plain;charset=UTF-8` (or, from other proxies, without a type).

The proxy is `tests/passthrough.py`, a port of the package's request handler served by
uvicorn: the package itself needs Next.js's `next/server` and a download from npm, which
`make test` must not need.
"""

from __future__ import annotations

import pytest
from langgraph_sdk import get_client

from .ephemeral_app import serve
from .passthrough import FETCH_TEXT, Passthrough
from .test_api_content_types import filled_requests
from .test_isolation import victim

__all__ = ["victim"]

# What a browser's fetch adds; the proxy must drop all of it but the `x-*` header.
BROWSER = {
    "content-type": "application/json",
    "accept": "*/*",
    "cookie": "session=1",
    "origin": "http://localhost:3000",
    "x-chat-ui": "1",
}


@pytest.fixture(params=[FETCH_TEXT, None], ids=["text-plain", "no-content-type"])
async def passthrough(request, api_url):
    proxy = Passthrough(api_url, content_type=request.param)
    async with serve(proxy) as url:
        yield proxy, url


async def test_every_body_reaches_the_server_through_the_passthrough(tenants, victim, passthrough):
    proxy, proxy_url = passthrough
    async for owner, method, path, body in filled_requests(tenants, victim):
        answer = await owner.http.request(
            method,
            f"{proxy_url}/api{path}?_path=x",
            content=body,
            headers={**BROWSER, "authorization": owner.http.headers["authorization"]},
        )
        assert answer.status_code < 400, (method, path, proxy.content_type, answer.text)
        assert answer.headers["access-control-allow-origin"] == "*"
    # What reached the server: the credential, the `x-*` headers and the proxy's content type.
    expected = {"authorization", "x-chat-ui", "x-api-key"}
    expected |= set() if proxy.content_type is None else {"content-type"}
    assert {frozenset(sent) for sent in proxy.forwarded} == {frozenset(expected)}
    assert {sent.get("content-type") for sent in proxy.forwarded} == {proxy.content_type}


async def test_the_chat_ui_talks_through_the_passthrough_with_its_key(tenants, passthrough):
    """The UI's set-up: the browser sends no credential, the proxy adds the key as
    `x-api-key`; the SDK's JSON bodies lose their type on the way."""
    proxy, proxy_url = passthrough
    admin = tenants.a_admin
    made = await admin.http.post(f"/orgs/{admin.org}/keys", json={})
    assert made.status_code == 200, made.text
    proxy.api_key = made.json()["key"]
    ui = get_client(url=f"{proxy_url}/api", api_key=None)
    thread = await ui.threads.create(metadata={"via": "chat-ui"})
    found = await ui.threads.search(metadata={"via": "chat-ui"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    message = {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    chunks = [
        part
        async for part in ui.runs.stream(
            thread["thread_id"], "agent", input={"messages": [message]}, stream_mode="values"
        )
    ]
    last = [part.data for part in chunks if part.event == "values"][-1]
    assert last["messages"][-1]["content"] == "echo: hello", last
    await ui.store.put_item(["notes"], "k", {"text": "hi"})
    items = await ui.store.search_items(["notes"])
    assert [item["value"] for item in items["items"]] == [{"text": "hi"}]
