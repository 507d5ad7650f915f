"""The console's memory browser in Chromium: the caller's namespace tree beside the org's
shared space (never another user's or org's), semantic search with scores, deleting an item,
the caller's export as a JSON download; an admin's export and erasure of a member's memory
behind a confirmation naming them; no admin controls for a member; a stored-XSS value shown
as text. Items are put through the API as their user, each test under its own tag."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from .conftest import ConsoleServer, photograph, sign_in

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'


async def put(console: ConsoleServer, user: str, namespace: list[str], key: str, value: Any):
    async with console.http(user) as client:
        answer = await client.put(
            "/store/items", json={"namespace": namespace, "key": key, "value": value}
        )
    assert answer.status_code == 204, answer.text


async def items_under(console: ConsoleServer, user: str, namespace: list[str]) -> list[str]:
    """The keys `user` finds under `namespace`, through the API."""
    async with console.http(user) as client:
        found = await client.post("/store/items/search", json={"namespace_prefix": namespace})
    assert found.status_code == 200, found.text
    return [item["key"] for item in found.json()["items"]]


async def open_node(page: Page, namespace: str) -> None:
    """Expand the tree node of `namespace` (labels joined with '.') and wait for its load."""
    await page.click(f'li.memory-node[data-namespace="{namespace}"] > button.memory-toggle')
    await page.wait_for_selector(
        f'li.memory-node[data-namespace="{namespace}"][data-loaded]', state="attached"
    )


async def download(page: Page, button: str) -> tuple[str, Any]:
    """Click `button`, wait for the download it starts: its file name and parsed JSON."""
    async with page.expect_download() as started:
        await page.click(button)
    done = await started.value
    text = await asyncio.to_thread(Path.read_text, Path(await done.path()))
    return done.suggested_filename, json.loads(text)


async def labels_under(page: Page, root: str) -> list[str]:
    return await page.locator(
        f"li.memory-node[data-root={root}][data-loaded] > ul > li.memory-node"
    ).evaluate_all("nodes => nodes.map(node => node.dataset.namespace)")


async def test_the_tree_shows_the_callers_namespaces_and_the_orgs_shared_space(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:8]
    await put(console, "alice", [f"notes-{tag}", "work"], "todo", {"text": f"buy milk {tag}"})
    await put(console, "amos", [f"amos-{tag}"], "secret", {"text": "amos's own"})
    await put(console, "bob", [f"bob-{tag}"], "secret", {"text": "org B's"})
    await put(console, "anna", ["shared", f"policy-{tag}"], "leave", {"text": "25 days"})
    await sign_in(page, console, "alice", "memory")

    mine = await labels_under(page, "mine")
    assert f"notes-{tag}" in mine
    assert f"amos-{tag}" not in mine and f"bob-{tag}" not in mine and "shared" not in mine
    assert f"shared.policy-{tag}" in await labels_under(page, "shared")
    await open_node(page, f"notes-{tag}")
    await open_node(page, f"notes-{tag}.work")
    item = page.locator(f'article.memory-item[data-namespace="notes-{tag}.work"][data-key=todo]')
    assert f"buy milk {tag}" in await item.locator("pre").inner_text()
    assert await item.locator(".memory-delete").count() == 1
    await open_node(page, f"shared.policy-{tag}")
    shared = page.locator(f'article.memory-item[data-namespace="shared.policy-{tag}"]')
    assert "25 days" in await shared.locator("pre").inner_text()
    assert await shared.locator(".memory-delete").count() == 0  # members only read it
    text = await page.inner_text("section.view-memory")
    assert f"amos-{tag}" not in text and f"bob-{tag}" not in text
    assert "org stores" in await page.inner_text("#memory-usage")


async def test_an_item_found_by_semantic_search_is_deleted(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex[:8]
    namespace = [f"search-{tag}"]
    texts = {
        "cake": "a recipe for lemon cake",
        "fox": "the quick brown fox jumps",
        "revenue": "quarterly revenue of the company grew",
    }
    for key, text in texts.items():
        await put(console, "alice", namespace, key, {"text": text})
    await put(console, "anna", ["shared", f"faq-{tag}"], "hours", {"text": "open 9 to 5"})
    await sign_in(page, console, "alice", "memory")
    await open_node(page, namespace[0])
    await open_node(page, f"shared.faq-{tag}")
    await page.fill("#memory-query", "lemon cake recipe")
    await page.fill("#memory-prefix", namespace[0])
    await page.click("#memory-search button[type=submit]")
    results = page.locator("#memory-results ol.memory-results > li article.memory-item")
    await results.first.wait_for()
    keys = await results.evaluate_all("cards => cards.map(card => card.dataset.key)")
    assert keys[0] == "cake" and sorted(keys) == ["cake", "fox", "revenue"]
    scores = await page.locator("#memory-results .memory-score").evaluate_all(
        "badges => badges.map(badge => Number(badge.dataset.score))"
    )
    assert scores[0] > 0.5 and all(scores[0] > other for other in scores[1:])
    assert await results.first.locator(".memory-score").inner_text() == f"score {scores[0]:.3f}"
    await photograph(page, "memory")

    await results.first.locator(".memory-delete").click()
    dialog = page.locator("dialog.confirm")
    assert "cake" in await dialog.inner_text()
    await dialog.locator("button.danger").click()
    await page.wait_for_selector('article.memory-item[data-key="cake"]', state="detached")
    async with console.http("alice") as client:
        gone = await client.get("/store/items", params={"namespace": namespace[0], "key": "cake"})
    assert gone.status_code == 200 and gone.json() is None
    assert sorted(await items_under(console, "alice", namespace)) == ["fox", "revenue"]


async def test_export_downloads_the_callers_memory_as_json(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex[:8]
    await put(console, "alice", [f"export-{tag}"], "mine", {"text": f"exported {tag}"})
    await put(console, "alice", [f"export-{tag}"], "also", {"text": "two lines at least"})
    await sign_in(page, console, "alice", "memory")
    name, exported = await download(page, "#memory-export")
    assert name == f"memory-{console.org_a}-alice.json"
    assert exported["user_id"] == "alice" and exported["org_id"] == console.org_a
    mine = [item for item in exported["items"] if item["namespace"] == [f"export-{tag}"]]
    assert {item["key"]: item["value"] for item in mine} == {
        "mine": {"text": f"exported {tag}"},
        "also": {"text": "two lines at least"},
    }


async def test_an_admin_exports_and_deletes_a_members_memory_after_confirming(
    page: Page, console: ConsoleServer
):
    tag = uuid.uuid4().hex[:8]
    namespace = [f"erase-{tag}"]
    await put(console, "alice", namespace, "diary", {"text": f"alice's diary {tag}"})
    await sign_in(page, console, "anna", "memory")
    await page.fill("#memory-user", "alice")
    name, exported = await download(page, "#memory-admin-export")
    assert name == f"memory-{console.org_a}-alice.json" and exported["user_id"] == "alice"
    diary = [item for item in exported["items"] if item["namespace"] == namespace]
    assert [(item["key"], item["value"]) for item in diary] == [
        ("diary", {"text": f"alice's diary {tag}"})
    ]

    dialog = page.locator("dialog.confirm")
    await page.click("#memory-admin-delete")
    assert "alice" in await dialog.inner_text()
    await dialog.locator("button", has_text="Cancel").click()
    await dialog.wait_for(state="detached")
    assert await items_under(console, "alice", namespace) == ["diary"]
    assert await page.locator("#memory-admin-outcome[data-deleted]").count() == 0

    await page.click("#memory-admin-delete")
    assert "alice" in await dialog.inner_text()
    await dialog.locator("button.danger").click()
    outcome = page.locator("#memory-admin-outcome[data-deleted]")
    await outcome.wait_for()
    assert int(await outcome.get_attribute("data-deleted")) >= 1
    assert await items_under(console, "alice", namespace) == []
    # Alice's export is now one line (one item, no feedback left): still a whole export.
    await put(console, "alice", namespace, "after", {"text": "written after"})
    _, exported = await download(page, "#memory-admin-export")
    assert [(item["key"], item["value"]) for item in exported["items"]] == [
        ("after", {"text": "written after"})
    ]
    assert exported["feedback"] == []


async def test_a_member_has_no_admin_controls(page: Page, console: ConsoleServer):
    await sign_in(page, console, "alice", "memory")
    await page.wait_for_selector("#memory-export")
    assert await page.locator("#memory-admin, #memory-admin-delete, #memory-user").count() == 0
    async with console.http("alice") as client:  # and the API refuses them anyway
        assert (await client.get("/store/users/amos/export")).status_code == 403
        assert (await client.delete("/store/users/amos")).status_code == 403


async def test_a_stored_xss_item_shows_as_text(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex[:8]
    await put(console, "alice", [f"xss-{tag}"], XSS, {"text": XSS})
    await sign_in(page, console, "alice", "memory")
    await open_node(page, f"xss-{tag}")
    await page.fill("#memory-query", XSS)
    await page.fill("#memory-prefix", f"xss-{tag}")
    await page.click("#memory-search button[type=submit]")
    await page.wait_for_selector("#memory-results article.memory-item")
    cards = page.locator(f'article.memory-item[data-namespace="xss-{tag}"]')
    assert await cards.count() == 2  # in the tree and in the results
    for n in range(2):
        card = cards.nth(n)
        assert await card.locator(".memory-key").inner_text() == XSS
        assert json.loads(await card.locator("pre").inner_text()) == {"text": XSS}
    assert await page.locator("section.view-memory img, section.view-memory script").count() == 0
    assert await page.evaluate("window.__xss") is None
