"""Quotas, export, erasure (API and CLI) and the TTL sweeper."""

from __future__ import annotations

import asyncio
import json

import pytest
from langgraph.store.base import PutOp
from typer.testing import CliRunner

from tenantgraph.cli.memory import memory_app
from tenantgraph.errors import QuotaExceeded
from tenantgraph.scope import Principal, Role
from tenantgraph.services.memory import Memory
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.services.tenant_store import StoreConfig, StoreForbidden, StoreLimits
from tenantgraph.stores import vectors

from .servers import SECRET_KEY
from .store_support import admin_execute, create_org, store


@pytest.fixture
def memory(resources) -> Memory:
    return Memory(resources.db)


@pytest.fixture
async def org(resources, org_ids) -> str:
    await create_org(resources, org_ids[0])
    await create_org(resources, org_ids[1])
    return org_ids[0]


async def test_item_quota_rejects_new_items_but_allows_overwrites_and_deletes(
    resources, memory, org
):
    limits = StoreLimits(max_items=3)
    alice = store(resources, org, "alice", limits=limits)
    bob = store(resources, org, "bob", limits=limits)
    await alice.aput(("q",), "1", {"text": "a"})
    await alice.aput(("q",), "2", {"text": "a"})
    await bob.aput(("q",), "1", {"text": "b"})
    with pytest.raises(QuotaExceeded):
        await bob.aput(("q",), "2", {"text": "b"})
    assert await bob.aget(("q",), "2") is None
    await alice.aput(("q",), "1", {"text": "overwrite is fine"})
    await alice.adelete(("q",), "2")
    await bob.aput(("q",), "2", {"text": "room again"})
    assert (await memory.usage(Principal(org, "x"))).items == 3


async def test_byte_quota_counts_value_sizes(resources, memory, org):
    alice = store(resources, org, "alice", limits=StoreLimits(max_bytes=200))
    await alice.aput(("q",), "small", {"text": "x" * 50})
    with pytest.raises(QuotaExceeded):
        await alice.aput(("q",), "big", {"text": "x" * 200})
    await alice.aput(("q",), "small", {"text": "x" * 100})
    usage = await memory.usage(Principal(org, "x"))
    assert usage.items == 1 and 100 < usage.bytes < 200


async def test_quota_error_in_a_group_commit_fails_only_the_offending_write(resources, org):
    limits = StoreLimits(max_bytes=1000)
    alice = store(resources, org, "alice", limits=limits)
    small = [alice.aput(("g",), f"k{n}", {"text": "x"}) for n in range(10)]
    results = await asyncio.gather(
        *small, alice.aput(("g",), "huge", {"text": "x" * 2000}), return_exceptions=True
    )
    assert [r for r in results[:-1] if r is not None] == []
    assert isinstance(results[-1], QuotaExceeded)
    assert len(await alice.asearch(("g",), limit=20)) == 10


async def test_a_full_org_refuses_a_write_while_another_org_still_takes_one(
    resources, org, org_ids
):
    """The quota counts one org's items: org A at its limit does not fill org B."""
    limits = StoreLimits(max_items=1)
    a = store(resources, org_ids[0], "alice", limits=limits)
    b = store(resources, org_ids[1], "alice", limits=limits)
    await a.aput(("q",), "k", {"text": "a"})
    with pytest.raises(QuotaExceeded):
        await a.aput(("q",), "k2", {"text": "a"})
    await b.aput(("q",), "k", {"text": "b"})
    assert (await b.aget(("q",), "k")).value == {"text": "b"}
    with pytest.raises(QuotaExceeded):
        await b.aput(("q",), "k2", {"text": "b"})
    assert [i.key for i in await a.asearch(("q",))] == ["k"]


async def test_export_returns_one_users_live_items_only(resources, memory, org, org_ids):
    admin = Principal(org, "alice", Role.ADMIN)
    bob = store(resources, org, "bob")
    await bob.abatch([])
    for n in range(5):
        await bob.aput(("notes", str(n)), "k", {"text": f"note {n}"})
    await bob.aput(("notes",), "expired", {"text": "old"}, ttl=1)
    await admin_execute(
        resources,
        "UPDATE tenantgraph.store_items SET expires_at = now() - interval '1 s'"
        " WHERE org_id = %s AND key = 'expired'",
        (org,),
    )
    await store(resources, org, "carol").aput(("notes",), "k", {"text": "carol"})
    await store(resources, org_ids[1], "bob").aput(("notes",), "k", {"text": "other org"})
    items = [i async for i in memory.export_user_items(admin, "bob", page_size=2)]
    assert [i["value"]["text"] for i in items] == [f"note {n}" for n in range(5)]
    own = [i async for i in memory.export_user_items(Principal(org, "bob"), "bob")]
    assert own == items
    with pytest.raises(StoreForbidden):
        [i async for i in memory.export_user_items(Principal(org, "carol"), "bob")]


async def test_delete_user_and_delete_org(resources, memory, org, org_ids):
    for user in ("bob", "carol"):
        await store(resources, org, user).aput(("notes",), "k", {"text": user})
    await store(resources, org, "alice", Role.ADMIN).aput(("shared",), "k", {"text": "s"})
    other = store(resources, org_ids[1], "bob")
    await other.aput(("notes",), "k", {"text": "other org"})
    with pytest.raises(StoreForbidden):
        await memory.delete_user_items(Principal(org, "carol"), "bob")
    admin = Principal(org, "alice", Role.ADMIN)
    assert await memory.delete_user_items(admin, "bob") == 1
    assert await store(resources, org, "bob").aget(("notes",), "k") is None
    assert await store(resources, org, "bob").alist_namespaces() == [("shared",)]
    assert (await store(resources, org, "carol").aget(("notes",), "k")).value == {"text": "carol"}
    with pytest.raises(StoreForbidden):
        await memory.delete_org_items(Principal(org, "carol"))
    assert await memory.delete_org_items(admin) == 2
    assert await store(resources, org, "carol").asearch(()) == []
    assert (await memory.usage(admin)).items == 0
    assert (await other.aget(("notes",), "k")).value == {"text": "other org"}
    assert await _vector_owner_rows(resources, org) == []  # the counts name users too
    assert await _vector_owner_rows(resources, org_ids[1]) == [("bob", "counted")]


async def _vector_owner_rows(resources, org: str) -> list[tuple[str, str]]:
    return await admin_execute(
        resources,
        "SELECT owner_id, 'counted' FROM tenantgraph.store_vector_counts WHERE org_id = %(org)s"
        " UNION ALL SELECT owner_id, 'promoted' FROM tenantgraph.store_ann_owners"
        " WHERE org_id = %(org)s ORDER BY 1, 2",
        {"org": org},
    )


async def test_delete_user_forgets_the_users_vector_counts_and_promotion(
    resources, memory, org, monkeypatch
):
    monkeypatch.setattr(vectors, "EXACT_MAX", 1)
    for user in ("bob", "carol"):
        await store(resources, org, user).abatch(
            [PutOp(("notes",), f"k{n}", {"text": f"{user} {n}"}) for n in range(2)]
        )
    await store(resources, org, "dave").aput(("notes",), "k", {"text": "dave"})
    assert await _vector_owner_rows(resources, org) == [
        ("bob", "promoted"),
        ("carol", "promoted"),
        ("dave", "counted"),
    ]
    admin = Principal(org, "alice", Role.ADMIN)
    await memory.delete_user_items(admin, "bob")
    await memory.delete_user_items(admin, "dave")
    assert await _vector_owner_rows(resources, org) == [("carol", "promoted")]


async def test_sweeper_moves_vectors_of_promoted_owners_into_the_hnsw_index(
    resources, org, monkeypatch
):
    """Vectors written before their owner's promotion are moved by the sweeper on its own;
    an owner with nothing left to move stops being visited a minute after promotion."""
    alice = store(resources, org, "alice")
    await alice.abatch([PutOp(("v",), f"k{n}", {"text": f"text {n}"}) for n in range(5)])
    monkeypatch.setattr(vectors, "EXACT_MAX", 5)
    await alice.aput(("v",), "k5", {"text": "text 5"})  # the 6th vector: promoted

    async def state() -> list[tuple]:
        return await admin_execute(
            resources,
            "SELECT a.pending, count(*) FILTER (WHERE v.ann), count(*) FILTER (WHERE NOT v.ann)"
            " FROM tenantgraph.store_ann_owners a JOIN tenantgraph.store_vectors v"
            " USING (org_id, owner_id) WHERE a.org_id = %s GROUP BY a.pending",
            (org,),
        )

    assert await state() == [(True, 1, 5)]
    sweeper = StoreSweeper(resources.db, interval=3600, index_interval=0.05)
    sweeper.start()
    try:
        for _ in range(200):
            if await state() == [(True, 6, 0)]:
                break
            await asyncio.sleep(0.05)
        assert await state() == [(True, 6, 0)]
        await admin_execute(
            resources,
            "UPDATE tenantgraph.store_ann_owners SET promoted_at = now() - interval '2 min'"
            " WHERE org_id = %s",
            (org,),
        )
        for _ in range(200):
            if await state() == [(False, 6, 0)]:
                break
            await asyncio.sleep(0.05)
        assert await state() == [(False, 6, 0)]
    finally:
        await sweeper.stop()
    await alice.aput(("v",), "k6", {"text": "text 6"})  # promoted: written indexed
    assert await state() == [(False, 7, 0)]
    hits = await alice.asearch(("v",), query="text 6", limit=7)
    assert ("k6", 1.0) in {(h.key, round(h.score, 6)) for h in hits}


async def test_sweeper_deletes_expired_items_of_every_org_and_their_namespaces(
    resources, memory, org, org_ids
):
    stores = [store(resources, o, "alice") for o in org_ids]
    for s in stores:
        await s.aput(("ttl",), "k", {"text": "bye"}, ttl=1)
        await s.aput(("keep",), "k", {"text": "stay"})
    await admin_execute(
        resources,
        "UPDATE tenantgraph.store_items SET expires_at = now() - interval '1 s'"
        " WHERE org_id = ANY(%s) AND key = 'k' AND namespace = '{ttl}'",
        (list(org_ids),),
    )

    async def left() -> tuple[int, list]:
        rows = await admin_execute(
            resources,
            "SELECT count(*) FROM tenantgraph.store_items WHERE org_id = ANY(%s)",
            (list(org_ids),),
        )
        names = await admin_execute(
            resources,
            "SELECT org_id, namespace FROM tenantgraph.store_namespaces WHERE org_id = ANY(%s)",
            (list(org_ids),),
        )
        return rows[0][0], sorted(names)

    swept = (2, sorted((o, ["keep"]) for o in org_ids))
    sweeper = StoreSweeper(resources.db, interval=3600)
    sweeper.start()
    for _ in range(200):  # items go first, then their emptied namespaces
        if await left() == swept:
            break
        await asyncio.sleep(0.05)
    await sweeper.stop()
    assert await left() == swept
    for o in org_ids:
        assert (await memory.usage(Principal(o, "x"))).items == 1
    assert await StoreSweeper(resources.db).sweep_expired() == 0


async def test_cli_exports_and_deletes(resources, org, monkeypatch, tmp_path):
    # Point the CLI at the session's servers by URL, so it neither starts nor stops them.
    monkeypatch.setenv("DATABASE_URL", resources.admin_conninfo)
    monkeypatch.setenv("TENANTGRAPH_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv(
        "REDIS_URL", f"unix://{resources.redis.connection_pool.connection_kwargs['path']}"
    )
    await store(resources, org, "bob").aput(("notes",), "k", {"text": "cli"})
    runner = CliRunner()
    out = tmp_path / "bob.jsonl"
    result = await asyncio.to_thread(
        runner.invoke, memory_app, ["export", "--org", org, "--user", "bob", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["value"] for line in out.read_text().splitlines()] == [{"text": "cli"}]
    result = await asyncio.to_thread(
        runner.invoke, memory_app, ["delete-user", "--org", org, "--user", "bob", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert await store(resources, org, "bob").aget(("notes",), "k") is None
    await store(resources, org, "carol").aput(("notes",), "k", {"text": "cli"})
    result = await asyncio.to_thread(
        runner.invoke, memory_app, ["delete-org", "--org", org], input="n\n"
    )
    assert result.exit_code != 0
    assert await store(resources, org, "carol").aget(("notes",), "k") is not None
    result = await asyncio.to_thread(
        runner.invoke, memory_app, ["delete-org", "--org", org], input="y\n"
    )
    assert result.exit_code == 0, result.output
    assert await store(resources, org, "carol").aget(("notes",), "k") is None


async def test_store_config_block_sets_index_ttl_and_limits(resources, org):
    config = StoreConfig.from_mapping(
        {
            "index": {"dims": 32, "embed": "hashing", "fields": ["text"]},
            "ttl": {"default_ttl": 5, "refresh_on_read": False},
            "limits": {"max_items": 1},
        }
    )
    s = config.store(resources.db, Principal(org, "alice"))
    await s.aput(("c",), "k", {"text": "red apples"})
    assert [i.key for i in await s.asearch(("c",), query="red apples")] == ["k"]
    rows = await admin_execute(
        resources,
        "SELECT ttl_minutes FROM tenantgraph.store_items WHERE org_id = %s AND key = 'k'",
        (org,),
    )
    assert rows == [(5.0,)]
    with pytest.raises(QuotaExceeded):
        await s.aput(("c",), "k2", {"text": "one too many"})
    bare = StoreConfig.from_mapping(None).store(resources.db, Principal(org, "a"))
    assert (bare.index, bare.ttl_config, bare.limits) == (None, None, StoreLimits())


async def test_ann_index_config_sets_the_hnsw_build_parameters(resources, org):
    ann = {"kind": "hnsw", "m": 8, "ef_construction": 24}
    index = {"dims": 24, "embed": "hashing", "fields": ["text"], "ann_index_config": ann}
    s = StoreConfig.from_mapping({"index": index}).store(resources.db, Principal(org, "alice"))
    await s.aput(("c",), "k", {"text": "red apples"})
    rows = await admin_execute(
        resources,
        "SELECT reloptions FROM pg_class WHERE relname = 'store_vectors_hnsw_24'",
    )
    assert rows == [(["m=8", "ef_construction=24"],)]
    for bad in ({"kind": "ivfflat"}, {"vector_type": "halfvec"}, {"m": 8, "ef_construction": 8}):
        with pytest.raises(ValueError, match="ann_index_config"):
            StoreConfig.from_mapping({"index": {**index, "ann_index_config": bad}})
