"""langgraph.json's `checkpointer.ttl`: the sweeper deletes threads left alone past their TTL,
or cuts them back to their latest state (`keep_latest`), as langgraph-api does."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import HumanMessage

from tenantgraph.runtime.checkpointer import TenantCheckpointer
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.settings import ConfigFile, ThreadTtl

from .runtime_fixtures import make_org, make_thread, registry
from .store_support import admin_execute


def test_checkpointer_ttl_is_read_and_other_checkpointer_keys_are_refused(tmp_path):
    path = tmp_path / "langgraph.json"
    ttl = {"strategy": "keep_latest", "sweep_interval_minutes": 10, "default_ttl": 43200}
    path.write_text(json.dumps({"graphs": {}, "checkpointer": {"ttl": ttl}}))
    read = ConfigFile.load(path).checkpointer.ttl
    assert read == ThreadTtl(strategy="keep_latest", sweep_interval_minutes=10, default_ttl=43200)
    path.write_text(json.dumps({"graphs": {}, "checkpointer": {"backend": "custom"}}))
    with pytest.raises(ValueError, match="checkpointer"):
        ConfigFile.load(path)


async def _checkpoints(resources, thread) -> int:
    rows = await admin_execute(
        resources, "SELECT count(*) FROM tenantgraph.checkpoints WHERE thread_id = %s", (thread,)
    )
    return rows[0][0]


async def test_expired_threads_are_cut_back_then_deleted(resources, org_ids):
    alice, bob, _ = await make_org(resources.db, org_ids[0])
    graphs = {}
    threads = []
    for owner in (alice, bob, alice):
        thread = await make_thread(resources.db, owner)
        graph = (await registry().get("agent")).copy(
            update={"checkpointer": TenantCheckpointer(resources.db, owner)}
        )
        config = {"configurable": {"thread_id": thread}}
        for text in ("one", "two"):
            await graph.ainvoke({"messages": [HumanMessage(text)]}, config)
        graphs[thread] = (graph, config)
        threads.append(thread)
    *old, recent = threads
    # Two threads last updated a day ago; the TTL is two hours.
    await admin_execute(
        resources,
        "UPDATE tenantgraph.threads SET updated_at = now() - interval '1 day'"
        " WHERE thread_id = ANY(%s)",
        (old,),
    )
    before = {t: (await graphs[t][0].aget_state(graphs[t][1])).values for t in threads}
    counts = {t: await _checkpoints(resources, t) for t in threads}
    assert min(counts.values()) > 2

    keep = StoreSweeper(resources.db, thread_ttl=ThreadTtl(strategy="keep_latest", default_ttl=120))
    assert await keep.sweep_expired_threads() == 2
    for thread in old:
        assert await _checkpoints(resources, thread) == 1
        graph, config = graphs[thread]
        assert (await graph.aget_state(config)).values == before[thread]
    assert await _checkpoints(resources, recent) == counts[recent]
    assert await keep.sweep_expired_threads() == 0  # nothing left to cut back

    delete = StoreSweeper(resources.db, thread_ttl=ThreadTtl(default_ttl=120))
    assert await delete.sweep_expired_threads() == 2
    left = await admin_execute(
        resources, "SELECT thread_id FROM tenantgraph.threads WHERE org_id = %s", (org_ids[0],)
    )
    assert left == [(recent,)]
    assert await _checkpoints(resources, recent) == counts[recent]
