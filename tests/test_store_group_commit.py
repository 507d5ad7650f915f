"""GroupCommit: concurrent items share flushes, heavy items spread over several groups."""

from __future__ import annotations

import asyncio

from tenantgraph.runtime.group_commit import GroupCommit


async def _run(commit: GroupCommit[tuple[str, int]], items: list[tuple[str, int]]) -> list[list]:
    groups: list[list[tuple[str, int]]] = []

    async def flush(group: list[tuple[str, int]]) -> list[BaseException | None]:
        groups.append(group)
        await asyncio.sleep(0.01)
        return [ValueError(name) if name == "bad" else None for name, _ in group]

    outcomes = await asyncio.gather(
        *(commit.submit("org", item, flush) for item in items), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [
        ValueError if name == "bad" else type(None) for name, _ in items
    ]
    return groups


async def test_weightless_items_queued_together_share_one_group():
    commit: GroupCommit[tuple[str, int]] = GroupCommit(max_inflight=1)
    groups = await _run(commit, [(f"get{n}", 0) for n in range(10)])
    assert [len(g) for g in groups] == [10]


async def test_heavy_items_spread_over_groups_within_the_weight_limit():
    commit: GroupCommit[tuple[str, int]] = GroupCommit(
        max_inflight=2, weight=lambda item: item[1], max_weight=2
    )
    items = [(f"search{n}", 1) for n in range(9)] + [("bad", 1), ("get", 0)]
    groups = await _run(commit, items)
    assert all(sum(w for _, w in g) <= 2 for g in groups)
    assert sorted(i for g in groups for i in g) == sorted(items)  # each item flushed once


async def test_an_item_heavier_than_the_limit_still_runs_alone():
    commit: GroupCommit[tuple[str, int]] = GroupCommit(
        max_inflight=1, weight=lambda item: item[1], max_weight=1
    )
    groups = await _run(commit, [("big", 5), ("small", 1), ("big2", 5)])
    assert [[name for name, _ in g] for g in groups] == [["big"], ["small"], ["big2"]]
