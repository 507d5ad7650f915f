"""Request bodies are JSON whatever their `Content-Type`, as the LangGraph API reads them.

The chat UI's recommended proxy, `langgraph-nextjs-api-passthrough` 0.1.4, forwards only
the `x-*` and `authorization` headers of a request, so the browser's `fetch` sends the body
it forwards as `text/plain;charset=UTF-8`. Every POST, PUT and PATCH route of the app is
sent that way here (and without a content type, and as a form), by the owner of the
objects it names: each must answer as it does for `application/json`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .route_table import anonymous, app_routes
from .test_isolation import (
    ADMIN,
    BY_BODY,
    CREATIONS,
    FOREIGN_ASSISTANT,
    HI,
    ROUTES,
    SEARCHES,
    SESSIONS,
    SKIPPED_BY_BODY,
    _fill,
    victim,
)

__all__ = ["victim"]

# Routes with no body in the isolation tables: the smallest body each accepts.
OTHER_BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/store/items"): {"namespace": ["notes"], "key": "k", "value": {"text": "hi"}},
    ("POST", "/store/items/search"): {"namespace_prefix": ["notes"]},
    ("POST", "/store/namespaces"): {},
    ("POST", "/orgs"): {"org_id": "{org_id}"},
    ("POST", "/threads"): {"metadata": {"via": "proxy"}},
    ("POST", "/assistants"): {"graph_id": "agent"},
    ("POST", "/mcp"): {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    ("POST", "/a2a/{assistant_id}"): {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": {"role": "user", "parts": [], "messageId": "m"}},
    },
    ("POST", "/experiments"): {
        "name": "ct-{tag}",
        "variants": [{"name": "a", "assistant_id": "{assistant_id}"}],
        "metric": {"key": "thumbs"},
    },
    ("POST", "/feedback/tokens/{token}"): {"score": 1},
}
# What the passthrough sends instead of the client's `Content-Type`.
CONTENT_TYPES = ["text/plain;charset=UTF-8", None, "application/x-www-form-urlencoded"]


def _bodied_rows() -> list[tuple[str, str, Any, bool]]:
    """(method, path, body, needs an admin) for every row of the tables that sends one."""
    rows = [(m, p, b, role == ADMIN) for _, m, p, b, role, _ in ROUTES]
    rows += [(m, p, b, False) for _, m, p, b in FOREIGN_ASSISTANT + BY_BODY + SKIPPED_BY_BODY]
    rows += [(m, p, b, False) for m, p, b in SESSIONS]
    rows += [(m, p, {}, False) for m, p in SEARCHES]
    admins = ("/assistants", "/experiments")
    rows += [(m, p, OTHER_BODIES[(m, p)], p in admins) for m, p in CREATIONS]
    named = {(m, p) for m, p, _, _ in rows}
    rows += [(m, p, b, False) for (m, p), b in OTHER_BODIES.items() if (m, p) not in named]
    bodied = {"POST", "PUT", "PATCH"}
    return [(m, p, {} if b is None else b, admin) for m, p, b, admin in rows if m in bodied]


# The providers' webhooks: signed over their raw bytes (Slack's button presses are a form),
# sent by tests/test_channels_slack.py and tests/test_channels_whatsapp.py.
SIGNED = {
    ("POST", "/channels/slack/events"),
    ("POST", "/channels/slack/interactions"),
    ("POST", "/channels/whatsapp/webhook"),
}


def test_every_route_with_a_body_is_sent_here():
    bodied = {(m, anonymous(p)) for m, p in app_routes() if m in {"POST", "PUT", "PATCH"}}
    sent = {(m, anonymous(p)) for m, p, _, _ in _bodied_rows()}
    assert sorted(bodied - sent - SIGNED) == []


def _passthrough(caller, content_type: str | None) -> dict[str, str]:
    """The headers that reach the server through the proxy: `x-*` and `authorization`."""
    kept = {k: v for k, v in caller.http.headers.items() if k.lower() == "authorization"}
    return kept if content_type is None else {**kept, "content-type": content_type}


async def filled_requests(tenants, victim) -> AsyncIterator[tuple[Any, str, str, bytes]]:
    """(caller, method, path, JSON body) for every row of `_bodied_rows`, its ids filled
    with the victim's objects (owned by the caller), fresh ones where a row needs them."""
    for method, path, body, admin in _bodied_rows():
        if method == "POST" and path == "/orgs":
            continue  # platform admins only; its body is read like any other
        owner = tenants.a_admin if admin else tenants.a_member
        ids = dict(victim)
        if "{own_thread}" in path:  # a run waits for one queued before it: a fresh thread
            ids["own_thread"] = (await owner.sdk.threads.create())["thread_id"]
        if "pending_run_id" in json.dumps([path, body]):  # one cancel per pending run
            queued = (await owner.sdk.threads.create())["thread_id"]
            pending = await owner.sdk.runs.create(queued, "agent", input=HI, after_seconds=3600)
            ids["pending_thread_id"], ids["pending_run_id"] = queued, pending["run_id"]
        yield owner, method, _fill(path, ids), json.dumps(_fill(body, ids)).encode()


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
async def test_every_body_is_read_as_json_whatever_its_content_type(tenants, victim, content_type):
    async for owner, method, path, body in filled_requests(tenants, victim):
        headers = _passthrough(owner, content_type)
        answer = await owner.http.request(method, path, content=body, headers=headers)
        assert answer.status_code < 400, (method, path, content_type, answer.text)


async def test_a_body_that_is_not_json_is_a_clear_422(tenants):
    answer = await tenants.a_member.http.post(
        "/threads/search", content=b"limit=10", headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 422, answer.text
    assert "JSON" in answer.text
