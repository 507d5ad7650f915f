"""The console's admin view in Chromium, checked through the API: a key created with a scope
is shown once (and copied), works, then is revoked; a member's role, a tighter budget and a
channel connection set in the page are the API's, the member and the channel removed after
a confirmation; a channel's secrets never come back to the page; and a member sees no admin
page and makes no admin call."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Page, Response, expect

from tenantgraph.scope import SCOPES
from tenantgraph.services.channels import SHAPES

from .conftest import ConsoleServer, photograph, sign_in

VIEWS = Path(__file__).resolve().parents[1] / "src" / "tenantgraph" / "console" / "views"


def _js_constant(file: str, name: str) -> object:
    """A constant a view module writes as one line of JSON (`export const NAME = …;`)."""
    found = re.search(rf"^export const {name} = (.+);$", (VIEWS / file).read_text(), re.M)
    assert found, f"{name} not found in {file}"
    return json.loads(found.group(1))


def test_the_pages_scopes_and_channel_fields_are_the_servers():
    assert _js_constant("admin_keys.js", "SCOPES") == sorted(SCOPES)
    assert all(plain == () for _, plain, _ in SHAPES.values())  # the page has no plain fields
    assert _js_constant("admin_channels.js", "SHAPES") == {
        kind: {"id": provider, "secrets": list(secrets)}
        for kind, (provider, _, secrets) in SHAPES.items()
    }


async def _me(console: ConsoleServer, key: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=console.url, headers={"X-Api-Key": key}) as client:
        return await client.get("/me")


async def _confirm(page: Page) -> None:
    await page.click("dialog.confirm button.danger")


async def test_a_key_is_shown_once_works_with_its_scopes_and_is_revoked(
    page: Page, console: ConsoleServer
):
    name = f"ci-{uuid.uuid4().hex[:8]}"
    await sign_in(page, console, "anna", "admin")
    form = page.locator("#key-create")
    await form.locator("input[name=name]").fill(name)
    await form.locator("input[name=scope][value='threads:read']").check()
    await form.locator("input[name=scope][value='store:read']").check()
    await form.locator("button[type=submit]").click()
    secret = await page.locator("#new-key code.secret").inner_text()
    assert secret.startswith("tg_")
    key_id = await page.locator("#new-key .secret-once").get_attribute("data-key")
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.click("#new-key button.copy")
    await expect(page.locator("#new-key button.copy")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator(f"#admin-keys tr[data-key='{key_id}']")
    await expect(row).to_contain_text(name)
    await expect(row.locator(".scopes")).to_have_text("store:readthreads:read")
    await photograph(page, "admin")

    # It works, narrowed to its scopes, and acts as its creator.
    me = await _me(console, secret)
    assert me.status_code == 200, me.text
    assert me.json()["scopes"] == ["store:read", "threads:read"]
    assert (me.json()["user_id"], me.json()["api_key_id"]) == ("anna", key_id)
    # The list has no secret, and the list in the page neither.
    async with console.http("anna") as anna:
        listed = await anna.get(f"/orgs/{console.org_a}/keys")
    assert secret not in listed.text and key_id in listed.text
    assert secret not in await page.locator("#admin-keys .admin-list").inner_text()

    # Shown once: gone when the page is reloaded.
    await page.reload()
    await page.wait_for_selector("section.view-admin[data-ready]", state="attached")
    await expect(row).to_be_visible()
    assert await page.locator("#new-key *").count() == 0
    assert secret not in await page.content()

    await row.locator("button.revoke").click()
    await _confirm(page)
    await expect(row.locator(".status")).to_contain_text("revoked")
    assert await row.locator("button.revoke").count() == 0
    assert (await _me(console, secret)).status_code == 401


async def test_an_admin_sets_a_members_role_and_removes_them(page: Page, console: ConsoleServer):
    user = f"carol-{uuid.uuid4().hex[:8]}"
    await sign_in(page, console, "anna", "admin")
    await page.fill("#member-add input[name=user_id]", user)
    await page.click("#member-add button[type=submit]")
    row = page.locator(f"#admin-members tr[data-member='{user}']")
    await expect(row.locator("select[name=role]")).to_have_value("member")
    await row.locator("select[name=role]").select_option("admin")
    await expect(page.locator("#notices")).to_contain_text(f"{user} is now admin")
    await expect(row.locator("select[name=role]")).to_have_value("admin")
    async with console.http("anna") as anna:
        members = (await anna.get(f"/orgs/{console.org_a}/members")).json()
    assert {"user_id": user, "role": "admin"}.items() <= next(
        m for m in members if m["user_id"] == user
    ).items()

    await row.locator("button.remove").click()
    await _confirm(page)
    await expect(row).to_have_count(0)
    async with console.http("anna") as anna:
        members = (await anna.get(f"/orgs/{console.org_a}/members")).json()
    assert user not in [m["user_id"] for m in members]


async def test_a_tighter_budget_set_in_the_page_is_the_apis(page: Page, console: ConsoleServer):
    async with console.http("anna") as anna:
        before = (await anna.get(f"/orgs/{console.org_a}/limits")).json()["api_key_requests"]
    await sign_in(page, console, "anna", "admin")
    row = page.locator("#admin-budgets tr[data-limit=api_key_requests]")
    await expect(row.locator(".value")).to_have_text(str(before["limit"]))
    # Looser is refused with the API's reason; one less is taken.
    await row.locator("input[name=limit]").fill(str(before["limit"] + 1))
    await row.locator("button[type=submit]").click()
    refused = page.locator("#notices .notice.error", has_text="api_key_requests")
    await expect(refused).to_contain_text("may only tighten a budget")
    await row.locator("input[name=limit]").fill(str(before["limit"] - 1))
    await row.locator("button[type=submit]").click()
    await expect(row.locator(".value")).to_have_text(str(before["limit"] - 1))
    async with console.http("anna") as anna:
        after = (await anna.get(f"/orgs/{console.org_a}/limits")).json()["api_key_requests"]
    assert after == {
        "limit": before["limit"] - 1,
        "window_seconds": before["window_seconds"],
        "source": "org",
    }
    # The store's usage is shown beside its quotas.
    async with console.http("anna") as anna:
        usage = (await anna.get("/store/usage")).json()
    await expect(page.locator("#store-usage")).to_contain_text(f"{usage['items']} items")


async def test_a_channels_secrets_never_come_back_to_the_page(page: Page, console: ConsoleServer):
    tag = uuid.uuid4().hex[:8]
    secrets = {
        "signing_secret": f"signing-{tag}-s3cret",
        "bot_token": f"xoxb-{tag}-first",
        "edited": f"xoxb-{tag}-second",
    }
    answers: list[Response] = []
    page.on("response", lambda answer: answers.append(answer))
    await sign_in(page, console, "anna", "admin")
    form = page.locator("#channel-create")
    await form.locator("select[name=type]").select_option("slack")
    await form.locator("input[name=name]").fill(f"slack-{tag}")
    await form.locator("input[name=team_id]").fill(f"T{tag}")
    for field in ("signing_secret", "bot_token"):
        assert await form.locator(f"input[name={field}]").get_attribute("type") == "password"
        await form.locator(f"input[name={field}]").fill(secrets[field])
    await form.locator("button[type=submit]").click()
    row = page.locator("#admin-channels tr[data-channel]", has_text=f"slack-{tag}")
    await expect(row.locator(".secrets")).to_have_text("bot_token setsigning_secret set")
    assert await form.locator("input[name=signing_secret]").input_value() == ""

    # A new bot token through the edit form: written, not shown either.
    await row.locator("button.edit").click()
    editor = page.locator("#channel-edit form")
    await editor.locator("input[name=bot_token]").fill(secrets["edited"])
    await editor.locator("button[type=submit]").click()
    await expect(page.locator("#channel-edit form")).to_have_count(0)

    async with console.http("anna") as anna:
        channels = (await anna.get(f"/orgs/{console.org_a}/channels")).json()
    made = next(c for c in channels if c["name"] == f"slack-{tag}")
    assert made["config"] == {"team_id": f"T{tag}"}
    assert made["secrets_set"] == ["bot_token", "signing_secret"]
    shown = await page.content()
    values = await page.eval_on_selector_all("input", "inputs => inputs.map(i => i.value)")
    bodies = [await a.text() for a in answers if urlsplit(a.url).path.startswith("/orgs/")]
    assert any(f"slack-{tag}" in body for body in bodies)  # the page did read the channel
    for secret in secrets.values():
        assert secret not in shown
        assert all(secret not in value for value in values)
        assert all(secret not in body for body in bodies)

    await row.locator("button.remove").click()
    await _confirm(page)
    await expect(row).to_have_count(0)
    async with console.http("anna") as anna:
        gone = await anna.get(f"/orgs/{console.org_a}/channels/{made['channel_id']}")
    assert gone.status_code == 404


async def test_a_member_has_no_admin_page_and_makes_no_admin_call(
    page: Page, console: ConsoleServer
):
    paths: list[str] = []
    page.on("request", lambda request: paths.append(urlsplit(request.url).path))
    await sign_in(page, console, "alice", "admin")
    assert await page.locator("#nav a[data-view=admin]").count() == 0
    await expect(page.locator("#admin-denied")).to_contain_text("admins and owners only")
    assert await page.locator(".admin-panel").count() == 0
    assert "/me" in paths  # the recorder saw the page's API calls
    assert [path for path in paths if path.startswith("/orgs")] == []
