"""A server whose Slack and WhatsApp APIs are one local outbox (tests/receiver.py) that
records every reply it is sent and answers as Slack does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx

from .api_fixtures import start_api_server
from .receiver import receiver

SLACK_OK = b'{"ok": true, "ts": "1.0"}'


@asynccontextmanager
async def channel_server(api_env: dict[str, str], data_dir) -> AsyncIterator[SimpleNamespace]:
    async with receiver() as outbox:
        outbox.reply = SLACK_OK
        server = await asyncio.to_thread(
            start_api_server,
            data_dir,
            TENANTGRAPH_SLACK_API_URL=f"{outbox.url}/api/",
            TENANTGRAPH_WHATSAPP_API_URL=f"{outbox.url}/graph",
            **api_env,
        )
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                yield SimpleNamespace(url=server.url, outbox=outbox, server=server, http=client)
        finally:
            server.terminate()
