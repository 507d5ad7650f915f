"""The experiments view in Chromium: an admin creates an experiment in the page, starts it
with a reason, moves the weights, and sees its results per variant with their intervals and
p-values; the winner is marked only when the API finds the difference significant; a member
sees the experiments but no create form and no controls."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Page, expect

from .conftest import ConsoleServer, photograph, sign_in
from .runs import finished_run, give


async def _assistants(anna: httpx.AsyncClient, tag: str) -> list[str]:
    ids = []
    for name in ("control", "treatment"):
        made = await anna.post("/assistants", json={"graph_id": "agent", "name": f"{name}-{tag}"})
        assert made.status_code == 200, made.text
        ids.append(made.json()["assistant_id"])
    return ids


async def _scores(console: ConsoleServer, experiment_id: str, user: str, ones: int, zeros: int):
    """A run of `user` through the experiment and their 0/1 scores on it; the variant."""
    async with console.http(user) as http:
        run = await finished_run(http, experiment_id)
        assert run["metadata"]["experiment_id"] == experiment_id
        key = (await http.get(f"/experiments/{experiment_id}")).json()["metric"]["key"]
        for score in [1] * ones + [0] * zeros:
            await give(http, run, key, score=score)
    return run["metadata"]["variant"]


def _p_value(value: float) -> str:
    """The p-value as the page writes it."""
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


async def _check_results(page: Page, results: dict) -> None:
    """The page's table and interval chart hold the API's numbers, variant by variant."""
    for i, variant in enumerate(results["variants"]):
        row = page.locator(f"tr.variant-result[data-variant='{variant['name']}']")
        for field in ("users", "runs", "feedback"):
            assert await row.locator(f"[data-field={field}]").inner_text() == str(variant[field])
        if i:
            shown = await row.locator("[data-field=p_value]").inner_text()
            assert shown == _p_value(variant["p_value"])
        interval = page.locator(f"g.interval[data-label='{variant['name']}']")
        drawn = [float(await interval.get_attribute(f"data-{f}")) for f in ("low", "value", "high")]
        assert drawn == [variant["ci_low"], variant["mean"], variant["ci_high"]]


async def test_an_admin_creates_starts_and_reads_an_experiment_with_a_winner(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:6]
    name, key = f"exp-{tag}", f"thumbs_{tag}"
    async with console.http("anna") as anna:
        control, treatment = await _assistants(anna, tag)

    await sign_in(page, console, "anna", "experiments")
    form = page.locator("#experiment-create")
    await form.locator("input[name=name]").fill(name)
    await form.locator("input[name=metric-key]").fill(key)
    rows = form.locator(".variant-row")
    for i, (assistant, weight) in enumerate(((control, "1"), (treatment, "0"))):
        await rows.nth(i).locator("select[name=variant-assistant]").select_option(assistant)
        await rows.nth(i).locator("input[name=variant-weight]").fill(weight)
    await form.locator("button[type=submit]").click()
    summary = page.locator("#experiment-summary[data-status=draft]")
    await summary.wait_for()
    experiment_id = await summary.get_attribute("data-experiment-id")

    async with console.http("anna") as anna:
        made = (await anna.get(f"/experiments/{experiment_id}")).json()
    assert (made["name"], made["status"], made["metric"]) == (
        name,
        "draft",
        {"key": key, "goal": "maximize"},
    )
    assert [(v["name"], v["assistant_id"], v["weight"]) for v in made["variants"]] == [
        ("control", control, 1.0),
        ("treatment", treatment, 0.0),
    ]

    # Started, with a reason: in the page's history and in the API's.
    reason = f"launch {tag} <b>now</b>"
    status = page.locator("#experiment-status")
    await status.locator("select[name=status]").select_option("running")
    await status.locator("input[name=reason]").fill(reason)
    await status.locator("button[type=submit]").click()
    await page.locator("dialog.confirm button:not(.danger)").click()  # cancelled: no change
    await expect(page.locator("dialog.confirm")).to_have_count(0)
    async with console.http("anna") as anna:
        assert (await anna.get(f"/experiments/{experiment_id}")).json()["status"] == "draft"
    await status.locator("button[type=submit]").click()
    await page.locator("dialog.confirm button.danger").click()
    await page.locator("#experiment-summary[data-status=running]").wait_for()
    assert await page.inner_text("#experiment-history tr.transition[data-to=running] .reason") == (
        reason
    )
    async with console.http("anna") as anna:
        started = (await anna.get(f"/experiments/{experiment_id}")).json()
    assert started["status"] == "running"
    assert [
        (h["from_status"], h["to_status"], h["user_id"], h["reason"]) for h in started["history"]
    ] == [("draft", "running", "anna", reason)]

    # alice lands on control (the only weight); the weights move in the page; amos, new to
    # it, lands on treatment. 4 of 20 against 18 of 20: significant.
    assert await _scores(console, experiment_id, "alice", 4, 16) == "control"
    weights = page.locator("#experiment-weights")
    await weights.locator("input[data-variant=control]").fill("0")
    await weights.locator("input[data-variant=treatment]").fill("1")
    await weights.locator("button[type=submit]").click()
    await expect(
        page.locator("#experiment-variants tr[data-variant=treatment] [data-field=weight]")
    ).to_have_text("1")
    assert await _scores(console, experiment_id, "amos", 18, 2) == "treatment"

    await page.click("#results-refresh")
    await page.locator("#experiment-results[data-winner=treatment]").wait_for()
    async with console.http("anna") as anna:
        results = (await anna.get(f"/experiments/{experiment_id}/results")).json()
    assert results["significant_winner"] == "treatment"
    assert [v["feedback"] for v in results["variants"]] == [20, 20]
    await _check_results(page, results)
    marked = page.locator("tr.variant-result .winner-mark")
    assert await marked.count() == 1
    assert await page.locator("tr.variant-result.winner").get_attribute("data-variant") == (
        "treatment"
    )
    assert await page.locator("g.interval.marked").get_attribute("data-label") == "treatment"
    await photograph(page, "experiments")


async def test_no_winner_is_marked_without_a_significant_difference(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:6]
    async with console.http("anna") as anna:
        control, treatment = await _assistants(anna, tag)
        made = await anna.post(
            "/experiments",
            json={
                "name": f"even-{tag}",
                "variants": [
                    {"name": "control", "assistant_id": control, "weight": 1},
                    {"name": "treatment", "assistant_id": treatment, "weight": 0},
                ],
                "metric": {"key": f"thumbs_{tag}"},
            },
        )
        experiment_id = made.json()["experiment_id"]
        assert (
            await anna.post(
                f"/experiments/{experiment_id}/status", json={"status": "running", "reason": "try"}
            )
        ).status_code == 200
        assert await _scores(console, experiment_id, "alice", 5, 5) == "control"
        moved = await anna.patch(
            f"/experiments/{experiment_id}", json={"weights": {"control": 0, "treatment": 1}}
        )
        assert moved.status_code == 200, moved.text
        assert await _scores(console, experiment_id, "amos", 6, 4) == "treatment"
        results = (await anna.get(f"/experiments/{experiment_id}/results")).json()
    treatment_result = results["variants"][1]
    assert treatment_result["mean"] > results["variants"][0]["mean"]
    assert (treatment_result["significant"], results["significant_winner"]) == (False, None)

    await sign_in(page, console, "anna", "experiments")
    await page.goto(f"{console.url}/ui/#/experiments/{experiment_id}")
    await page.locator("#experiment-results").wait_for()
    await _check_results(page, results)
    assert await page.get_attribute("#experiment-results", "data-winner") == ""
    assert await page.locator(".winner-mark, tr.variant-result.winner, g.marked").count() == 0
    assert (
        await page.inner_text("tr.variant-result[data-variant=treatment] [data-field=significant]")
        == "not significant"
    )
    assert (await page.inner_text("#experiment-results .verdict")).startswith(
        "No significant winner"
    )


async def test_a_member_sees_experiments_without_the_admins_controls(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:6]
    async with console.http("anna") as anna:
        control, _ = await _assistants(anna, tag)
        body = {
            "name": f"seen-{tag}",
            "variants": [{"name": "only", "assistant_id": control}],
            "metric": {"key": "thumbs"},
        }
        experiment_id = (await anna.post("/experiments", json=body)).json()["experiment_id"]
    async with console.http("alice") as alice:
        refused = await alice.post("/experiments", json={**body, "name": f"mine-{tag}"})
    assert refused.status_code == 403

    await sign_in(page, console, "alice", "experiments")
    row = page.locator(f"tr.experiment-row[data-experiment-id='{experiment_id}']")
    await row.wait_for()
    assert await page.locator("#experiment-create").count() == 0
    await row.locator("a").click()
    await page.locator("#experiment-summary[data-status=draft]").wait_for()
    assert await page.locator("#results-admins-only").count() == 1
    for control in ("#experiment-status", "#experiment-weights", "#experiment-results"):
        assert await page.locator(control).count() == 0, control
