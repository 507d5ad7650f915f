"""Tests in a real Chromium (`make test-browser`, which installs Playwright and, as root, the
distribution's Chromium). They use the main suite's session fixtures; the console's tests
share one server (`console`) with two orgs, and a fresh browser context per test (`page`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright
from tests.api_fixtures import mint, start_api_server
from tests.conftest import api_env, data_dir, resources, settings
from tests.servers import create_database

__all__ = ["api_env", "data_dir", "resources", "settings"]

CHROMIUM = "/usr/bin/chromium"
# The console's semantic search runs on the default offline embedder.
STORE = {"index": {"dims": 64, "fields": ["text"]}}


@dataclass(frozen=True)
class ConsoleServer:
    """A server and the credentials of org A (admin anna, members alice and amos) and org B
    (admin bea, member bob): the admins' API keys, the members' JWTs."""

    url: str
    org_a: str
    org_b: str
    keys: dict[str, str]  # user → the credential the browser signs in with

    def http(self, user: str) -> httpx.AsyncClient:
        """The API as `user`, with the credential the browser signs in with."""
        credential = self.keys[user]
        header = "X-Api-Key" if credential.startswith("tg_") else "Authorization"
        value = credential if header == "X-Api-Key" else f"Bearer {credential}"
        return httpx.AsyncClient(base_url=self.url, headers={header: value}, timeout=30)


@pytest.fixture(scope="session")
async def console(resources, api_env, tmp_path_factory) -> AsyncIterator[ConsoleServer]:
    database = await create_database(resources.admin_conninfo, "console")
    server = start_api_server(
        tmp_path_factory.mktemp("console"), store=STORE, **{**api_env, "DATABASE_URL": database}
    )
    suffix = uuid.uuid4().hex[:6]
    org_a, org_b = f"acme-{suffix}", f"globex-{suffix}"
    keys = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for org, admin in ((org_a, "anna"), (org_b, "bea")):
            made = await client.post(
                f"/orgs/{org}/keys",
                json={"name": f"{admin}'s console key", "role": "admin"},
                headers={"Authorization": f"Bearer {mint(org, admin, 'admin')}"},
            )
            assert made.status_code == 200, made.text
            keys[admin] = made.json()["key"]
    # A key acts as the admin who made it: members sign in with a token of their own.
    for org, member in ((org_a, "alice"), (org_a, "amos"), (org_b, "bob")):
        keys[member] = mint(org, member, "member")
    yield ConsoleServer(server.url, org_a, org_b, keys)
    server.terminate()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context (its own sessionStorage) whose page fails the test on a script error
    or a CSP violation the console caused."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    await context.close()
    assert errors == []


async def sign_in(page: Page, console: ConsoleServer, user: str, view: str = "chat") -> None:
    """Open the console, sign in with `user`'s credential and wait for `view` to be shown."""
    await page.goto(f"{console.url}/ui/")
    await page.fill("#sign-in input[name=credential]", console.keys[user])
    await page.click("#sign-in button[type=submit]")
    await page.wait_for_selector("#sign-out")
    await page.goto(f"{console.url}/ui/#/{view}")
    await page.wait_for_selector(f"section.view-{view}[data-ready]", state="attached")


async def photograph(page: Page, name: str) -> None:
    """Save the page as `<name>.png` in `$CONSOLE_SCREENSHOTS` (`make screenshots` sets it
    to docs/console, whose pictures the README shows); without it, nothing."""
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:  # Playwright makes the folder
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
