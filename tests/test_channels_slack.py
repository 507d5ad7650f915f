"""Slack channels against a real server process: real signed Events API and interactivity
requests in, and Slack's Web API replaced by a real local HTTP server that records every
`chat.postMessage` the server sends (tests/receiver.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from types import SimpleNamespace
from urllib.parse import urlencode

import httpx
import pytest

from .api_fixtures import Tenants, start_api_server
from .receiver import Received, receiver

SLACK_OK = b'{"ok": true, "ts": "1.0"}'


@pytest.fixture(scope="module")
async def slack(api_env, data_dir):
    """One server whose Slack API is the outbox; the outbox answers as Slack does."""
    async with receiver() as outbox:
        outbox.reply = SLACK_OK
        server = await asyncio.to_thread(
            start_api_server,
            data_dir / "slack",
            TENANTGRAPH_SLACK_API_URL=f"{outbox.url}/api/",
            **api_env,
        )
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield SimpleNamespace(url=server.url, outbox=outbox, server=server, http=client)
        server.terminate()


def _signed(secret: str, body: bytes, *, at: int | None = None, kind: str = "json") -> dict:
    ts = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


class Workspace:
    """A Slack team connected to one org: sends signed events as Slack would."""

    def __init__(self, slack, admin, team: str, assistant: str = "agent") -> None:
        self.slack, self.admin, self.team, self.assistant = slack, admin, team, assistant
        self.secret = f"signing-{uuid.uuid4().hex}"
        self.token = f"xoxb-{uuid.uuid4().hex}"
        self.bot = "UBOT" + team[-4:].upper()

    async def connect(self) -> dict:
        created = await self.admin.http.post(
            f"{self.slack.url}/orgs/{self.admin.org}/channels",
            json={
                "type": "slack",
                "name": f"slack-{self.team}",
                "assistant_id": self.assistant,
                "config": {
                    "team_id": self.team,
                    "signing_secret": self.secret,
                    "bot_token": self.token,
                },
            },
        )
        assert created.status_code == 200, created.text
        return created.json()

    def event(self, event: dict, event_id: str | None = None) -> bytes:
        return json.dumps(
            {
                "type": "event_callback",
                "team_id": self.team,
                "event_id": event_id or f"Ev{uuid.uuid4().hex}",
                "authorizations": [{"user_id": self.bot}],
                "event": event,
            }
        ).encode()

    async def send(self, body: bytes, **signing) -> httpx.Response:
        headers = _signed(self.secret, body, **signing)
        return await self.slack.http.post("/channels/slack/events", content=body, headers=headers)

    async def mention(self, channel: str, ts: str, text: str, **kw) -> httpx.Response:
        event = {"type": "app_mention", "channel": channel, "ts": ts, "user": "U1"}
        return await self.send(self.event({**event, "text": f"<@{self.bot}> {text}"}, **kw))

    async def say(self, channel: str, thread_ts: str, text: str) -> httpx.Response:
        event = {"type": "message", "channel": channel, "ts": f"{time.time():.6f}"}
        event |= {"thread_ts": thread_ts, "text": text, "user": "U1"}
        return await self.send(self.event(event))

    async def press(self, channel: str, thread_ts: str, action: str, value: str):
        payload = {
            "type": "block_actions",
            "team": {"id": self.team},
            "channel": {"id": channel},
            "message": {"ts": "9.9", "thread_ts": thread_ts},
            "actions": [{"action_id": action, "value": value}],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = _signed(self.secret, body, kind="form")
        return await self.slack.http.post(
            "/channels/slack/interactions", content=body, headers=headers
        )

    def replies(self, channel: str, thread_ts: str | None = None) -> list[dict]:
        """What the server posted with this workspace's token (in one thread)."""
        found = []
        for received in self.slack.outbox.received:
            if received.headers.get("authorization") != f"Bearer {self.token}":
                continue
            body = _posted(received)
            if body["channel"] == channel and thread_ts in (None, body["thread_ts"]):
                found.append(body)
        return found

    async def reply(self, channel: str, thread_ts: str, count: int = 1) -> list[dict]:
        """The thread's replies once there are `count` (a generous deadline)."""
        async with asyncio.timeout(60):
            while len(self.replies(channel, thread_ts)) < count:
                await self.slack.outbox.wait_for(len(self.slack.outbox.received) + 1)
        return self.replies(channel, thread_ts)


def _posted(received: Received) -> dict:
    assert received.headers.get("content-type", "").startswith("application/json")
    return received.json()


@pytest.fixture
def tenants_(slack) -> Tenants:
    return Tenants.create(slack.url)


async def test_url_verification_answers_the_challenge(slack):
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
    answered = await slack.http.post("/channels/slack/events", content=body)
    assert answered.status_code == 200 and answered.json() == {"challenge": "c-123"}


async def test_forged_stale_and_unknown_requests_are_refused(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    await team.connect()
    body = team.event({"type": "app_mention", "channel": "C1", "ts": "1.1", "text": "hi"})
    forged = _signed("not-the-secret", body)
    refused = await slack.http.post("/channels/slack/events", content=body, headers=forged)
    assert refused.status_code == 401, refused.text
    stale = await team.send(body, at=int(time.time()) - 6 * 60)
    assert stale.status_code == 401, stale.text
    stranger = Workspace(slack, tenants_.a_admin, "T-never-connected")
    unknown = await stranger.send(stranger.event({"type": "app_mention"}))
    assert unknown.status_code == 401 and unknown.json() == refused.json()
    unsigned = await slack.http.post("/channels/slack/events", content=body)
    assert unsigned.status_code == 401
    assert team.replies("C1") == []
    accepted = await team.send(body)  # the same body, signed now: answered
    assert accepted.status_code == 200, accepted.text
    assert (await team.reply("C1", "1.1"))[0]["text"] == "echo: hi"


async def test_a_retried_event_starts_one_run_and_posts_one_reply(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    await team.connect()
    for _ in range(3):  # Slack's retries carry the same event_id
        sent = await team.mention("C9", "7.1", "once", event_id="Ev-retried")
        assert sent.status_code == 200
    assert [r["text"] for r in await team.reply("C9", "7.1")] == ["echo: once"]
    await team.mention("C9", "7.2", "later")  # handled after the retries were
    await team.reply("C9", "7.2")
    assert len(team.replies("C9", "7.1")) == 1
    threads = await tenants_.a_admin.sdk.threads.search(metadata={"channel": "slack"})
    ours = [
        t
        for t in threads
        if t["metadata"]["slack"] == {"team": team.team, "channel": "C9", "ts": "7.1"}
    ]
    assert len(ours) == 1
    assert len(await tenants_.a_admin.sdk.runs.list(ours[0]["thread_id"])) == 1
