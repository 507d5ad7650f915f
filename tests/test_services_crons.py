"""Crons cannot route around the run budget: a schedule fires at most once a minute (by
default), a user owns a bounded number of crons, and every firing spends its owner's run
budget — a firing that finds it spent is skipped, not queued."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenantgraph.ephemeral.ratelimit import RateLimiter
from tenantgraph.errors import InvalidInput, QuotaExceeded
from tenantgraph.services.crons import SKIPPED_FIRINGS, Crons
from tenantgraph.services.experiments import Experiments, pick_variant
from tenantgraph.services.limits import OrgLimits
from tenantgraph.services.runs import RunNotFound, Runs
from tenantgraph.settings import EphemeralSettings, Limit, RateLimits

from .run_helpers import until
from .runtime_fixtures import make_org

YEARLY = "0 0 1 1 *"
DAY = 86_400


@pytest.fixture
async def org(resources, org_ids):
    return await make_org(resources.db, org_ids[0])


def _crons(resources, **options) -> Crons:
    return Crons(resources.db, Runs(resources.db, resources.redis, resources.streams), **options)


@pytest.mark.parametrize("schedule", ["* * * * * *", "*/30 * * * * *", "0,10 * * * * *"])
async def test_a_schedule_firing_more_often_than_the_minimum_is_refused(resources, org, schedule):
    alice, _, assistants = org
    crons = _crons(resources)
    with pytest.raises(InvalidInput, match="more often than every 60 seconds"):
        await crons.create(alice, assistants["agent"], {"schedule": schedule})
    cron = await crons.create(alice, assistants["agent"], {"schedule": "*/5 * * * *"})
    with pytest.raises(InvalidInput):
        await crons.update(alice, cron["cron_id"], {"schedule": schedule})
    # The setting lowers the bound (the tests' servers fire every second with it at 0).
    fast = await _crons(resources, min_interval_seconds=0).create(
        alice, assistants["agent"], {"schedule": schedule}
    )
    assert fast["schedule"] == schedule


async def test_a_user_owns_at_most_the_cron_cap(resources, org):
    alice, bob, assistants = org
    crons = _crons(resources, max_per_user=2)
    for _ in range(2):
        await crons.create(alice, assistants["agent"], {"schedule": YEARLY})
    with pytest.raises(QuotaExceeded, match="at most 2 crons"):
        await crons.create(alice, assistants["agent"], {"schedule": YEARLY})
    # Another user of the org has a cap of their own.
    assert (await crons.create(bob, assistants["agent"], {"schedule": YEARLY}))["user_id"] == "bob"


async def _make_due(resources, principal, cron_id) -> None:
    async with resources.db.tenant(principal) as conn:
        await conn.execute(
            "UPDATE crons SET next_run_date = now() - interval '1 second' WHERE cron_id = %s",
            (cron_id,),
        )


async def _cron_runs(resources, principal, cron_id) -> int:
    async with resources.db.tenant(principal) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM runs WHERE metadata->>'cron_id' = %s", (str(cron_id),)
        )
        return (await cur.fetchone())["n"]


async def test_a_firing_spends_the_owners_run_budget_or_is_skipped(resources, org):
    alice, _, assistants = org
    one_run_a_day = EphemeralSettings(
        rate_limits=RateLimits(user_runs=Limit(limit=1, window_seconds=DAY))
    )
    limiter = RateLimiter(resources.redis, OrgLimits(resources.db).get, one_run_a_day)
    crons = _crons(resources, charge=limiter.check_run)
    cron = await crons.create(alice, assistants["agent"], {"schedule": YEARLY, "input": {}})

    await _make_due(resources, alice, cron["cron_id"])
    await crons.fire_due()
    assert await _cron_runs(resources, alice, cron["cron_id"]) == 1  # the budget's one run

    skipped = SKIPPED_FIRINGS._value.get()
    await _make_due(resources, alice, cron["cron_id"])
    await crons.fire_due()
    assert await _cron_runs(resources, alice, cron["cron_id"]) == 1  # spent: no second run
    assert SKIPPED_FIRINGS._value.get() == skipped + 1
    # The date moved on all the same: the skipped firing is not made up for later.
    assert (await crons.get(alice, cron["cron_id"]))["next_run_date"] > datetime.now(UTC)
    await crons.fire_due()
    assert await _cron_runs(resources, alice, cron["cron_id"]) == 1
    assert not (await limiter.check_run(alice)).allowed


async def _fired_run(resources, principal, cron_id, seen: set) -> dict:
    """The cron's one run not in `seen` (fired here, or by a test server's worker)."""

    async def fresh() -> list[dict]:
        async with resources.db.tenant(principal) as conn:
            cur = await conn.execute(
                "SELECT run_id, assistant_id, metadata FROM runs WHERE metadata->>'cron_id' = %s",
                (str(cron_id),),
            )
            return [r for r in await cur.fetchall() if r["run_id"] not in seen]

    (run,) = await until(fresh)
    seen.add(run["run_id"])
    return run


async def test_a_cron_of_an_experiment_runs_the_owners_variant_at_each_firing(resources, org):
    alice, bob, assistants = org
    experiments = Experiments(resources.db)
    by_name = {"control": assistants["agent"], "treatment": assistants["memory"]}
    variants = [{"name": n, "assistant_id": str(a), "weight": 1.0} for n, a in by_name.items()]
    experiment = await experiments.create(
        alice, {"name": "cron-ab", "variants": variants, "metric": {"key": "thumbs"}}
    )
    experiment_id = experiment["experiment_id"]
    crons = _crons(resources)
    # Not running yet: as unknown as a missing assistant.
    with pytest.raises(RunNotFound):
        await crons.create(bob, None, {"schedule": YEARLY}, experiment="experiment:cron-ab")
    await experiments.set_status(alice, experiment_id, "running")
    cron = await crons.create(bob, None, {"schedule": YEARLY}, experiment="experiment:cron-ab")
    by_id = await crons.create(bob, experiment_id, {"schedule": YEARLY})
    variant = pick_variant(experiment_id, "bob", variants)
    # The cron shows the assistant it keeps: the owner's variant when it was created.
    assert cron["assistant_id"] == by_id["assistant_id"] == by_name[variant]

    seen: set = set()
    await _make_due(resources, bob, cron["cron_id"])
    await crons.fire_due()
    run = await _fired_run(resources, bob, cron["cron_id"], seen)
    assert run["assistant_id"] == by_name[variant]
    assert run["metadata"]["experiment_id"] == str(experiment_id)
    assert run["metadata"]["variant"] == variant

    # Completed with the other variant as winner: the next firing runs the winner.
    winner = "control" if variant == "treatment" else "treatment"
    await experiments.set_status(alice, experiment_id, "completed", winner=winner)
    await _make_due(resources, bob, cron["cron_id"])
    await crons.fire_due()
    run = await _fired_run(resources, bob, cron["cron_id"], seen)
    assert run["assistant_id"] == by_name[winner]
    assert run["metadata"]["variant"] == winner
