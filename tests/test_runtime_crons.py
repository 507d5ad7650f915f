"""Crons live in Postgres, fire once per due date whatever the number of workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tenantgraph.services.crons import Crons, InvalidSchedule, next_run_date
from tenantgraph.services.runs import RunNotFound, Runs

from .runtime_fixtures import make_org, make_thread, make_worker, wait_for

# Once a year: the test makes it due by hand, so it fires exactly when the test says.
YEARLY = "0 0 1 1 *"


@pytest.fixture
async def orgs(resources, org_ids):
    return [await make_org(resources.db, org) for org in org_ids]


@pytest.fixture
def crons(resources) -> Crons:
    return Crons(resources.db, Runs(resources.db, resources.redis, resources.streams))


async def _make_due(resources, principal, cron_id) -> None:
    async with resources.db.tenant(principal) as conn:
        await conn.execute(
            "UPDATE crons SET next_run_date = now() - interval '1 second' WHERE cron_id = %s",
            (cron_id,),
        )


async def _cron_runs(resources, principal, cron_id) -> list[dict]:
    async with resources.db.tenant(principal) as conn:
        cur = await conn.execute(
            "SELECT run_id, thread_id, status FROM runs WHERE metadata->>'cron_id' = %s",
            (str(cron_id),),
        )
        return await cur.fetchall()


def test_next_run_date_follows_schedule_zone_and_end():
    after = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    assert next_run_date("*/5 * * * *", after=after) == datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    assert next_run_date("0 9 * * *", "Europe/Paris", after=after) == datetime(
        2026, 3, 2, 8, 0, tzinfo=UTC
    )
    assert next_run_date("* * * * *", after=after, end_time=after) is None
    with pytest.raises(InvalidSchedule):
        next_run_date("not a schedule")
    with pytest.raises(InvalidSchedule):
        next_run_date("* * * * *", "Mars/Olympus")


async def test_a_due_cron_fires_once_with_two_workers(resources, orgs, crons):
    (alice, _, assistants), _ = orgs
    thread_id = await make_thread(resources.db, alice)
    cron = await crons.create(
        alice,
        assistants["agent"],
        {"schedule": YEARLY, "input": {"messages": [{"role": "user", "content": "tick"}]}},
        thread_id=thread_id,
    )
    assert cron["next_run_date"] > datetime.now(UTC)
    assert cron["user_id"] == "alice" and cron["enabled"]
    await _make_due(resources, alice, cron["cron_id"])

    # Two schedulers racing on the same due date: one run.
    other = Crons(resources.db, Runs(resources.db, resources.redis, resources.streams))
    await asyncio.gather(crons.fire_due(), other.fire_due(), crons.fire_due(), other.fire_due())
    fired = await _cron_runs(resources, alice, cron["cron_id"])
    assert len(fired) == 1 and fired[0]["thread_id"] == thread_id
    after = await crons.get(alice, cron["cron_id"])
    assert after["next_run_date"] > datetime.now(UTC) + timedelta(days=1)

    # Real workers (new processes would do the same: the cron is in the table).
    await _make_due(resources, alice, cron["cron_id"])
    ticks = [0, 0]

    def counted(n: int):
        async def fire() -> list:
            created = await crons.fire_due()
            ticks[n] += 1
            return created

        return fire

    workers = [make_worker(resources, fire_crons=counted(n)) for n in range(2)]
    for w in workers:
        await w.start()
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 60
        while True:
            fired = await _cron_runs(resources, alice, cron["cron_id"])
            if len(fired) == 2 and all(r["status"] == "success" for r in fired):
                break
            assert loop.time() < deadline, fired
            await asyncio.sleep(0.05)
        # Five more scheduler passes of each worker, counted rather than waited for: a
        # second firing of the date would have had five chances per worker.
        seen = list(ticks)
        while not all(now >= then + 5 for now, then in zip(ticks, seen, strict=True)):
            assert loop.time() < deadline + 60, (seen, ticks)
            await asyncio.sleep(0.05)
    finally:
        for w in workers:
            await w.stop()
    fired = await _cron_runs(resources, alice, cron["cron_id"])
    assert len(fired) == 2
    runs = Runs(resources.db, resources.redis, resources.streams)
    for r in fired:
        assert (await wait_for(runs, alice, r["run_id"]))["status"] == "success"


async def test_stateless_cron_and_end_time(resources, orgs, crons):
    (alice, _, assistants), _ = orgs
    cron = await crons.create(alice, assistants["agent"], {"schedule": YEARLY, "input": {}})
    assert cron["thread_id"] is None and cron["on_run_completed"] == "delete"
    await _make_due(resources, alice, cron["cron_id"])
    assert len(await crons.fire_due()) == 1
    # An end_time before the next date disables the cron.
    ended = await crons.update(
        alice, cron["cron_id"], {"end_time": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    )
    assert ended["enabled"] is False and ended["next_run_date"] is None
    reopened = await crons.update(alice, cron["cron_id"], {"end_time": None, "enabled": True})
    assert reopened["enabled"] is True and reopened["next_run_date"] is not None


async def test_cron_crud_and_isolation(resources, orgs, crons):
    (alice, bob, assistants), (alice_b, _, assistants_b) = orgs
    thread_id = await make_thread(resources.db, alice)
    cron = await crons.create(
        alice,
        assistants["agent"],
        {"schedule": YEARLY, "metadata": {"k": "v"}},
        thread_id=thread_id,
    )
    assert [c["cron_id"] for c in await crons.search(alice, metadata={"k": "v"})] == [
        cron["cron_id"]
    ]
    assert await crons.count(alice, thread_id=thread_id) == 1
    # Another org, or a plain member who does not own it: as if it did not exist.
    for other in (alice_b, bob):
        assert await crons.search(other) == []
        assert await crons.count(other) == 0
        with pytest.raises(RunNotFound):
            await crons.get(other, cron["cron_id"])
        with pytest.raises(RunNotFound):
            await crons.update(other, cron["cron_id"], {"enabled": False})
        with pytest.raises(RunNotFound):
            await crons.delete(other, cron["cron_id"])
    with pytest.raises(RunNotFound):  # org B cannot schedule on org A's thread or assistant
        await crons.create(
            alice_b, assistants_b["agent"], {"schedule": YEARLY}, thread_id=thread_id
        )
    with pytest.raises(RunNotFound):
        await crons.create(alice_b, assistants["agent"], {"schedule": YEARLY})
    await crons.delete(alice, cron["cron_id"])
    with pytest.raises(RunNotFound):
        await crons.get(alice, cron["cron_id"])
