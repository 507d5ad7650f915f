"""An idempotent answer outlives a restart of the Valkey the server uses: the same key and
body after the restart replay the first answer instead of running the request again."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from tests.ephemeral_app import SideEffects, build_app, caller, create_orgs, serve

from tenantgraph.embedded import EmbeddedValkey
from tenantgraph.ephemeral.client import connect
from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.services.idempotency import Idempotency
from tenantgraph.services.limits import OrgLimits
from tenantgraph.settings import EphemeralSettings

ORG = "idem-restart-org"


async def test_a_replay_after_a_valkey_restart_does_not_run_the_request_again(resources, tmp_path):
    await create_orgs(resources.db, ORG)
    valkey = EmbeddedValkey(tmp_path)  # the app's own Valkey: the session's stays up
    redis = connect(valkey.start())
    effects = SideEffects()
    conf = EphemeralSettings()
    app = build_app(
        RateLimiter(redis, OrgLimits(resources.db).get, conf),
        Idempotency(resources.db, conf),
        effects,
    )
    headers = {**caller(ORG, "alice"), "Idempotency-Key": f"idem-{uuid.uuid4()}"}
    try:
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            first = await client.post("/items", json={"name": "x"}, headers=headers)
            assert first.status_code == 201

            valkey.stop()  # the last holder: the server shuts down, its memory is gone
            valkey.start()

            deadline = asyncio.get_running_loop().time() + 60
            while True:  # the first requests may meet a connection closed by the restart
                again = await client.post("/items", json={"name": "x"}, headers=headers)
                if again.status_code < 500 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
        valkey.stop()
    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert len(effects.created) == 1
