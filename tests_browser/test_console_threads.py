"""The console's threads view in Chromium: search by status and metadata a page at a time,
a thread's checkpoint history as the API has it, a fork from an earlier checkpoint (a new
checkpoint whose parent is the chosen one, then a run from it), a failed run's error, and
a member who sees neither another user's threads nor another org's."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from .conftest import ConsoleServer, photograph, sign_in

FAIL = {"configurable": {"fail": True, "steps": 1, "delay": 0}}  # slow's last tick raises


def _says(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


async def _thread(client: httpx.AsyncClient, **metadata: Any) -> str:
    made = await client.post("/threads", json={"metadata": metadata})
    assert made.status_code == 200, made.text
    return made.json()["thread_id"]


async def _run(client: httpx.AsyncClient, thread_id: str, graph: str, **body: Any) -> Any:
    ran = await client.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": graph, **body})
    assert ran.status_code == 200, ran.text
    return ran.json()


async def _history(client: httpx.AsyncClient, thread_id: str) -> list[dict[str, Any]]:
    found = await client.post(f"/threads/{thread_id}/history", json={"limit": 100})
    assert found.status_code == 200, found.text
    return found.json()


async def _listed(page: Page) -> list[str]:
    rows = page.locator("#threads-list tbody tr")
    return await rows.evaluate_all("rows => rows.map((row) => row.dataset.threadId)")


async def _search(
    page: Page, *, metadata: str = "", status: str = "", thread_id: str = ""
) -> list[str]:
    """Search from the page's form; the ids it lists once that search answered."""
    results = page.locator("#threads-results")
    before = int(await results.get_attribute("data-searches") or 0)
    await page.fill("#threads-search textarea[name=metadata]", metadata)
    await page.select_option("#threads-search select[name=status]", status)
    await page.fill("#threads-search input[name=thread_id]", thread_id)
    await page.click("#threads-search button[type=submit]")
    await expect(results).to_have_attribute("data-searches", str(before + 1))
    return await _listed(page)


async def test_search_by_metadata_and_status_finds_exactly_the_tagged_threads(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex
    markup = '<img src=x onerror="window.pwned=1">'
    async with console.http("alice") as alice:
        idle = await _thread(alice, tag=tag, note=markup)
        await _run(alice, idle, "agent", input=_says("hello"))
        waiting = await _thread(alice, tag=tag, priority=2)
        await _run(alice, waiting, "hitl", input=_says("draft it"))
        failed = await _thread(alice, tag=tag, priority=3)
        await _run(alice, failed, "slow", input={}, config=FAIL)
        await _thread(alice, tag=uuid.uuid4().hex)  # another tag: never listed
        by_api = await alice.post(
            "/threads/search", json={"metadata": {"tag": tag}, "status": "interrupted"}
        )
    assert [t["thread_id"] for t in by_api.json()] == [waiting]

    await sign_in(page, console, "alice", "threads")
    assert set(await _search(page, metadata=f"tag={tag}")) == {idle, waiting, failed}
    await expect(page.locator("#threads-range")).to_have_text("1-3 of 3")
    row = page.locator(f"#threads-list tr[data-thread-id='{idle}']")
    await expect(row.locator(".chip[data-key=note]")).to_have_text(f"note={markup}")
    assert await page.evaluate("window.pwned") is None

    assert await _search(page, metadata=f"tag={tag}", status="interrupted") == [waiting]
    assert await _search(page, metadata=f"tag={tag}", status="error") == [failed]
    assert await _search(page, metadata=f"tag={tag}", status="idle") == [idle]
    assert await _search(page, metadata=f"tag={tag}", status="busy") == []
    await expect(page.locator("#threads-empty")).to_be_visible()
    # `:=` sends JSON: the number 2 matches, the text "2" would not.
    assert await _search(page, metadata=f"tag={tag}\npriority:=2") == [waiting]
    assert await _search(page, metadata=f"tag={tag}\npriority=2") == []
    assert await _search(page, thread_id=failed) == [failed]
    assert await _search(page, thread_id=failed, status="idle") == []

    # The list links to the thread's page.
    await _search(page, metadata=f"tag={tag}", status="error")
    await page.click(f"#threads-list a[href='#/threads/{failed}']")
    await expect(page.locator("#thread-id")).to_have_text(failed)


async def test_threads_are_listed_a_page_at_a_time(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex
    async with console.http("alice") as alice:
        made = {await _thread(alice, tag=tag, n=i) for i in range(12)}
    await sign_in(page, console, "alice", "threads")
    first = await _search(page, metadata=f"tag={tag}")
    assert len(first) == 10
    await expect(page.locator("#threads-range")).to_have_text("1-10 of 12")
    await expect(page.locator("#threads-prev")).to_be_disabled()
    await page.click("#threads-next")
    await expect(page.locator("#threads-range")).to_have_text("11-12 of 12")
    second = await _listed(page)
    assert len(second) == 2 and set(first) | set(second) == made
    await expect(page.locator("#threads-next")).to_be_disabled()
    await page.click("#threads-prev")
    await expect(page.locator("#threads-range")).to_have_text("1-10 of 12")

    # A thread never run has no checkpoint and no run yet.
    await _open(page, console, first[0])
    await expect(page.locator("#history-empty")).to_be_visible()
    await expect(page.locator("#thread-no-runs")).to_be_visible()


async def _open(page: Page, console: ConsoleServer, thread_id: str) -> None:
    """Go to a thread's page and wait until it has drawn it."""
    await page.goto(f"{console.url}/ui/#/threads/{thread_id}")
    await expect(page.locator("#thread-id")).to_have_text(thread_id)
    await page.wait_for_selector("section.view-threads[data-ready]", state="attached")


async def _say_instead(detail: Locator, text: str) -> None:
    """Edit the fork form's values: the first message says `text` (same message id, so the
    fork replaces that message rather than adding one)."""
    values = json.loads(await detail.locator("textarea[name=values]").input_value())
    values["messages"][0]["content"] = text
    await detail.locator("textarea[name=values]").fill(json.dumps(values))


async def _timeline(page: Page) -> list[str]:
    items = page.locator("#thread-history li.checkpoint")
    return await items.evaluate_all("items => items.map((item) => item.dataset.checkpointId)")


async def test_history_is_shown_and_forked_from_an_earlier_checkpoint(
    page: Page, console: ConsoleServer
):
    async with console.http("alice") as alice:
        thread = await _thread(alice, tag=uuid.uuid4().hex)
        await _run(alice, thread, "agent", input=_says("first"))
        await _run(alice, thread, "agent", input=_says("second"))
        history = await _history(alice, thread)
    ids = [c["checkpoint_id"] for c in history]
    # The first run's step 0: its input is in, `echo` has not answered yet.
    chosen = next(
        c for c in reversed(history) if c["metadata"]["step"] == 0 and c["next"] == ["echo"]
    )

    await sign_in(page, console, "alice", "threads")
    await _open(page, console, thread)
    timeline = page.locator("#thread-history li.checkpoint")
    await expect(timeline).to_have_count(len(history))
    assert await _timeline(page) == ids  # the API's checkpoints, newest first
    await expect(page.locator("#open-in-chat")).to_have_attribute("href", f"#/chat/{thread}")

    item = page.locator(f"#thread-history li[data-checkpoint-id='{chosen['checkpoint_id']}']")
    await item.locator("button.pick").click()
    detail = page.locator(f".checkpoint-detail[data-checkpoint-id='{chosen['checkpoint_id']}']")
    await expect(detail.locator(".values li.message")).to_have_text(["humanfirst"])
    await _say_instead(detail, "forked")
    await detail.locator("button[name=fork]").click()

    await expect(timeline).to_have_count(len(history) + 1)
    async with console.http("alice") as alice:
        after = await _history(alice, thread)
        state = (await alice.get(f"/threads/{thread}/state")).json()
    fork = after[0]
    assert fork["parent_checkpoint_id"] == chosen["checkpoint_id"]
    assert fork["metadata"]["source"] == "update" and fork["next"] == ["echo"]
    assert [c["checkpoint_id"] for c in after[1:]] == ids  # the old branch is kept
    assert state["checkpoint_id"] == fork["checkpoint_id"]
    assert await _timeline(page) == [c["checkpoint_id"] for c in after]
    forked = page.locator(f"#thread-history li[data-checkpoint-id='{fork['checkpoint_id']}']")
    for name in ("selected", "current", "branch"):  # shown, the head, off the old line
        await expect(forked).to_have_class(re.compile(rf"\b{name}\b"))
    await expect(forked).to_have_attribute("data-parent-id", chosen["checkpoint_id"])

    # Run the graph on from the fork: echo answers the edited message on the new branch.
    await page.locator("#fork-form button[name=replay]").click()
    await expect(timeline).to_have_count(len(history) + 2)
    await expect(page.locator("#thread-state .values li.message")).to_have_text(
        ["humanforked", "aiecho: forked"]
    )
    async with console.http("alice") as alice:
        final = await _history(alice, thread)
        runs = (await alice.get(f"/threads/{thread}/runs")).json()
    assert final[0]["parent_checkpoint_id"] == fork["checkpoint_id"]
    assert final[0]["values"]["messages"][-1]["content"] == "echo: forked"
    run_row = page.locator(f"#thread-runs tr[data-run-id='{runs[0]['run_id']}']")
    await expect(run_row.locator("td").nth(4)).to_have_text(fork["checkpoint_id"])

    # The same checkpoint forked again and run on at once: a third branch from it.
    await item.locator("button.pick").click()
    await _say_instead(detail, "again")
    await detail.locator("button[name=fork-run]").click()
    await expect(timeline).to_have_count(len(history) + 4)
    await expect(page.locator("#thread-state .values li.message")).to_have_text(
        ["humanagain", "aiecho: again"]
    )
    await expect(item.locator(".badge.forks")).to_have_text("3 branches")
    async with console.http("alice") as alice:
        final = await _history(alice, thread)
    assert final[1]["parent_checkpoint_id"] == chosen["checkpoint_id"]
    assert final[1]["metadata"]["source"] == "update"
    assert final[0]["parent_checkpoint_id"] == final[1]["checkpoint_id"]
    branches = [c for c in final if c["parent_checkpoint_id"] == chosen["checkpoint_id"]]
    assert len(branches) == 3  # the first run's own step, then the two forks
    # Drawn afresh (no notices left over), the branch is still there.
    await page.reload()
    await page.wait_for_selector("section.view-threads[data-ready]", state="attached")
    assert await _timeline(page) == [c["checkpoint_id"] for c in final]
    await photograph(page, "threads")


async def test_a_long_history_loads_older_checkpoints(page: Page, console: ConsoleServer):
    async with console.http("alice") as alice:
        thread = await _thread(alice, tag=uuid.uuid4().hex)
        for i in range(17):  # 3 checkpoints a run: 51, one more than a page of 50
            await _run(alice, thread, "agent", input=_says(f"turn {i}"))
        history = await _history(alice, thread)
    assert len(history) == 51
    await sign_in(page, console, "alice", "threads")
    await _open(page, console, thread)
    timeline = page.locator("#thread-history li.checkpoint")
    await expect(timeline).to_have_count(50)
    await expect(page.locator("#thread-history-card h2")).to_have_text("History (50+ checkpoints)")
    await page.click("#history-older")
    await expect(timeline).to_have_count(51)
    assert await _timeline(page) == [c["checkpoint_id"] for c in history]
    await expect(page.locator("#history-older")).to_be_hidden()
    await expect(page.locator("#thread-history-card h2")).to_have_text("History (51 checkpoints)")


async def test_a_busy_thread_is_followed_until_its_run_ends(
    page: Page, console: ConsoleServer, tmp_path: Path
):
    gate = tmp_path / "open"
    async with console.http("alice") as alice:
        thread = await _thread(alice, tag=uuid.uuid4().hex)
        waits = {"configurable": {"gate": str(gate)}}  # the run ends when the file exists
        made = await alice.post(
            f"/threads/{thread}/runs", json={"assistant_id": "gate", "input": {}, "config": waits}
        )
        assert made.status_code == 200, made.text
        run_id = made.json()["run_id"]
        assert (await alice.get(f"/threads/{thread}")).json()["status"] == "busy"
    await sign_in(page, console, "alice", "threads")
    await _open(page, console, thread)
    await expect(page.locator("#thread-status")).to_have_text("busy")
    gate.touch()  # the run ends; the page follows it without being told
    await expect(page.locator("#thread-status")).to_have_text("idle", timeout=15_000)
    run = page.locator(f"#thread-runs tr[data-run-id='{run_id}']")
    await expect(run).to_have_attribute("data-status", "success")
    await expect(page.locator("#thread-state .values pre.json")).to_contain_text('"opened": true')


async def test_a_failed_runs_error_is_shown(page: Page, console: ConsoleServer):
    async with console.http("alice") as alice:
        thread = await _thread(alice, tag=uuid.uuid4().hex)
        await _run(alice, thread, "agent", input=_says("fine"))
        answer = await _run(alice, thread, "slow", input={}, config=FAIL)
        runs = (await alice.get(f"/threads/{thread}/runs")).json()
    assert answer == {"__error__": {"error": "ValueError", "message": "told to fail"}}
    assert [r["status"] for r in runs] == ["error", "success"]

    await sign_in(page, console, "alice", "threads")
    await _open(page, console, thread)
    await expect(page.locator("#thread-status")).to_have_text("error")
    failed = page.locator(f"#thread-runs tr[data-run-id='{runs[0]['run_id']}']")
    await expect(failed).to_have_attribute("data-status", "error")
    await expect(failed.locator(".run-error")).to_have_text("ValueError: told to fail")
    fine = page.locator(f"#thread-runs tr[data-run-id='{runs[1]['run_id']}']")
    await expect(fine.locator(".run-error")).to_have_text("")


async def test_a_member_sees_neither_another_users_nor_another_orgs_threads(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex
    secret = f"amos's secret {uuid.uuid4().hex}"
    async with console.http("alice") as alice:
        own = await _thread(alice, tag=tag)
    async with console.http("amos") as amos:
        theirs = await _thread(amos, tag=tag)
        await _run(amos, theirs, "agent", input=_says(secret))
    async with console.http("bob") as bob:
        other_org = await _thread(bob, tag=tag)
    async with console.http("alice") as alice:
        for hidden in (theirs, other_org):
            assert (await alice.get(f"/threads/{hidden}")).status_code == 404
            assert (await alice.get(f"/threads/{hidden}/state")).status_code == 404

    await sign_in(page, console, "alice", "threads")
    assert await _search(page, metadata=f"tag={tag}") == [own]
    for hidden in (theirs, other_org):
        await page.goto(f"{console.url}/ui/#/threads/{hidden}")
        await expect(page.locator("#thread-not-found")).to_contain_text(hidden)
        await expect(page.locator("#thread-history")).to_have_count(0)
    assert secret not in await page.content()
    await page.goto(f"{console.url}/ui/#/threads/not-a-thread")
    await expect(page.locator("#thread-not-found")).to_contain_text("not-a-thread")

    # The org's admin does see amos's thread (and its state), still not org B's.
    await page.click("#sign-out")
    await sign_in(page, console, "anna", "threads")
    assert set(await _search(page, metadata=f"tag={tag}")) == {own, theirs}
    await _open(page, console, theirs)
    await expect(page.locator("#thread-state .values li.message").first).to_have_text(
        f"human{secret}"
    )
