"""Web chat under load: 2 orgs x N concurrent sockets on an API process that executes no
run, with a separate `tenantgraph worker` (the cross-process path of every reply).

Each socket authenticates as its own user, sends one message carrying a unique nonce and
reads frames until `done`. Checked: every reply arrives once, on its own socket (its
assistant message is the echo of its own nonce; no frame names another socket's nonce).
Reported: the time to open and authenticate every socket, the time until every reply was
in, replies per second, and the median / p99 of send → `done` per socket.

Run: .venv/bin/python bench/webchat_bench.py [--sockets 200] [--worker-concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.api_fixtures import GRAPHS, mint, start_api_server  # noqa: E402

_UNLIMITED = {
    f"TENANTGRAPH_EPHEMERAL__RATE_LIMITS__{bucket}__{field}": value
    for bucket in ("USER_RUNS", "ORG_RUNS")
    for field, value in (("LIMIT", "1000000"), ("WINDOW_SECONDS", "60"))
}


def start_worker(data: Path, concurrency: int) -> subprocess.Popen:
    config = data / "worker.json"
    config.write_text(json.dumps({"graphs": GRAPHS}))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"TENANTGRAPH_DATA_DIR": str(data), **_UNLIMITED}
    command = [sys.executable, "-m", "tenantgraph.cli", "worker", "--config", str(config)]
    with open(data / "worker.log", "ab") as out:
        return subprocess.Popen(
            [*command, "--concurrency", str(concurrency)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def one_socket(url: str, org: str, user: str, opened: asyncio.Barrier) -> dict:
    """One tab: open, authenticate, wait for every tab, send, read to `done`."""
    nonce = f"{org}/{user}/{uuid.uuid4().hex}"
    async with connect(f"{url}/chat/ws?assistant_id=agent", open_timeout=60) as socket:
        await socket.send(json.dumps({"type": "auth", "token": mint(org, user)}))
        assert json.loads(await socket.recv())["type"] == "ready"
        await opened.wait()
        sent = time.perf_counter()
        await socket.send(json.dumps({"type": "message", "content": nonce}))
        frames = []
        while (frame := json.loads(await socket.recv()))["type"] != "done":
            assert frame["type"] != "error", frame
            frames.append(frame)
        elapsed = time.perf_counter() - sent
    replies = [f["content"] for f in frames if f["type"] == "message" and f["role"] == "assistant"]
    return {"nonce": nonce, "replies": replies, "frames": frames, "seconds": elapsed}


async def main(sockets: int, concurrency: int, data: Path) -> None:
    api = await asyncio.to_thread(
        start_api_server, data, TENANTGRAPH_WORKER_CONCURRENCY="0", **_UNLIMITED
    )
    worker = await asyncio.to_thread(start_worker, data, concurrency)
    url = api.url.replace("http://", "ws://")
    orgs = [f"bench-a-{uuid.uuid4().hex[:6]}", f"bench-b-{uuid.uuid4().hex[:6]}"]
    try:
        # Warm up: each org created (claims mode creates it on first use), the graph loaded.
        for org in orgs:
            await one_socket(url, org, "warmup", asyncio.Barrier(1))
        opened = asyncio.Barrier(2 * sockets + 1)
        start = time.perf_counter()
        tabs = [
            asyncio.create_task(one_socket(url, org, f"u{i}", opened))
            for org in orgs
            for i in range(sockets)
        ]
        await opened.wait()
        connected = time.perf_counter() - start
        start = time.perf_counter()
        results = await asyncio.gather(*tabs)
        total = time.perf_counter() - start
    finally:
        worker.terminate()
        worker.wait(30)
        api.terminate()
    nonces = {r["nonce"] for r in results}
    for result in results:
        assert result["replies"] == [f"echo: {result['nonce']}"], result["replies"]
        text = json.dumps(result["frames"])
        assert not any(n in text for n in nonces - {result["nonce"]}), "a reply crossed sockets"
    times = sorted(r["seconds"] for r in results)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"{len(results)} sockets (2 orgs x {sockets}), worker concurrency {concurrency}")
    print(f"  open + authenticate all: {connected:.2f} s")
    print(f"  every reply in:          {total:.2f} s ({len(results) / total:.0f} replies/s)")
    print(f"  send → done per socket:  median {statistics.median(times) * 1000:.0f} ms, ", end="")
    print(f"p99 {p99 * 1000:.0f} ms")
    print("  each reply once, on its own socket: yes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=200, help="sockets per org")
    parser.add_argument("--worker-concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.sockets, args.worker_concurrency, Path(tmp)))
