"""The store contract, run against TenantStore and, where the behaviour is meant to agree,
LangGraph's own InMemoryStore as the reference."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from tenantgraph.errors import InvalidInput
from tenantgraph.scope import Principal, Role
from tenantgraph.services.embeddings import HashingEmbeddings
from tenantgraph.services.memory import Memory
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.stores import item_reads, vectors
from tenantgraph.stores.filters import InvalidFilter
from tenantgraph.stores.item_scope import ns_path

from .store_support import INDEX, admin_execute, create_org, store


@pytest.fixture(params=["tenant", "tenant-hnsw", "memory"])
async def backend(request, resources, org_ids, monkeypatch) -> AsyncIterator[BaseStore]:
    if request.param == "memory":
        yield InMemoryStore(index={**INDEX, "embed": HashingEmbeddings(INDEX["dims"])})
        return
    if request.param == "tenant-hnsw":  # vector searches through the HNSW index, not exact
        monkeypatch.setattr(vectors, "EXACT_MAX", 0)
    await create_org(resources, org_ids[0])
    yield store(resources, org_ids[0], "alice")


@pytest.fixture
async def tenant(resources, org_ids):
    await create_org(resources, org_ids[0])
    return store(resources, org_ids[0], "alice")


async def test_put_get_overwrite_delete(backend):
    assert await backend.aget(("docs",), "a") is None
    await backend.aput(("docs",), "a", {"text": "one"})
    first = await backend.aget(("docs",), "a")
    assert first is not None
    assert (first.namespace, first.key, first.value) == (("docs",), "a", {"text": "one"})
    await backend.aput(("docs",), "a", {"text": "two"})
    second = await backend.aget(("docs",), "a")
    assert second.value == {"text": "two"}
    if not isinstance(backend, InMemoryStore):  # it re-creates the item; Postgres keeps it
        assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at
    await backend.adelete(("docs",), "a")
    assert await backend.aget(("docs",), "a") is None
    await backend.adelete(("docs",), "never-existed")


async def test_namespaces_are_exact_and_prefixes_respect_label_boundaries(backend):
    await backend.aput(("u1",), "k", {"text": "one"})
    await backend.aput(("u10",), "k", {"text": "ten"})
    await backend.aput(("u1", "sub"), "k", {"text": "sub"})
    await backend.aput(("u", "1"), "k", {"text": "split"})
    assert (await backend.aget(("u1",), "k")).value == {"text": "one"}
    assert await backend.aget(("u",), "k") is None
    found = {(i.namespace, i.value["text"]) for i in await backend.asearch(("u1",))}
    assert found == {(("u1",), "one"), (("u1", "sub"), "sub")}
    assert await backend.alist_namespaces(prefix=("u1",)) == [("u1",), ("u1", "sub")]
    assert [i.value["text"] for i in await backend.asearch(("u1", "sub"))] == ["sub"]


async def test_search_limit_and_offset_page_through_everything(backend):
    for n in range(7):
        await backend.aput(("page",), f"k{n}", {"text": f"item {n}", "n": n})
    pages = [await backend.asearch(("page",), limit=3, offset=o) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert {i.key for p in pages for i in p} == {f"k{n}" for n in range(7)}


async def test_search_pages_newest_first_across_own_and_shared_items(resources, org_ids):
    await create_org(resources, org_ids[0])
    admin = store(resources, org_ids[0], "alice", Role.ADMIN)
    for n in range(6):  # own and shared items alternate, each put a newer transaction
        namespace = ("shared", "notes") if n % 2 else ("mine",)
        await admin.aput(namespace, f"k{n}", {"text": "t", "n": n})
    pages = [await admin.asearch((), limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [[i.key for i in p] for p in pages] == [["k5", "k4"], ["k3", "k2"], ["k1", "k0"], []]
    evens = await admin.asearch((), filter={"n": {"$in": [0, 2, 4]}}, limit=2, offset=1)
    assert [i.key for i in evens] == ["k2", "k0"]


async def test_list_namespaces_prefix_suffix_depth_wildcards_and_paging(backend):
    for ns in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"),
               ("a", "c", "f"), ("x", "y")]:  # fmt: skip
        await backend.aput(ns, "k", {"text": "t"})
    assert await backend.alist_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert await backend.alist_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert await backend.alist_namespaces(prefix=("a", "*", "f")) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
    ]
    assert await backend.alist_namespaces(suffix=("d", "*")) == [
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
    ]
    assert await backend.alist_namespaces(max_depth=1) == [("a",), ("x",)]
    everything = await backend.alist_namespaces()
    assert everything == sorted(everything) and len(everything) == 6
    assert await backend.alist_namespaces(limit=2, offset=1) == everything[1:3]
    assert await backend.alist_namespaces(prefix=("a", "b"), suffix=("e",)) == [
        ("a", "b", "d", "e")
    ]


async def test_a_namespace_whose_items_are_all_deleted_is_not_listed(tenant):
    # TenantStore only: InMemoryStore keeps listing a namespace after its last item goes.
    await tenant.aput(("gone",), "k", {"text": "t"})
    await tenant.aput(("kept",), "k", {"text": "t"})
    await tenant.adelete(("gone",), "k")
    assert await tenant.alist_namespaces() == [("kept",)]


@pytest.mark.parametrize(
    "namespace",
    [(), ("",), ("a", ""), ("a.b",), ("a", "b.c"), ("langgraph", "x"), ("nul\x00",)],
)
async def test_invalid_namespaces_are_rejected_on_put(backend, namespace):
    with pytest.raises(InvalidNamespaceError):
        await backend.aput(namespace, "k", {"text": "t"})
    if isinstance(backend, InMemoryStore):
        return  # its abatch trusts the caller; ours is what the HTTP layer calls directly
    with pytest.raises(InvalidNamespaceError):
        await backend.abatch([PutOp(namespace, "k", {"text": "t"})])


async def test_dotted_labels_are_rejected_on_every_read(backend):
    with pytest.raises(InvalidNamespaceError):
        await backend.aget(("a.b",), "k")
    with pytest.raises(InvalidNamespaceError):
        await backend.asearch(("a.b",))
    with pytest.raises(InvalidNamespaceError):
        await backend.alist_namespaces(prefix=("a.b",))


async def test_semantic_search_ranks_by_meaning_and_skips_unindexed_items(backend):
    await backend.aput(("docs",), "fruit", {"text": "red apples and green pears"})
    await backend.aput(("docs",), "space", {"text": "rockets reach the moon"})
    await backend.aput(("docs",), "hidden", {"text": "red apples"}, index=False)
    hits = await backend.asearch(("docs",), query="red apples", limit=2)
    assert hits[0].key == "fruit"
    assert hits[0].score is not None and hits[0].score > (hits[1].score or -1)
    assert "hidden" not in {h.key for h in hits if h.score is not None}


async def test_vector_search_answers_the_same_whichever_index_holds_the_vectors(
    resources, org_ids, monkeypatch
):
    """A small set is searched exactly. A large one reads the HNSW index for the vectors it
    holds and scores the others exactly: before its owner's promotion, in the mix right
    after it, and once the indexer has moved the rest, the answers are the same."""
    org = org_ids[0]
    await create_org(resources, org)
    alice, bob = (store(resources, org, user) for user in ("alice", "bob"))
    words = "red green apple pear moon rocket river stone song bread".split()
    texts = {
        s: [" ".join(words[(n * 7 + i * (3 + offset)) % 10] for i in range(4)) for n in range(150)]
        for s, offset in ((alice, 0), (bob, 1))
    }

    async def write(numbers: range) -> None:
        for s, ts in texts.items():
            await s.abatch([PutOp(("docs",), f"d{n}", {"text": ts[n]}) for n in numbers])

    async def indexed() -> dict[str, list[int]]:
        rows = await admin_execute(
            resources,
            "SELECT owner_id, count(*) FILTER (WHERE ann), count(*) FILTER (WHERE NOT ann)"
            " FROM tenantgraph.store_vectors WHERE org_id = %s GROUP BY owner_id",
            (org,),
        )
        return {owner: [yes, no] for owner, yes, no in rows}

    queries = ["red apple", "moon rocket song", "bread"]

    async def answers() -> list[list[tuple[str, float]]]:
        found = []
        for query in queries:
            for limit in (10, 200):
                hits = await alice.asearch(("docs",), query=query, limit=limit)
                found.append([(h.key if limit == 200 else "", round(h.score, 5)) for h in hits])
        return found

    await write(range(75))  # 75 vectors each: below the bound, written unindexed
    assert await indexed() == {"alice": [0, 75], "bob": [0, 75]}
    with monkeypatch.context() as bound:
        bound.setattr(vectors, "EXACT_MAX", 10)  # the next writes take both past it
        await write(range(75, 150))
        assert await indexed() == {"alice": [75, 75], "bob": [75, 75]}
    exact = await answers()
    assert [len(a) for a in exact] == [10, 150] * len(queries)
    monkeypatch.setattr(vectors, "EXACT_MAX", 0)  # every search above the bound from now on
    assert await answers() == exact  # half from the HNSW index, half scored exactly
    assert await StoreSweeper(resources.db).index_pending_vectors() >= 150
    assert await indexed() == {"alice": [150, 0], "bob": [150, 0]}
    assert await answers() == exact  # all from the HNSW index


async def test_batch_runs_all_four_ops_and_reads_see_the_state_before_its_writes(backend):
    await backend.aput(("b",), "old", {"text": "old"})
    results = await backend.abatch(
        [
            PutOp(("b",), "new", {"text": "new"}),
            GetOp(("b",), "old"),
            GetOp(("b",), "new"),
            SearchOp(("b",)),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("b",)),)),
            PutOp(("b",), "old", None),
        ]
    )
    assert results[0] is None and results[5] is None
    assert results[1].value == {"text": "old"} and results[2] is None
    assert [i.key for i in results[3]] == ["old"]
    assert results[4] == [("b",)]
    assert await backend.aget(("b",), "old") is None
    assert (await backend.aget(("b",), "new")).value == {"text": "new"}


# --- Filters: one table, every backend path --------------------------------------------

ITEMS = {
    "a": {"text": "red apple", "n": 1, "s": "b", "tags": ["x"], "flag": True,
          "meta": {"level": 2, "name": "alpha"}},
    "b": {"text": "green pear", "n": 2.5, "s": "a", "meta": {"level": 5}, "opt": None},
    "c": {"text": "red cherry", "n": "3", "s": "c", "meta": {"level": "7"}},
    "d": {"text": "blue berry", "n": 10, "meta": {}},
    "e": {"text": "apple pie", "s": "ab", "tags": ["x", "y"]},
}  # fmt: skip

# (filter, matching keys). Filters both TenantStore and InMemoryStore evaluate alike:
SHARED_FILTERS = [
    ({"n": 1}, "a"),
    ({"n": 2.5}, "b"),
    ({"n": 1.0}, "a"),
    ({"n": {"$eq": 10}}, "d"),
    ({"n": {"$ne": 1}}, "bcde"),
    ({"flag": True}, "a"),
    ({"tags": ["x"]}, "a"),
    ({"meta": {"level": 2}}, "a"),
    ({"text": "red apple", "n": 1}, "a"),
]

# TenantStore only: InMemoryStore compares ranges with float() and has no $in, $nin,
# $exists, $and, $or or dotted paths.
TENANT_FILTERS = [
    ({"n": {"$gt": 1}}, "bd"),
    ({"n": {"$gte": 1, "$lt": 10}}, "ab"),
    ({"n": {"$lte": 2.5}}, "ab"),
    ({"n": {"$gt": "2"}}, "c"),
    ({"s": {"$gt": "a"}}, "ace"),
    ({"s": {"$lte": "ab"}}, "be"),
    ({"meta.level": {"$gt": 2}}, "b"),
    ({"meta.level": 2}, "a"),
    ({"n": {"$in": [1, 10, "3"]}}, "acd"),
    ({"n": {"$nin": [1, 10]}}, "bce"),
    ({"opt": {"$exists": True}}, "b"),
    ({"meta.name": {"$exists": False}}, "bcde"),
    ({"$or": [{"n": 1}, {"s": "a"}]}, "ab"),
    ({"$and": [{"meta.level": {"$gte": 2}}, {"meta.level": {"$lte": 5}}]}, "ab"),
    ({"$or": [{"tags": {"$exists": True}}, {"n": {"$gt": 5}}], "s": {"$ne": "ab"}}, "ad"),
]


async def _assert_filter(backend: BaseStore, filter: dict, expected: str) -> None:
    """Both search paths, plain and semantic, return exactly the `expected` keys."""
    await backend.abatch([PutOp(("f",), k, v) for k, v in ITEMS.items()])
    plain = await backend.asearch(("f",), filter=filter, limit=50)
    assert {i.key for i in plain} == set(expected)
    semantic = {
        i.key for i in await backend.asearch(("f",), query="red apple", filter=filter, limit=50)
    }
    if vectors.EXACT_MAX == 0:
        # Forced through HNSW on five vectors among every other test's: an approximate
        # index may not reach all of them (the product scores a set this small exactly),
        # but nothing the filter refuses may come back.
        assert semantic <= set(expected)
    else:
        assert semantic == set(expected)


@pytest.mark.parametrize(("filter", "expected"), SHARED_FILTERS)
async def test_filters_both_stores_agree_on(backend, filter, expected):
    await _assert_filter(backend, filter, expected)


@pytest.mark.parametrize(("filter", "expected"), TENANT_FILTERS)
async def test_filters_only_tenant_store_has(tenant, filter, expected):
    await _assert_filter(tenant, filter, expected)


@pytest.mark.parametrize(
    "bad",
    [
        {"$foo": 1},
        {"n": {"$gt": [1]}},
        {"n": {"$gt": True}},
        {"n": {"$in": 1}},
        {"n": {"$gt": 1, "x": 2}},
        {"n": {"$exists": 1}},
        {"$or": []},
        {"a..b": 1},
    ],
)
async def test_invalid_filters_raise(tenant, bad):
    with pytest.raises(InvalidFilter):
        await tenant.asearch(("f",), filter=bad)


async def test_a_put_reindexes_only_the_fields_whose_text_changed(resources, org_ids, tenant):
    async def vectors() -> dict[str, str]:
        rows = await admin_execute(
            resources,
            "SELECT field, ctid::text FROM tenantgraph.store_vectors"
            " WHERE org_id = %s AND key = 'k'",
            (org_ids[0],),
        )
        return dict(rows)

    await tenant.aput(("r",), "k", {"text": "red apple", "n": 1})
    first = await vectors()
    await tenant.aput(("r",), "k", {"text": "red apple", "n": 2})
    assert await vectors() == first  # same text: the row and its index entry stay
    await tenant.aput(("r",), "k", {"text": "green moon"})
    assert (moved := await vectors()).keys() == {"text"} and moved != first
    assert (await tenant.asearch(("r",), query="green moon"))[0].score > 0.999
    await tenant.aput(("r",), "k", {"text": "green moon", "n": 3}, index=False)
    assert await vectors() == {}


# --- TenantStore only: TTL, sync API ---------------------------------------------------


async def _age(resources, org: str, key: str, interval: str) -> None:
    await admin_execute(
        resources,
        "UPDATE tenantgraph.store_items SET expires_at = now() + %s::interval"
        " WHERE org_id = %s AND key = %s",
        (interval, org, key),
    )


async def _expires_in_minutes(resources, org: str, key: str) -> float:
    rows = await admin_execute(
        resources,
        "SELECT extract(epoch FROM expires_at - now()) / 60 FROM tenantgraph.store_items"
        " WHERE org_id = %s AND key = %s",
        (org, key),
    )
    return float(rows[0][0])


async def test_expired_items_are_never_returned_before_the_sweep(resources, org_ids, tenant):
    await tenant.aput(("t",), "old", {"text": "red"}, ttl=5)
    await tenant.aput(("t", "deep"), "old2", {"text": "red"}, ttl=5)
    await tenant.aput(("t",), "live", {"text": "red"})
    await _age(resources, org_ids[0], "old", "-1 second")
    await _age(resources, org_ids[0], "old2", "-1 second")
    assert await tenant.aget(("t",), "old") is None
    assert {i.key for i in await tenant.asearch(("t",))} == {"live"}
    assert {i.key for i in await tenant.asearch(("t",), query="red")} == {"live"}
    assert await tenant.alist_namespaces() == [("t",)]
    # A put over the expired row starts a new item.
    await tenant.aput(("t",), "old", {"text": "again"})
    item = await tenant.aget(("t",), "old")
    assert item.value == {"text": "again"} and item.created_at == item.updated_at


async def test_reads_refresh_ttl_unless_told_not_to(resources, org_ids, tenant):
    await tenant.aput(("t",), "k", {"text": "x"}, ttl=30)
    await _age(resources, org_ids[0], "k", "1 minute")
    await tenant.aget(("t",), "k", refresh_ttl=False)
    await tenant.asearch(("t",), refresh_ttl=False)
    assert await _expires_in_minutes(resources, org_ids[0], "k") < 2
    await tenant.aget(("t",), "k")
    assert 29 < await _expires_in_minutes(resources, org_ids[0], "k") <= 30
    await _age(resources, org_ids[0], "k", "1 minute")
    await tenant.asearch(("t",), query="x")
    assert 29 < await _expires_in_minutes(resources, org_ids[0], "k") <= 30


async def test_default_ttl_and_refresh_on_read_config(resources, org_ids):
    await create_org(resources, org_ids[0])
    s = store(
        resources, org_ids[0], "alice", ttl_config={"default_ttl": 10, "refresh_on_read": False}
    )
    await s.aput(("t",), "k", {"text": "x"})
    assert 9 < await _expires_in_minutes(resources, org_ids[0], "k") <= 10
    await _age(resources, org_ids[0], "k", "1 minute")
    await s.aget(("t",), "k")
    assert await _expires_in_minutes(resources, org_ids[0], "k") < 2
    await s.aput(("t",), "forever", {"text": "x"}, ttl=None)
    assert await admin_execute(
        resources,
        "SELECT expires_at FROM tenantgraph.store_items WHERE org_id = %s AND key = 'forever'",
        (org_ids[0],),
    ) == [(None,)]


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), "5"])
async def test_bad_ttls_are_rejected(tenant, ttl):
    with pytest.raises(ValueError):
        await tenant.abatch([PutOp(("t",), "k", {"text": "x"}, ttl=ttl)])


async def test_sync_api_from_a_worker_thread(tenant):
    await asyncio.to_thread(tenant.put, ("sync",), "k", {"text": "hi"})
    item = await asyncio.to_thread(tenant.get, ("sync",), "k")
    assert item.value == {"text": "hi"}
    assert [i.key for i in await asyncio.to_thread(tenant.search, ("sync",))] == ["k"]
    assert await asyncio.to_thread(tenant.list_namespaces) == [("sync",)]
    await asyncio.to_thread(tenant.delete, ("sync",), "k")
    assert await tenant.aget(("sync",), "k") is None
    with pytest.raises(asyncio.InvalidStateError):
        tenant.get(("sync",), "k")


async def test_concurrent_puts_share_commits_and_all_land(tenant):
    await asyncio.gather(*(tenant.aput(("many",), f"k{n}", {"text": str(n)}) for n in range(40)))
    assert len(await tenant.asearch(("many",), limit=100)) == 40


async def test_reads_run_with_the_generic_plan_and_searches_without_sorts(tenant, monkeypatch):
    """The settings the store's reads rely on (stores/item_reads.py) are in force in their
    transaction, whether set with the org or by a statement before the first search."""
    seen: list = []
    run_reads = item_reads.run_reads

    async def run_and_look(conn, reads):
        cursors = await run_reads(conn, reads)
        seen.append(
            await conn.execute(
                "SELECT current_setting('plan_cache_mode') AS plans,"
                " current_setting('enable_sort') AS sort,"
                " coalesce(current_setting('hnsw.iterative_scan', true), 'off') AS hnsw"
            )
        )
        return cursors

    monkeypatch.setattr(item_reads, "run_reads", run_and_look)
    await tenant.aput(("plans",), "k", {"text": "t"})
    await tenant.aget(("plans",), "k")
    await tenant.asearch(("plans",))
    await tenant.abatch([GetOp(("plans",), "k"), SearchOp(("plans",))])
    settings = [await cursor.fetchone() for cursor in seen]
    generic = "force_generic_plan"
    assert settings == [
        {"plans": generic, "sort": "on", "hnsw": "off"},
        {"plans": generic, "sort": "off", "hnsw": "relaxed_order"},
        {"plans": generic, "sort": "off", "hnsw": "relaxed_order"},
    ]


def test_ns_path_matches_the_sql_encoding():
    assert ns_path(("a", "b")) == "a.b."
    assert ns_path(("u1",)) != ns_path(("u10",))[: len("u1.")]


@pytest.mark.parametrize("namespace", [(), ("a", ""), ("a.b",), ("langgraph", "x")])
async def test_the_memory_service_raises_invalid_namespaces_as_invalid_input(
    resources, org_ids, namespace
):
    """The routes call `Memory`: there LangGraph's error joins the family, message kept.
    A graph calling the store directly still sees LangGraph's own error."""
    await create_org(resources, org_ids[0])
    memory = Memory(resources.db)
    alice = Principal(org_ids[0], "alice")
    with pytest.raises(InvalidNamespaceError) as direct:
        await memory.store(alice).aput(namespace, "k", {"text": "t"})
    assert not isinstance(direct.value, InvalidInput)
    with pytest.raises(InvalidInput) as raised:
        await memory.put_item(alice, namespace, "k", {"text": "t"})
    assert str(raised.value) == str(direct.value)
    with pytest.raises(InvalidInput):
        await memory.get_item(alice, ("a.b",), "k")
    with pytest.raises(InvalidInput):
        await memory.delete_item(alice, ("a.b",), "k")
    with pytest.raises(InvalidInput):
        await memory.search_items(alice, ("a.b",))
    with pytest.raises(InvalidInput):
        await memory.list_namespaces(alice, prefix=("a.b",))
