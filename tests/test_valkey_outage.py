"""A Valkey outage: runs go on and stay readable, joins answer from Postgres, and the API
degrades to 503 only where it needs Valkey. Against a Valkey of the test's own (killed and
restarted); the long outage under a loaded server is tests_faults/test_valkey_outage.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tenantgraph.ephemeral.client import connect
from tenantgraph.runtime import events
from tenantgraph.runtime.graphs import GraphRegistry
from tenantgraph.runtime.publisher import RunPublisher, append_script
from tenantgraph.runtime.stream_hub import StreamHub
from tenantgraph.runtime.worker import Worker
from tenantgraph.scope import Principal
from tenantgraph.services.runs import RunCreate, Runs

from .api_fixtures import caller, start_api_server
from .own_valkey import OwnValkey
from .run_helpers import slow, until
from .runtime_fixtures import ROOT, make_org, make_thread


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[OwnValkey]:
    own = OwnValkey(tmp_path / "own")
    own.start()
    yield own
    own.stop()


async def test_a_run_outlives_a_valkey_outage_and_its_stream_comes_back(resources, org_ids, valkey):
    redis = connect(valkey.url)
    registry = GraphRegistry({"slow": "./examples/slow.py:graph"}, ROOT)
    # A lease shorter than the outage: on the old code the run never ended.
    worker = Worker(
        resources.db, redis, registry, lease_seconds=2.0, heartbeat_seconds=0.1, poll_seconds=0.05
    )
    streams = StreamHub(connect(valkey.url), readers=1)
    runs = Runs(resources.db, redis, streams)
    alice, _, _ = await make_org(resources.db, org_ids[0])
    thread_id = await make_thread(resources.db, alice)
    await worker.start()
    try:
        run = await runs.create(
            alice,
            thread_id,
            None,
            RunCreate(input={}, config=slow(steps=12, delay=0.25)),
            default_graph="slow",
        )
        run_id = run["run_id"]
        key = events.run_events_key(alice, run_id)

        async def under_way() -> bool:  # a `values` event past the opening entries
            return await redis.xlen(key) > 2

        await until(under_way)
        valkey.kill()

        async def ended() -> dict | None:
            found = await runs.get(alice, run_id)
            return found if found["status"] not in ("pending", "running") else None

        assert (await until(ended))["status"] == "success"
        # The join answers from Postgres while Valkey is still out.
        output = await asyncio.wait_for(runs.join(alice, run_id), 60)
        assert output["started"] == [f"{run_id}:1"]
        async with resources.db.tenant(alice) as conn:  # every step ran in attempt 1
            cur = await conn.execute(
                "SELECT DISTINCT metadata->>'run_attempt' AS attempt FROM checkpoints"
                " WHERE thread_id = %s",
                (thread_id,),
            )
            assert [row["attempt"] for row in await cur.fetchall()] == ["1"]
        assert output["ticks"] == 12 and output["finished"] == [str(run_id)]

        valkey.restart()  # empty: the run's stream went with the old server
        readable = await until(lambda: streams.readable(alice, run_id))
        assert readable
        received = [e async for e in streams.read(alice, run_id)]
        assert received[-1].event == "values" and received[-1].json() == output
        assert await runs.join(alice, run_id) == output
    finally:
        await worker.stop()
        await streams.aclose()
        await redis.aclose()


async def test_join_answers_from_postgres_when_the_stream_is_gone(resources, tenants):
    alice = tenants.a_member
    thread = await alice.sdk.threads.create()
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
    waited = await alice.http.post(f"/threads/{thread['thread_id']}/runs/wait", json=body)
    assert waited.status_code == 200 and waited.json()["messages"]
    run_id = waited.headers["content-location"].rsplit("/", 1)[1]
    # The stream expired, or went with a Valkey restart.
    await resources.redis.delete(events.run_events_key(Principal(alice.org, alice.user), run_id))

    joined = await alice.http.get(f"/threads/{thread['thread_id']}/runs/{run_id}/join")
    assert joined.status_code == 200 and joined.json() == waited.json()
    assert (await alice.http.get(f"/runs/{run_id}/join")).json() == waited.json()
    stranger = await tenants.b_member.http.get(f"/runs/{run_id}/join")
    assert stranger.status_code == 404
    # The join stream ends with the recorded output, not an empty body.
    streamed = [p async for p in alice.sdk.runs.join_stream(thread["thread_id"], run_id)]
    assert [(p.event, p.data) for p in streamed] == [("values", waited.json())]


async def test_valkey_down_is_503_where_needed_and_no_one_else_notices(
    api_env, data_dir, valkey, org_ids
):
    server = start_api_server(
        data_dir / f"outage-{uuid.uuid4().hex[:6]}", REDIS_URL=valkey.url, **api_env
    )
    alice = caller(server.url, org_ids[0], "alice", "member")
    try:
        async with httpx.AsyncClient(base_url=server.url) as anyone:
            assert (await anyone.get("/ready")).json() == {"postgres": "ok", "valkey": "ok"}
            thread = (await alice.http.post("/threads", json={})).json()
            item = {"namespace": ["notes"], "key": "k", "value": {"v": 1}}
            assert (await alice.http.put("/store/items", json=item)).status_code == 204
            other = (await alice.http.post("/threads", json={})).json()["thread_id"]
            ran = await alice.http.post(
                f"/threads/{other}/runs/wait", json={"assistant_id": "agent", "input": {}}
            )
            joined = f"/threads/{other}/runs/{ran.headers['content-location'].rsplit('/', 1)[1]}"

            valkey.kill()
            ready = await anyone.get("/ready")
            assert ready.status_code == 503 and ready.headers["retry-after"]
            assert ready.json() == {"postgres": "ok", "valkey": "unavailable"}
            # Postgres-only routes are served (the rate limits fall back to this process).
            got = await alice.http.get("/store/items", params={"namespace": "notes", "key": "k"})
            assert got.status_code == 200 and got.json()["value"] == {"v": 1}
            assert (await alice.http.get(f"/threads/{thread['thread_id']}")).status_code == 200
            assert (await alice.http.post("/threads", json={})).status_code == 200
            # A run needs its stream: 503 with Retry-After, and nothing half-created.
            path = f"/threads/{thread['thread_id']}/runs"
            for route in (path, f"{path}/wait", f"{path}/stream"):
                refused = await alice.http.post(route, json={"assistant_id": "agent", "input": {}})
                assert refused.status_code == 503, (route, refused.text)
                assert int(refused.headers["retry-after"]) >= 1
            # Idempotency records are in Postgres: a keyed request is served and replayed.
            key = {"Idempotency-Key": uuid.uuid4().hex}
            keyed = await alice.http.post("/threads", json={}, headers=key)
            again = await alice.http.post("/threads", json={}, headers=key)
            assert keyed.status_code == again.status_code == 200
            assert again.json()["thread_id"] == keyed.json()["thread_id"]
            assert (await alice.http.get(path)).json() == []
            # A 503 is not kept for its Idempotency-Key: the retry after the outage runs.
            retried = {"Idempotency-Key": uuid.uuid4().hex}
            run_body = {"assistant_id": "agent", "input": {}}
            first = await alice.http.post(f"{path}/wait", json=run_body, headers=retried)
            assert first.status_code == 503
            # A join stream needs Valkey: 503 before the stream starts, not an empty 200.
            refused = await alice.http.get(f"{joined}/stream")
            assert refused.status_code == 503 and refused.headers["retry-after"]

            valkey.restart()

            async def served() -> bool:
                return (await anyone.get("/ready")).status_code == 200

            await until(served)
            again = await alice.http.post(f"{path}/wait", json=run_body, headers=retried)
            assert again.status_code == 200 and "idempotent-replayed" not in again.headers
            assert len((await alice.http.get(path)).json()) == 1
    finally:
        await alice.http.aclose()
        server.terminate()


async def test_a_full_buffer_drops_the_oldest_events_but_keeps_the_outcome(org_ids, valkey):
    redis = connect(valkey.url)
    alice, bob = Principal(org_ids[0], "alice"), Principal(org_ids[0], "bob")
    run_id = uuid.uuid4()

    async def readers() -> list[str]:  # from Postgres, for a stream opened again
        return ["alice", "bob"]

    background: set[asyncio.Task[None]] = set()
    publisher = RunPublisher(
        alice,
        run_id,
        readers,
        append_script(redis),
        lambda _: None,
        ttl=60,
        max_bytes=4000,
        background=background,
    )
    try:
        await publisher.publish(b"metadata", events.metadata_event(run_id, 1))
        valkey.kill()
        for i in range(200):
            await publisher.publish(b"custom", events.dumps({"step": i, "pad": "x" * 50}))
            await publisher.publish(b"values", events.dumps({"i": i}))
        await publisher.publish(*events.end_entry(run_id, "success"))
        assert publisher.dropped > 0 and background

        valkey.restart()

        async def flushed() -> bool:
            return publisher.pending == 0

        await until(flushed)
        entries = [
            (f[b"event"], f[b"data"])
            for _, f in await redis.xrange(events.run_events_key(alice, run_id))
        ]
        names = [name for name, _ in entries]
        assert names[0] == b"__created__" and names[-1] == b"__end__"
        assert entries[-2] == (b"values", events.dumps({"i": 199}))  # the outcome is kept
        assert names.count(b"custom") < 200 and names.count(b"values") < 200
        assert await events.may_read(redis, events.run_events_key(bob, run_id), bob)
    finally:
        await redis.aclose()
