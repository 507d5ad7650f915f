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
from urllib.parse import urlencode

import httpx
import pytest

from .api_fixtures import Tenants
from .channel_fixtures import channel_server
from .receiver import Received


@pytest.fixture(scope="module")
async def slack(api_env, data_dir):
    async with channel_server(api_env, data_dir / "slack") as server:
        yield server


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


async def test_a_mention_engages_the_thread_and_follow_ups_need_none(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    await team.connect()
    await team.say("C2", "3.1", "before any mention")  # not engaged: ignored
    await team.mention("C2", "3.1", "hello")
    assert [r["text"] for r in await team.reply("C2", "3.1")] == ["echo: hello"]
    await team.say("C2", "3.1", "and then")
    replies = await team.reply("C2", "3.1", 2)
    assert [r["text"] for r in replies] == ["echo: hello", "echo: and then"]
    await team.say("C2", "4.1", "another thread, never mentioned")
    await team.mention("C2", "5.1", "last")
    await team.reply("C2", "5.1")
    assert team.replies("C2", "4.1") == []
    assert len(team.replies("C2", "3.1")) == 2


async def test_an_interrupt_becomes_buttons_and_the_press_resumes_the_run(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}", assistant="hitl")
    await team.connect()
    await team.mention("C3", "8.1", "draft it")
    (question,) = await team.reply("C3", "8.1")
    assert question["text"] == "send the draft?"
    buttons = question["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["approve", "reject"]
    interrupt_id = buttons[0]["value"]
    pressed = await team.press("C3", "8.1", "approve", interrupt_id)
    assert pressed.status_code == 200, pressed.text
    replies = await team.reply("C3", "8.1", 2)
    assert replies[1]["text"] == "sent"
    await team.press("C3", "8.1", "approve", interrupt_id)  # pressed twice: answered once
    forged = await slack.http.post(
        "/channels/slack/interactions", content=b"payload=%7B%7D", headers=_signed("x", b"")
    )
    assert forged.status_code in (400, 401)
    await team.mention("C3", "8.2", "again")
    await team.reply("C3", "8.2")
    assert len(team.replies("C3", "8.1")) == 2


async def test_an_escalated_thread_records_messages_without_an_answer(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    await team.connect()
    await team.mention("C4", "6.1", "help")
    await team.reply("C4", "6.1")
    admin = tenants_.a_admin
    (thread,) = await admin.sdk.threads.search(metadata={"slack": {"team": team.team}})
    path = f"/threads/{thread['thread_id']}/escalation"
    handed = await admin.http.post(path, json={"status": "human", "reason": "angry"})
    assert handed.status_code == 200, handed.text
    await team.say("C4", "6.1", "for the human")
    async with asyncio.timeout(60):  # recorded in the thread, not answered
        while True:
            state = await admin.sdk.threads.get_state(thread["thread_id"])
            if any(m["content"] == "for the human" for m in state["values"]["messages"]):
                break
            await asyncio.sleep(0.1)
    assert (await admin.sdk.threads.get(thread["thread_id"]))["metadata"]["escalation"] == {
        "status": "human",
        "reason": "angry",
    }
    back = await admin.http.post(path, json={"status": "agent"})
    assert back.status_code == 200
    await team.say("C4", "6.1", "anyone?")
    replies = await team.reply("C4", "6.1", 2)
    assert [r["text"] for r in replies] == ["echo: help", "echo: anyone?"]


async def test_two_orgs_with_the_same_slack_channel_are_kept_apart(slack, tenants_):
    a = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    b = Workspace(slack, tenants_.b_admin, f"T{uuid.uuid4().hex[:8]}")
    await a.connect()
    await b.connect()
    await a.mention("CSAME", "1.5", "from a")
    await b.mention("CSAME", "1.5", "from b")
    assert [r["text"] for r in await a.reply("CSAME", "1.5")] == ["echo: from a"]
    assert [r["text"] for r in await b.reply("CSAME", "1.5")] == ["echo: from b"]
    # A team's events signed with the other org's secret reach neither org.
    forged = a.event({"type": "app_mention", "channel": "CSAME", "ts": "1.5", "text": "x"})
    refused = await slack.http.post(
        "/channels/slack/events", content=forged, headers=_signed(b.secret, forged)
    )
    assert refused.status_code == 401
    seen_a = await tenants_.a_admin.sdk.threads.search(metadata={"channel": "slack"})
    seen_b = await tenants_.b_admin.sdk.threads.search(metadata={"channel": "slack"})
    assert [t["metadata"]["slack"]["team"] for t in seen_a] == [a.team]
    assert [t["metadata"]["slack"]["team"] for t in seen_b] == [b.team]
    assert {t["thread_id"] for t in seen_a}.isdisjoint({t["thread_id"] for t in seen_b})


async def test_a_channel_past_its_run_budget_says_so_and_starts_no_run(slack, tenants_):
    admin = tenants_.a_admin
    limited = await admin.http.put(
        f"{slack.url}/orgs/{admin.org}/limits", json={"bucket": "user_runs", "limit": 1}
    )
    assert limited.status_code == 200, limited.text
    busy = Workspace(slack, admin, f"T{uuid.uuid4().hex[:8]}")
    calm = Workspace(slack, admin, f"T{uuid.uuid4().hex[:8]}")
    await busy.connect()
    await calm.connect()
    await busy.mention("C5", "2.1", "first")
    assert [r["text"] for r in await busy.reply("C5", "2.1")] == ["echo: first"]
    await busy.mention("C5", "2.2", "second")
    (notice,) = await busy.reply("C5", "2.2")
    assert "too many" in notice["text"]
    await calm.mention("C5", "2.1", "other channel")  # its own budget
    assert [r["text"] for r in await calm.reply("C5", "2.1")] == ["echo: other channel"]


async def test_secrets_are_in_no_answer_and_no_log_line(slack, tenants_):
    team = Workspace(slack, tenants_.a_admin, f"T{uuid.uuid4().hex[:8]}")
    created = await team.connect()
    secrets = [team.secret, team.token]
    assert created["config"] == {"team_id": team.team}
    assert created["secrets_set"] == ["bot_token", "signing_secret"]
    base = f"{slack.url}/orgs/{team.admin.org}/channels"
    rotated = f"xoxb-{uuid.uuid4().hex}"
    secrets.append(rotated)
    answers = [
        await team.admin.http.get(base),
        await team.admin.http.get(f"{base}/{created['channel_id']}"),
        await team.admin.http.patch(
            f"{base}/{created['channel_id']}", json={"config": {"bot_token": rotated}}
        ),
    ]
    team.token = rotated
    await team.mention("C6", "4.4", "with the new token")
    assert [r["text"] for r in await team.reply("C6", "4.4")] == ["echo: with the new token"]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert not any(s in answer.text for s in secrets), answer.text
    bad = await team.admin.http.post(
        base,
        json={
            "type": "slack",
            "name": "x",
            "assistant_id": "agent",
            "config": {"bot_token": team.secret},
        },
    )
    assert bad.status_code == 422 and team.secret not in bad.text
    log = slack.server.log.read_text()
    assert "channels" in log  # the requests were logged
    assert not any(s in log for s in secrets)
