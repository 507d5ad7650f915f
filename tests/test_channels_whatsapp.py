"""WhatsApp channels against a real server process: real signed Cloud API webhooks in,
and the Graph API replaced by a real local HTTP server recording every reply sent."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid

import pytest

from .api_fixtures import Tenants
from .channel_fixtures import channel_server


@pytest.fixture(scope="module")
async def wa(api_env, data_dir):
    async with channel_server(api_env, data_dir / "whatsapp") as server:
        yield server


@pytest.fixture
def tenants_(wa) -> Tenants:
    return Tenants.create(wa.url)


class Number:
    """A WhatsApp business number connected to one org."""

    def __init__(self, wa, admin, assistant: str = "agent") -> None:
        self.wa, self.admin, self.assistant = wa, admin, assistant
        self.number = f"1{uuid.uuid4().int % 10**11:011d}"
        self.app_secret = f"app-{uuid.uuid4().hex}"
        self.verify_token = f"verify-{uuid.uuid4().hex}"
        self.access_token = f"EAAG{uuid.uuid4().hex}"

    async def connect(self) -> dict:
        created = await self.admin.http.post(
            f"{self.wa.url}/orgs/{self.admin.org}/channels",
            json={
                "type": "whatsapp",
                "name": f"wa-{self.number}",
                "assistant_id": self.assistant,
                "config": {
                    "phone_number_id": self.number,
                    "app_secret": self.app_secret,
                    "verify_token": self.verify_token,
                    "access_token": self.access_token,
                },
            },
        )
        assert created.status_code == 200, created.text
        return created.json()

    def delivery(self, user: str, message: dict) -> bytes:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": self.number},
            "contacts": [{"wa_id": user, "profile": {"name": "U"}}],
            "messages": [{"from": user, "timestamp": "1700000000", **message}],
        }
        entry = {"id": "WABA", "changes": [{"field": "messages", "value": value}]}
        return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()

    async def send(self, body: bytes, secret: str | None = None):
        key = (secret or self.app_secret).encode()
        signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
        return await self.wa.http.post("/channels/whatsapp/webhook", content=body, headers=headers)

    async def text(self, user: str, text: str, message_id: str | None = None):
        message = {"id": message_id or f"wamid.{uuid.uuid4().hex}", "type": "text"}
        return await self.send(self.delivery(user, {**message, "text": {"body": text}}))

    async def press(self, user: str, button_id: str):
        interactive = {"type": "button_reply", "button_reply": {"id": button_id, "title": "x"}}
        message = {"id": f"wamid.{uuid.uuid4().hex}", "type": "interactive"}
        return await self.send(self.delivery(user, {**message, "interactive": interactive}))

    def replies(self, user: str) -> list[dict]:
        found = []
        for received in self.wa.outbox.received:
            if received.headers.get("authorization") != f"Bearer {self.access_token}":
                continue
            body = received.json()
            assert received.headers["host"].startswith("127.0.0.2")
            if body["to"] == user:
                found.append(body)
        return found

    async def reply(self, user: str, count: int = 1) -> list[dict]:
        async with asyncio.timeout(60):
            while len(self.replies(user)) < count:
                await self.wa.outbox.wait_for(len(self.wa.outbox.received) + 1)
        return self.replies(user)


async def test_the_subscription_check_needs_a_known_verify_token(wa, tenants_):
    number = Number(wa, tenants_.a_admin)
    await number.connect()
    params = {"hub.mode": "subscribe", "hub.challenge": "ch-42"}
    known = await wa.http.get(
        "/channels/whatsapp/webhook", params={**params, "hub.verify_token": number.verify_token}
    )
    assert known.status_code == 200 and known.text == "ch-42"
    unknown = await wa.http.get(
        "/channels/whatsapp/webhook", params={**params, "hub.verify_token": "guess"}
    )
    assert unknown.status_code == 403 and "ch-42" not in unknown.text


async def test_signed_messages_are_answered_once_and_forged_ones_refused(wa, tenants_):
    number = Number(wa, tenants_.a_admin)
    await number.connect()
    forged = number.delivery("4470001", {"id": "wamid.f", "type": "text", "text": {"body": "x"}})
    assert (await number.send(forged, secret="not-the-secret")).status_code == 401
    unsigned = await wa.http.post("/channels/whatsapp/webhook", content=forged)
    assert unsigned.status_code == 401
    for _ in range(3):  # Meta retries with the same message id
        assert (await number.text("4470001", "hello", message_id="wamid.same")).status_code == 200
    (reply,) = await number.reply("4470001")
    assert reply["type"] == "text" and reply["text"] == {"body": "echo: hello"}
    await number.text("4470001", "again")
    replies = await number.reply("4470001", 2)
    assert [r["text"]["body"] for r in replies] == ["echo: hello", "echo: again"]


async def test_an_interrupt_becomes_reply_buttons_and_the_press_resumes(wa, tenants_):
    number = Number(wa, tenants_.a_admin, assistant="hitl")
    await number.connect()
    await number.text("4470002", "draft it")
    (question,) = await number.reply("4470002")
    assert question["type"] == "interactive"
    buttons = question["interactive"]["action"]["buttons"]
    assert [b["reply"]["title"] for b in buttons] == ["Approve", "Reject"]
    await number.press("4470002", buttons[1]["reply"]["id"])
    replies = await number.reply("4470002", 2)
    assert replies[1]["text"] == {"body": "discarded"}


async def test_two_orgs_with_the_same_whatsapp_user_are_kept_apart(wa, tenants_):
    a, b = Number(wa, tenants_.a_admin), Number(wa, tenants_.b_admin)
    await a.connect()
    await b.connect()
    await a.text("4470003", "to a")
    await b.text("4470003", "to b")
    assert [r["text"]["body"] for r in await a.reply("4470003")] == ["echo: to a"]
    assert [r["text"]["body"] for r in await b.reply("4470003")] == ["echo: to b"]
    # b's number signed with a's secret: refused, whatever the body says.
    crossed = b.delivery("4470003", {"id": "wamid.x", "type": "text", "text": {"body": "x"}})
    assert (await b.send(crossed, secret=a.app_secret)).status_code == 401
    seen_a = await tenants_.a_admin.sdk.threads.search(metadata={"channel": "whatsapp"})
    seen_b = await tenants_.b_admin.sdk.threads.search(metadata={"channel": "whatsapp"})
    assert [t["metadata"]["whatsapp"]["number"] for t in seen_a] == [a.number]
    assert [t["metadata"]["whatsapp"]["number"] for t in seen_b] == [b.number]
    log = wa.server.log.read_text()
    for secret in (a.app_secret, a.verify_token, a.access_token, b.access_token):
        assert secret not in log
