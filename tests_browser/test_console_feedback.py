"""The feedback view in Chromium: per key, the events and the mean score per day or week as
charts whose numbers are GET /feedback/stats's, the recent events with their comments shown
as text; an admin sees the org's feedback, a member the feedback they gave."""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Page, expect

from .conftest import ConsoleServer, photograph, sign_in
from .runs import finished_run, give

XSS = '<img src=x onerror="window.__xss = 1">'


async def _numbers(card, selector: str) -> dict[str, float]:
    """label → value of the chart marks `selector` in `card`."""
    marks = await card.locator(selector).evaluate_all(
        "marks => marks.map(m => [m.dataset.label, Number(m.dataset.value)])"
    )
    return dict(marks)


async def test_charts_per_key_show_the_stats_and_comments_are_text(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:6]
    helpful, stars = f"helpful_{tag}", f"stars_{tag}"
    async with console.http("alice") as alice:
        runs = [await finished_run(alice) for _ in range(2)]
        for score in (1, 0, 1, 1):
            await give(alice, runs[0], helpful, score=score)
        await give(alice, runs[1], stars, score=4, comment="fine")
        await give(alice, runs[1], stars, score=5, comment=XSS)
        await give(alice, runs[1], stars, comment="no score")
        totals = {g["group"]: g for g in (await alice.get("/feedback/stats?group_by=key")).json()}
        by_day = {
            key: (await alice.get("/feedback/stats", params={"key": key, "group_by": "day"})).json()
            for key in (helpful, stars)
        }

    await sign_in(page, console, "alice", "feedback")
    for key, days in by_day.items():
        card = page.locator(f"section.feedback-key[data-key='{key}']")
        assert await card.locator("[data-field=count]").inner_text() == str(totals[key]["count"])
        assert await card.locator("[data-field=scored]").inner_text() == str(totals[key]["scored"])
        counts = await _numbers(card, "rect.bar")
        means = await _numbers(card, "circle.point")
        assert len(counts) == 30  # a bar per day of the default range, empty days at 0
        assert {label: n for label, n in counts.items() if n} == {
            g["group"][5:]: g["count"] for g in days
        }
        assert means == {g["group"][5:]: g["mean"] for g in days}
    assert (totals[helpful]["count"], totals[stars]["count"], totals[stars]["scored"]) == (4, 3, 2)
    # The rate of 0/1 scores with its Wilson interval, as the API gives it.
    rate = await page.inner_text(f"[data-key='{helpful}'] [data-field=rate]")
    assert rate.startswith("0.75 [")

    comments = page.locator(f"tr.feedback-event[data-key='{stars}'] td.comment")
    assert XSS in await comments.all_inner_texts()
    assert await page.locator("#feedback-events img").count() == 0
    assert await page.evaluate("window.__xss") is None
    await photograph(page, "feedback")

    # Weeks: 30 days make 5 buckets, the last ending today, its mean weighted by the scores.
    await page.select_option("select[name=bucket]", "7")
    for key in (helpful, stars):
        card = page.locator(f"section.feedback-key[data-key='{key}']")
        await expect(card.locator("rect.bar")).to_have_count(5)
        weeks = await _numbers(card, "rect.bar")
        assert sum(weeks.values()) == list(weeks.values())[-1] == totals[key]["count"]
        means = await _numbers(card, "circle.point")
        assert list(means.values()) == [pytest.approx(totals[key]["mean"])]
    await page.select_option("select[name=bucket]", "1")

    # A shorter range and one key: a card for that key alone, a bar per day.
    await page.select_option("select[name=range]", "7")
    await expect(page.locator("section.feedback-key").first.locator("rect.bar")).to_have_count(7)
    await page.select_option("select[name=key]", stars)
    await expect(page.locator("section.feedback-key")).to_have_count(1)
    only = page.locator("section.feedback-key")
    assert await only.get_attribute("data-key") == stars
    assert len(await _numbers(only, "rect.bar")) == 7
    assert set(
        await page.locator("tr.feedback-event").evaluate_all("rows => rows.map(r => r.dataset.key)")
    ) == {stars}


async def test_an_admin_sees_the_orgs_feedback_and_a_member_their_own(
    page: Page, console: ConsoleServer
):
    key = f"amos_{uuid.uuid4().hex[:6]}"
    async with console.http("amos") as amos:
        await give(amos, await finished_run(amos), key, score=1, comment="from amos")
        own = {g["group"] for g in (await amos.get("/feedback/stats?group_by=key")).json()}
    await sign_in(page, console, "anna", "feedback")
    card = page.locator(f"section.feedback-key[data-key='{key}']")
    assert await card.locator("[data-field=count]").inner_text() == "1"
    event = page.locator(f"tr.feedback-event[data-key='{key}']")
    assert await event.locator("td").nth(1).inner_text() == "amos"
    assert await event.locator("td.comment").inner_text() == "from amos"

    await page.click("#sign-out")
    await sign_in(page, console, "amos", "feedback")
    await page.locator(f"section.feedback-key[data-key='{key}']").wait_for()
    shown = await page.locator("section.feedback-key").evaluate_all(
        "cards => cards.map(c => c.dataset.key)"
    )
    assert key in shown and set(shown) <= own
    users = await page.locator("tr.feedback-event td:nth-child(2)").all_inner_texts()
    assert set(users) == {"amos"}
