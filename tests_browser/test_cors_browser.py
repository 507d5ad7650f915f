"""CORS in a real browser: a page served from an allowed origin calls the API with a key
(a preflighted request: `Authorization` and a JSON body) and reads the answers; the same
page from another origin gets nothing, because Chromium blocks it.

The pages come from small HTTP servers of the test on their own ports (an origin is
scheme, host and port), and Chromium is the system's (`/usr/bin/chromium`): Playwright's
own browser download is not used.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator

import pytest
from playwright.async_api import async_playwright
from tests.api_fixtures import mint, start_api_server

CHROMIUM = "/usr/bin/chromium"
PAGE = "<!doctype html><html><head><title>ui</title></head><body>a chat UI</body></html>"

# Runs in the page: create a thread, then find it, as a UI does; the outcome or the error
# the browser gave the page.
CALL_API = """
async ({api, token, tag}) => {
  const headers = {"Authorization": `Bearer ${token}`, "Content-Type": "application/json"};
  try {
    const created = await fetch(`${api}/threads`, {
      method: "POST", headers, body: JSON.stringify({metadata: {tag}}),
    });
    const found = await fetch(`${api}/threads/search`, {
      method: "POST", headers, body: JSON.stringify({metadata: {tag}}),
    });
    return {
      created: created.status,
      found: found.status,
      threads: (await found.json()).map((t) => t.metadata.tag),
      request_id: found.headers.get("x-request-id"),
    };
  } catch (error) {
    return {error: String(error)};
  }
}
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """Two origins serving the same page: (allowed, other)."""
    root = tmp_path_factory.mktemp("pages")
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(_QuietHandler, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def api_url(api_env, pages, tmp_path_factory) -> Iterator[str]:
    allowed, _ = pages
    server = start_api_server(
        tmp_path_factory.mktemp("api"), TENANTGRAPH_CORS_ORIGINS=allowed, **api_env
    )
    yield server.url
    server.terminate()


async def _call_from(page_origin: str, api_url: str, tag: str) -> dict:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{page_origin}/index.html")
            assert await page.title() == "ui"
            args = {"api": api_url, "token": mint("browser-org", "alice"), "tag": tag}
            return await page.evaluate(CALL_API, args)
        finally:
            await browser.close()


async def test_a_page_on_an_allowed_origin_calls_the_api_with_its_key(api_url, pages):
    allowed, _ = pages
    outcome = await _call_from(allowed, api_url, "allowed")
    assert outcome.get("error") is None, outcome
    assert (outcome["created"], outcome["found"]) == (200, 200)
    assert "allowed" in outcome["threads"]
    assert outcome["request_id"]  # an exposed header the page may read


async def test_a_page_on_another_origin_is_blocked_by_the_browser(api_url, pages):
    _, other = pages
    outcome = await _call_from(other, api_url, "other")
    assert outcome == {"error": "TypeError: Failed to fetch"}
