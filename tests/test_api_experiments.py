"""Experiments: lifecycle, sticky assignment, attribution of feedback to variants, results,
and the CLI's tables, against the session's API server."""

from __future__ import annotations

import uuid

from tenantgraph.services.experiments import TRANSITIONS, pick_variant

from .api_fixtures import caller
from .run_helpers import HI
from .test_cli import tenantgraph


async def _assistants(admin, n: int = 2) -> list[str]:
    return [
        (await admin.sdk.assistants.create("agent", name=f"v{i}"))["assistant_id"] for i in range(n)
    ]


async def _experiment(admin, weights=(1.0, 1.0), key: str = "thumbs") -> dict:
    ids = await _assistants(admin, len(weights))
    created = await admin.http.post(
        "/experiments",
        json={
            "name": f"exp-{uuid.uuid4().hex[:8]}",
            "variants": [
                {"name": name, "assistant_id": aid, "weight": w}
                for name, aid, w in zip(("control", "treatment"), ids, weights, strict=False)
            ],
            "metric": {"key": key, "goal": "maximize"},
        },
    )
    assert created.status_code == 200, created.text
    return created.json()


async def _status(admin, experiment_id, status, **extra):
    return await admin.http.post(
        f"/experiments/{experiment_id}/status", json={"status": status, **extra}
    )


async def _run_in(who, assistant_id: str) -> dict:
    """A finished run of `who` with `assistant_id` on a new thread (a stateless run's record
    is deleted when it ends)."""
    thread = (await who.sdk.threads.create())["thread_id"]
    made = await who.http.post(
        f"/threads/{thread}/runs/wait", json={"assistant_id": assistant_id, "input": HI}
    )
    assert made.status_code == 200, made.text
    return (await who.http.get(made.headers["Content-Location"])).json()


async def test_lifecycle_transitions_are_recorded_and_invalid_ones_are_409(tenants):
    admin = tenants.a_admin
    experiment = await _experiment(admin)
    eid = experiment["experiment_id"]
    assert (experiment["status"], experiment["start_time"]) == ("draft", None)
    assert experiment["transitions"] == ["running"]
    member_made = await tenants.a_member.http.post("/experiments", json={**experiment})
    assert member_made.status_code == 403, member_made.text
    assert (await _status(tenants.a_member, eid, "running")).status_code == 403
    for invalid in ("paused", "completed", "archived", "draft"):
        assert (await _status(admin, eid, invalid)).status_code == 409, invalid
    steps = ["running", "paused", "running", "completed", "archived"]
    for step in steps:
        moved = await _status(admin, eid, step, reason=f"to {step}")
        assert moved.status_code == 200, moved.text
        assert moved.json()["transitions"] == sorted(TRANSITIONS[step])
    assert (await _status(admin, eid, "running")).status_code == 409
    got = (await tenants.a_member.http.get(f"/experiments/{eid}")).json()
    assert got["start_time"] is not None and got["end_time"] is not None
    history = [
        (h["from_status"], h["to_status"], h["user_id"], h["reason"]) for h in got["history"]
    ]
    assert history == [
        (before, after, "anna", f"to {after}")
        for before, after in zip(["draft", *steps], steps, strict=False)
    ]
    again = await admin.http.post(
        "/experiments",
        json={
            "name": experiment["name"],
            "variants": experiment["variants"],
            "metric": experiment["metric"],
        },
    )
    assert again.status_code == 409
    assert (await tenants.b_admin.http.get(f"/experiments/{eid}")).status_code == 404


def test_ten_thousand_users_land_on_70_30_within_two_points():
    experiment = uuid.uuid4()
    variants = [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}]
    picks = [pick_variant(experiment, f"user-{i}", variants) for i in range(10_000)]
    assert abs(picks.count("a") / 10_000 - 0.70) <= 0.02
    # Deterministic: the same user lands on the same variant every time.
    assert picks[:50] == [pick_variant(experiment, f"user-{i}", variants) for i in range(50)]


async def test_assignment_is_sticky_across_a_weight_change_and_feedback_lands_on_it(
    api_url, tenants
):
    admin = tenants.a_admin
    experiment = await _experiment(admin, weights=(1.0, 1.0))
    eid, name = experiment["experiment_id"], experiment["name"]
    by_variant = {v["name"]: v["assistant_id"] for v in experiment["variants"]}
    users = [caller(api_url, admin.org, f"user-{i}", "member") for i in range(12)]
    # A draft experiment runs nothing.
    assert (
        await users[0].http.post("/runs/wait", json={"assistant_id": f"experiment:{name}"})
    ).status_code == 404
    assert (await _status(admin, eid, "running")).status_code == 200
    first = {}
    for i, user in enumerate(users):
        run = await _run_in(user, f"experiment:{name}" if i % 2 else eid)
        variant = run["metadata"]["variant"]
        assert run["metadata"]["experiment_id"] == eid
        assert run["assistant_id"] == by_variant[variant]
        first[user.user] = variant
    assert set(first.values()) == {"control", "treatment"}
    patched = await admin.http.patch(
        f"/experiments/{eid}", json={"weights": {"control": 0, "treatment": 1}}
    )
    assert patched.status_code == 200, patched.text
    for user in users:
        run = await _run_in(user, f"experiment:{name}")
        assert run["metadata"]["variant"] == first[user.user], user.user
    newcomer = caller(api_url, admin.org, "newcomer", "member")
    run = await _run_in(newcomer, f"experiment:{name}")
    assert run["metadata"]["variant"] == "treatment"
    given = await newcomer.http.post(f"/runs/{run['run_id']}/feedback", json={"key": "thumbs"})
    assert given.json()["variant"] == "treatment" and given.json()["experiment_id"] == eid
    by_group = await admin.http.get(
        "/feedback/stats", params={"key": "thumbs", "group_by": "variant"}
    )
    assert [g["group"] for g in by_group.json()] == [{"experiment_id": eid, "variant": "treatment"}]
    # Paused: everyone gets the winner, and no new assignment is recorded.
    assert (await _status(admin, eid, "paused", winner="control")).status_code == 200
    assert (await _run_in(newcomer, eid))["metadata"]["variant"] == "control"
    results = (await admin.http.get(f"/experiments/{eid}/results")).json()
    assert sum(v["users"] for v in results["variants"]) == 13
    assert sum(v["runs"] for v in results["variants"]) == 12 * 2 + 2
    # Another org cannot run it, by id or by name.
    outsider = tenants.b_member
    for ref in (eid, f"experiment:{name}"):
        refused = await outsider.http.post("/runs/wait", json={"assistant_id": ref})
        assert refused.status_code == 404, refused.text


async def _score(api_url, admin, experiment_id, user: str, key: str, value: float) -> None:
    """A run of a new member `user` through the experiment, and their score on it."""
    who = caller(api_url, admin.org, user, "member")
    run = await _run_in(who, experiment_id)
    given = await who.http.post(
        f"/runs/{run['run_id']}/feedback", json={"key": key, "score": value}
    )
    assert given.status_code == 200, given.text


def _rounded(control: dict, treatment: dict) -> list[float]:
    """The figures a results test checks, to 3 decimals: each mean and interval, then the
    difference and its p-value."""
    figures = [control[k] for k in ("mean", "ci_low", "ci_high")]
    figures += [treatment[k] for k in ("mean", "ci_low", "ci_high", "difference", "p_value")]
    return [round(x, 3) for x in figures]


async def test_results_match_a_hand_computed_dataset(api_url, settings, api_env, tenants):
    """Control scores 3, 4, 5, 4 and treatment 5, 5, 4, 6, 5: means 4 and 5, Student's t
    intervals [2.701, 5.299] and [4.122, 5.878], Welch's t = 1.936 on 6.05 degrees of
    freedom, p = 0.101."""
    admin = tenants.a_admin
    experiment = await _experiment(admin, weights=(1.0, 0.0), key="stars")
    eid = experiment["experiment_id"]
    assert (await _status(admin, eid, "running")).status_code == 200

    for i, value in enumerate((3, 4, 5, 4)):
        await _score(api_url, admin, eid, f"c{i}", "stars", value)
    weights = {"control": 0, "treatment": 1}
    assert (await admin.http.patch(f"/experiments/{eid}", json={"weights": weights})).is_success
    for i, value in enumerate((5, 5, 4, 6, 5)):
        await _score(api_url, admin, eid, f"t{i}", "stars", value)
    assert (await tenants.a_member.http.get(f"/experiments/{eid}/results")).status_code == 403
    results = (await admin.http.get(f"/experiments/{eid}/results")).json()
    control, treatment = results["variants"]
    assert (control["feedback"], treatment["feedback"]) == (4, 5)
    assert (control["users"], treatment["users"]) == (4, 5)
    rounded = _rounded(control, treatment)
    assert rounded == [4.0, 2.701, 5.299, 5.0, 4.122, 5.878, 1.0, 0.101]
    listed = tenantgraph(
        settings, api_env, "experiments", "list", "--org", admin.org, COLUMNS="200"
    )
    assert experiment["name"] in listed.stdout and "running" in listed.stdout
    table = tenantgraph(
        settings,
        api_env,
        "experiments",
        "results",
        experiment["name"],
        "--org",
        admin.org,
        COLUMNS="200",
    )
    assert "0.1006" in table.stdout and "5.878" in table.stdout, table.stdout
    assert "significant winner: none" in table.stdout, table.stdout


async def test_binary_results_use_wilson_intervals_and_a_two_proportion_z_test(api_url, tenants):
    """Thumbs 2 of 6 for control and 5 of 6 for treatment: Wilson intervals [0.097, 0.700]
    and [0.436, 0.970]; pooled rate 7/12, z = 0.5 / sqrt(7/12 * 5/12 * 2/6) = 1.757, two-sided
    p = 0.079."""
    admin = tenants.a_admin
    experiment = await _experiment(admin, weights=(1.0, 0.0), key="thumbs")
    eid = experiment["experiment_id"]
    assert (await _status(admin, eid, "running")).status_code == 200
    for i, value in enumerate((1, 0, 0, 1, 0, 0)):
        await _score(api_url, admin, eid, f"bc{i}", "thumbs", value)
    weights = {"control": 0, "treatment": 1}
    assert (await admin.http.patch(f"/experiments/{eid}", json={"weights": weights})).is_success
    for i, value in enumerate((1, 1, 1, 0, 1, 1)):
        await _score(api_url, admin, eid, f"bt{i}", "thumbs", value)
    control, treatment = (await admin.http.get(f"/experiments/{eid}/results")).json()["variants"]
    assert control["binary"] and treatment["binary"]
    assert treatment["test"] == "two-proportion z"
    rounded = _rounded(control, treatment)
    assert rounded == [0.333, 0.097, 0.7, 0.833, 0.436, 0.97, 0.5, 0.079]
    results = (await admin.http.get(f"/experiments/{eid}/results")).json()
    assert (results["variants"][1]["significant"], results["significant_winner"]) == (False, None)
    # 2 of 9 against 8 of 9: z = 2.846, p = 0.004, so treatment wins.
    for i in range(3):
        await _score(api_url, admin, eid, f"bt-more{i}", "thumbs", 1)
    weights = {"control": 1, "treatment": 0}
    assert (await admin.http.patch(f"/experiments/{eid}", json={"weights": weights})).is_success
    for i in range(3):
        await _score(api_url, admin, eid, f"bc-more{i}", "thumbs", 0)
    results = (await admin.http.get(f"/experiments/{eid}/results")).json()
    assert round(results["variants"][1]["p_value"], 3) == 0.004
    assert (results["variants"][1]["significant"], results["significant_winner"]) == (
        True,
        "treatment",
    )


async def test_a_cron_accepts_a_running_experiment_as_its_assistant(tenants):
    """The cron keeps the owner's variant as its assistant; each firing resolves it again
    (tests/test_services_crons.py fires one)."""
    admin, member = tenants.a_admin, tenants.a_member
    experiment = await _experiment(admin)
    eid, name = experiment["experiment_id"], experiment["name"]
    body = {"schedule": "0 0 1 1 *", "input": HI}
    draft = await member.http.post("/runs/crons", json={**body, "assistant_id": eid})
    assert draft.status_code == 404, draft.text
    assert (await _status(admin, eid, "running")).status_code == 200
    variant = pick_variant(uuid.UUID(eid), member.user, experiment["variants"])
    expected = next(v["assistant_id"] for v in experiment["variants"] if v["name"] == variant)
    thread = (await member.sdk.threads.create())["thread_id"]
    for path, ref in (
        ("/runs/crons", f"experiment:{name}"),
        (f"/threads/{thread}/runs/crons", eid),
    ):
        made = await member.http.post(path, json={**body, "assistant_id": ref})
        assert made.status_code == 200, made.text
        assert made.json()["assistant_id"] == expected
    other_org = await tenants.b_admin.http.post(
        "/runs/crons", json={**body, "assistant_id": f"experiment:{name}"}
    )
    assert other_org.status_code == 404, other_org.text
