"""The console's shell in Chromium: served at /ui with a strict CSP, signs in with a key
(kept in sessionStorage only), shows the caller, hides the admin page from members, signs
out; and loads with the network cut, no request leaving loopback."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Browser, Page

from .conftest import CHROMIUM, ConsoleServer, sign_in

CONSOLE = Path(__file__).resolve().parents[1] / "src" / "tenantgraph" / "console"


async def test_the_page_is_served_with_a_csp_without_inline_script(console: ConsoleServer):
    async with httpx.AsyncClient(base_url=console.url) as client:
        moved = await client.get("/ui")
        page = await client.get("/ui/")
        module = await client.get("/ui/app.js")
        missing = await client.get("/ui/..%2F..%2F__init__.py")
        unknown = await client.get("/ui/secrets.py")
    assert moved.status_code == 308 and moved.headers["location"] == "/ui/"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert module.headers["content-type"].startswith("text/javascript")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert missing.status_code == unknown.status_code == 404
    cached = await httpx.AsyncClient(base_url=console.url).get(
        "/ui/app.js", headers={"If-None-Match": module.headers["etag"]}
    )
    assert cached.status_code == 304


def test_no_console_file_writes_markup():
    """Values reach the page as text (dom.js); no file builds HTML from strings."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in CONSOLE.rglob("*.js")
        for line in path.read_text().splitlines()
        if sinks.search(line) and not line.lstrip().startswith("//")
    ]
    assert offenders == []


async def test_sign_in_shows_the_caller_and_sign_out_forgets_the_key(
    page: Page, console: ConsoleServer
):
    await sign_in(page, console, "anna")
    assert await page.inner_text("#who .identity") == f"{console.org_a} · anna · admin"
    assert await page.locator("#nav a[data-view=admin]").count() == 1
    stored = await page.evaluate("sessionStorage.getItem('tenantgraph.session')")
    assert console.keys["anna"] in stored
    assert await page.evaluate("document.cookie") == ""
    assert await page.evaluate("localStorage.length") == 0
    await page.click("#sign-out")
    await page.wait_for_selector("#sign-in")
    assert await page.evaluate("sessionStorage.getItem('tenantgraph.session')") is None


async def test_a_member_has_no_admin_page(page: Page, console: ConsoleServer):
    await sign_in(page, console, "alice")
    assert await page.inner_text("#who .identity") == f"{console.org_a} · alice · member"
    assert await page.locator("#nav a[data-view=admin]").count() == 0


async def test_a_wrong_key_is_refused_with_the_servers_reason(page: Page, console: ConsoleServer):
    await page.goto(f"{console.url}/ui/")
    await page.fill("#sign-in input[name=credential]", "tg_not-a-key")
    await page.click("#sign-in button[type=submit]")
    alert = page.locator("#sign-in .error")
    await alert.wait_for()
    assert (await alert.inner_text()).startswith("401")
    assert await page.locator("#sign-out").count() == 0


async def test_the_console_loads_with_the_network_cut(browser: Browser, console: ConsoleServer):
    """Chromium resolves no name but loopback's; the page still loads, signs in and draws
    each view, and every request it made went to the server on 127.0.0.1."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        cut = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        page = await cut.new_page()
        hosts: set[str] = set()
        page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        await sign_in(page, console, "anna")
        for view in ("threads", "memory", "feedback", "experiments", "admin"):
            await page.goto(f"{console.url}/ui/#/{view}")
            await page.wait_for_selector(f"section.view-{view}[data-ready]", state="attached")
        await cut.close()
    assert hosts == {urlsplit(console.url).netloc}
    assert failed == []
