"""The web chat WebSocket against real processes: an API server that executes no run
(`TENANTGRAPH_WORKER_CONCURRENCY=0`) and a separate `tenantgraph worker`, sharing one
database and one Valkey; real WebSocket clients (`websockets`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from .api_fixtures import GRAPHS, caller, mint, start_api_server
from .servers import SECRET_KEY, create_database


@pytest.fixture(scope="module")
async def chat(resources, data_dir):
    """The API process and the worker process; yields the socket URL."""
    name = f"tenantgraph_webchat_{uuid.uuid4().hex[:8]}"
    database = await create_database(resources.admin_conninfo, name)
    env = {"DATABASE_URL": database, "TENANTGRAPH_SECRET_KEY": SECRET_KEY}
    home = data_dir / "webchat"
    api = await asyncio.to_thread(start_api_server, home, TENANTGRAPH_WORKER_CONCURRENCY="0", **env)
    worker_env = {**_inherited(), "TENANTGRAPH_DATA_DIR": str(home), **env}
    worker = await asyncio.to_thread(_start_worker, home, worker_env)
    try:
        yield api.url.replace("http://", "ws://"), api.url
        # While the processes (and their Valkey) still run: every key they wrote is
        # tagged with its org and expires.
        audit = await asyncio.to_thread(_audit, worker_env)
        assert audit.returncode == 0 and "scanned 0 keys" not in audit.stdout, audit.stdout
    finally:
        worker.terminate()
        await asyncio.to_thread(worker.wait, 30)
        api.terminate()


def _inherited() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def _start_worker(home: Path, env: dict[str, str]) -> subprocess.Popen:
    """`tenantgraph worker` on the API server's database and Valkey."""
    config = home / "worker.json"
    config.write_text(json.dumps({"graphs": GRAPHS}))
    with open(home / "worker.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tenantgraph.cli", "worker", "--config", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _audit(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`tenantgraph redis audit` on the processes' Valkey: every key tagged and expiring."""
    command = [sys.executable, "-m", "tenantgraph.cli", "redis", "audit"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


class Client:
    """One browser tab: a socket, the frames it got, the last seq of each conversation."""

    def __init__(self, socket) -> None:
        self.socket = socket
        self.frames: list[dict] = []

    async def frame(self) -> dict:
        async with asyncio.timeout(60):
            frame = json.loads(await self.socket.recv())
        self.frames.append(frame)
        return frame

    async def until(self, kind: str) -> list[dict]:
        """Frames up to and including the next one of `kind`."""
        got = []
        while (frame := await self.frame())["type"] != kind:
            assert frame["type"] != "error", frame
            got.append(frame)
        return [*got, frame]

    async def send(self, **message) -> None:
        await self.socket.send(json.dumps(message))


async def _open(url: str, token: str, assistant: str = "agent", **auth) -> Client:
    socket = await connect(f"{url}/chat/ws?assistant_id={assistant}")
    client = Client(socket)
    await client.send(type="auth", token=token, **auth)
    ready = await client.frame()
    assert ready == {"type": "ready", "conversation_id": None, "seq": 0}, ready
    return client


async def test_a_reply_run_by_another_process_reaches_the_socket(chat):
    url, _ = chat
    org = f"chat-{uuid.uuid4().hex[:6]}"
    client = await _open(url, mint(org, "alice"))
    await client.send(type="message", content="hello")
    frames = await client.until("done")
    kinds = [f["type"] for f in frames]
    assert kinds[:2] == ["ready", "message"] and kinds[-1] == "done", kinds
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    replies = [f for f in frames if f["type"] == "message" and f["role"] == "assistant"]
    assert [r["content"] for r in replies] == ["echo: hello"]
    conversation = frames[0]["conversation_id"]
    await client.send(type="message", conversation_id=conversation, content="again")
    more = await client.until("done")
    assert more[0]["seq"] == frames[-1]["seq"] + 1
    assert [f["content"] for f in more if f["type"] == "message" and f["role"] == "assistant"] == [
        "echo: again"
    ]
    await client.socket.close()


async def test_a_reconnecting_client_gets_what_it_missed_once(chat):
    url, _ = chat
    token = mint(f"chat-{uuid.uuid4().hex[:6]}", "alice")
    first = await _open(url, token, assistant="hitl")
    await first.send(type="message", content="draft it")
    opened = await first.frame()
    conversation = opened["conversation_id"]
    await first.frame()  # the user's own message
    await first.socket.close()  # gone before any reply
    second = await _open(url, token, assistant="hitl")
    await second.send(type="resume", conversation_id=conversation, after_seq=2)
    rest = await second.until("done")
    assert [f["seq"] for f in rest] == list(range(3, 3 + len(rest)))
    (interrupt,) = [f for f in rest if f["type"] == "interrupt"]
    assert interrupt["value"] == {"question": "send the draft?"}
    drafts = [f for f in rest if f["type"] == "message"]
    assert [d["content"] for d in drafts] == ["draft: ready to send"]
    await second.send(
        type="answer",
        conversation_id=conversation,
        interrupt_id=interrupt["interrupt_id"],
        value="yes",
    )
    answered = await second.until("done")
    assert [f["content"] for f in answered if f["type"] == "message"] == ["sent"]
    # A third tab resuming from the start gets the whole conversation, each frame once.
    third = await _open(url, token, assistant="hitl")
    await third.send(type="resume", conversation_id=conversation, after_seq=0)
    replayed = [await third.frame() for _ in range(answered[-1]["seq"])]
    assert [f["seq"] for f in replayed] == list(range(1, answered[-1]["seq"] + 1))
    assert replayed[2:] == rest + answered
    for client in (second, third):
        await client.socket.close()


async def test_another_users_conversation_is_not_found(chat):
    url, http_url = chat
    org = f"chat-{uuid.uuid4().hex[:6]}"
    alice = await _open(url, mint(org, "alice"))
    await alice.send(type="message", content="mine")
    conversation = (await alice.until("done"))[0]["conversation_id"]
    for token in (mint(org, "carl"), mint(f"other-{org}", "alice"), mint(org, "anna", "admin")):
        intruder = await _open(url, token)
        for message in (
            {"type": "resume", "conversation_id": conversation, "after_seq": 0},
            {"type": "message", "conversation_id": conversation, "content": "pwned"},
        ):
            await intruder.send(**message)
            refused = await intruder.frame()
            assert refused["type"] == "error" and "not found" in refused["detail"], refused
        await intruder.socket.close()
    thread = await caller(http_url, org, "alice", "member").sdk.threads.get_state(conversation)
    assert [m["content"] for m in thread["values"]["messages"]] == ["mine", "echo: mine"]
    await alice.socket.close()


async def test_a_socket_without_a_valid_credential_is_closed(chat):
    url, _ = chat
    socket = await connect(f"{url}/chat/ws?assistant_id=agent")
    await socket.send(json.dumps({"type": "auth", "token": "forged"}))
    refused = json.loads(await socket.recv())
    assert refused["type"] == "error"
    await socket.wait_closed()
    assert socket.close_code == 4401


async def test_a_web_connection_id_chats_with_its_assistant_in_its_org_only(chat):
    """A web connection's id names its assistant for its own org's callers; another org's
    web connection and a Slack connection are as unknown as a made-up id."""
    url, http_url = chat
    suffix = uuid.uuid4().hex[:6]
    ours = caller(http_url, f"chat-{suffix}", "anna", "admin")
    theirs = caller(http_url, f"other-{suffix}", "bea", "admin")

    async def connection(admin, channel_type: str, config: dict) -> str:
        body = {"type": channel_type, "name": "site", "assistant_id": "agent", "config": config}
        created = await admin.http.post(f"/orgs/{admin.org}/channels", json=body)
        assert created.status_code == 200, created.text
        return created.json()["channel_id"]

    web = await connection(ours, "web", {})
    slack = {"team_id": f"T{suffix}", "signing_secret": "s", "bot_token": "xoxb-1"}
    others = [await connection(theirs, "web", {}), await connection(ours, "slack", slack)]
    # A web connection has no settings: an allowed-origins list would be ignored, so refused.
    origins = {"type": "web", "name": "o", "assistant_id": "agent", "config": {"origins": "x"}}
    refused = await ours.http.post(f"/orgs/{ours.org}/channels", json=origins)
    assert refused.status_code == 422 and "unknown fields" in refused.text, refused.text

    member = mint(ours.org, "alice")
    client = await _open(url, member, assistant=web)
    await client.send(type="message", content="via the site")
    frames = await client.until("done")
    replies = [f["content"] for f in frames if f["type"] == "message" and f["role"] == "assistant"]
    assert replies == ["echo: via the site"]
    await client.socket.close()

    errors = []
    for assistant in [str(uuid.uuid4()), *others]:
        stranger = await _open(url, member, assistant=assistant)
        await stranger.send(type="message", content="hello?")
        errors.append(await stranger.frame())
        await stranger.socket.close()
    assert errors[0]["type"] == "error" and "not found" in errors[0]["detail"], errors
    assert errors[1:] == errors[:1] * 2
