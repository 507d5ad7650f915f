"""A real `tenantgraph serve` for the API tests, and callers of two orgs with two roles."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from .receiver import RECEIVER_HOST
from .servers import ServerProcess

JWT_SECRET = "test-secret-" + "x" * 32
ADMIN_TOKEN = "platform-admin-token-for-tests"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GRAPHS = {
    "agent": f"{EXAMPLES}/echo.py:graph",
    "other": f"{EXAMPLES}/echo.py:graph",
    "memory": f"{EXAMPLES}/memory.py:graph",
    "hitl": f"{EXAMPLES}/interrupt.py:graph",
    "custom": f"{EXAMPLES}/custom_stream.py:graph",
    "slow": f"{EXAMPLES}/slow.py:graph",
    "nested": f"{EXAMPLES}/nested.py:graph",
    "gate": f"{Path(__file__).resolve().parent}/gate_graph.py:graph",
    "tools": f"{Path(__file__).resolve().parent}/tool_chat_graph.py:graph",
    "whoami": f"{EXAMPLES}/whoami.py:graph",
}


def mint(org: str | None, user: str, role: str = "member", **claims: object) -> str:
    payload: dict[str, object] = {"sub": user, "exp": int(time.time()) + 3600, **claims}
    if org is not None:
        payload["org_id"] = org
        payload["org_role"] = role
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


def start_api_server(data_dir: Path, store: dict | None = None, **env: str) -> ServerProcess:
    """`store`: the config file's `store` block (vector search), none by default."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "tenantgraph.json"
    config.write_text(json.dumps({"graphs": GRAPHS} | ({"store": store} if store else {})))
    server = ServerProcess(
        data_dir,
        config=config,
        env={
            "TENANTGRAPH_JWT_SECRET": JWT_SECRET,
            "TENANTGRAPH_ADMIN_TOKEN": ADMIN_TOKEN,
            # Cron tests fire every second; the one-minute minimum has its own test.
            "TENANTGRAPH_CRON_MIN_INTERVAL_SECONDS": "0",
            # An override set by a test applies at once (servers cache them 10 s by default).
            "TENANTGRAPH_EPHEMERAL__RATE_LIMIT_CACHE_SECONDS": "0",
            # Webhook receivers of the tests listen on 127.0.0.2 (tests/receiver.py); every
            # other loopback or private address stays refused, as on a default server.
            "TENANTGRAPH_OUTBOUND_ALLOWED_NETWORKS": RECEIVER_HOST + "/32",
            **env,
        },
    )
    server.wait_ready()
    return server


@dataclass
class Caller:
    """One user of one org: a token, an SDK client and a raw HTTP client."""

    org: str
    user: str
    role: str
    token: str
    sdk: LangGraphClient
    http: httpx.AsyncClient


def caller(url: str, org: str, user: str, role: str) -> Caller:
    token = mint(org, user, role)
    headers = {"Authorization": f"Bearer {token}"}
    return Caller(
        org,
        user,
        role,
        token,
        get_client(url=url, api_key=None, headers=headers),
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30),
    )


@dataclass
class Tenants:
    """Org A and org B, each with a member and an admin."""

    a_member: Caller
    a_admin: Caller
    b_member: Caller
    b_admin: Caller

    @classmethod
    def create(cls, url: str) -> Tenants:
        suffix = uuid.uuid4().hex[:6]
        a, b = f"acme-{suffix}", f"globex-{suffix}"
        return cls(
            caller(url, a, "alice", "member"),
            caller(url, a, "anna", "admin"),
            caller(url, b, "bob", "member"),
            caller(url, b, "bea", "admin"),
        )

    def all(self) -> list[Caller]:
        return [self.a_member, self.a_admin, self.b_member, self.b_admin]
