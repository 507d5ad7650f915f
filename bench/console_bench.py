"""The web console's page weight and first load, in Chromium on loopback.

Starts `tenantgraph serve` (embedded Postgres and Valkey, the repository's example graphs,
an owner key made with the CLI) and loads `/ui/` `--runs` times per scenario, round-robin:

  cold: a new browser context each time (empty HTTP cache, the credential put in its
        sessionStorage before the page runs, as after signing in);
  warm: the same page reloaded (the HTTP cache revalidates each file: 304s).

First load is navigation start → the view's `data-ready` (its module loaded, its API calls
answered, drawn): median and [min-max]. Page weight is what the Resource Timing API counts:
bytes transferred (headers included; a 304 is its headers) and requests, the page's API
calls among them. The baselines, measured in the same rounds: `GET /ok` (one small JSON
answer: the floor of a navigation here) and the sign-in page (the shell alone: index.html,
CSS, app.js and its modules, no view, no API call).

Run: .venv/bin/python bench/console_bench.py [--runs 15] [--view chat]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.peers import Server, start_tenantgraph, tenantgraph_key  # noqa: E402

from tenantgraph import __version__  # noqa: E402
from tenantgraph.api.console import FILES  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Set before any script of the page runs (CDP, so the page's CSP does not apply): the time
# since navigation start at which `selector` first matches.
WATCH = """
window.__ready = null;
new MutationObserver((_, observer) => {
  if (window.__ready === null && document.querySelector(%s)) {
    window.__ready = performance.now();
    observer.disconnect();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""
ENTRIES = """() => [...performance.getEntriesByType("navigation"),
  ...performance.getEntriesByType("resource")].map((e) => ({
    url: e.name, type: e.initiatorType, transferred: e.transferSize, body: e.encodedBodySize,
    end: e.responseEnd, load: e.loadEventEnd || 0}))"""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    ready: str | None  # the selector that ends a load; None: the load event
    session: str | None = None  # sessionStorage's tenantgraph.session


@dataclass(frozen=True)
class Load:
    ms: float
    entries: list[dict]

    @property
    def transferred(self) -> int:
        return sum(entry["transferred"] for entry in self.entries)


async def measure(page: Page, scenario: Scenario, url: str, *, reload: bool) -> Load:
    if reload:
        await page.reload()
    else:
        await page.goto(url + scenario.path)
    # (wait_for_function would evaluate a string in the page, which its CSP forbids)
    if scenario.ready is None:
        await page.wait_for_load_state("load")
        entries = await page.evaluate(ENTRIES)
        return Load(entries[0]["load"], entries)
    await page.wait_for_selector(scenario.ready, state="attached", timeout=30_000)
    return Load(await page.evaluate("window.__ready"), await page.evaluate(ENTRIES))


async def cold_and_warm(browser: Browser, scenario: Scenario, url: str) -> tuple[Load, Load]:
    context = await browser.new_context()
    try:
        if scenario.session is not None:
            await context.add_init_script(
                f"sessionStorage.setItem('tenantgraph.session', {json.dumps(scenario.session)})"
            )
        if scenario.ready is not None:
            await context.add_init_script(WATCH % json.dumps(scenario.ready))
        page = await context.new_page()
        cold = await measure(page, scenario, url, reload=False)
        warm = await measure(page, scenario, url, reload=True)
        return cold, warm
    finally:
        await context.close()


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f}  [{min(values):.1f}-{max(values):.1f}]"


def report(scenarios: list[Scenario], loads: dict[str, list[tuple[Load, Load]]]) -> None:
    """Per scenario, cold and warm: requests, bytes and first load (medians), and the load
    as a multiple of the sign-in page's (the shell alone) in the same state."""
    shell = scenarios[1].name
    print(
        f"\n{'scenario':<34}{'requests':>9}{'transferred B':>15}"
        "   first load ms: median [range]   x sign-in page"
    )
    for scenario in scenarios:
        for label, index in (("cold", 0), ("warm", 1)):
            runs = [pair[index] for pair in loads[scenario.name]]
            requests = statistics.median(len(run.entries) for run in runs)
            transferred = statistics.median(run.transferred for run in runs)
            base = statistics.median(pair[index].ms for pair in loads[shell])
            ratio = statistics.median(run.ms for run in runs) / base
            name = f"{scenario.name} ({label})"
            print(
                f"{name:<34}{requests:>9.0f}{transferred:>15,.0f}   "
                f"{spread([r.ms for r in runs]):<30}{ratio:>6.2f}"
            )
    signed_in = scenarios[-1]
    for label, index in (("cold", 0), ("warm", 1)):
        run = loads[signed_in.name][0][index]
        print(f"\n{signed_in.name}, {label}, by resource (first run):")
        print(f"  {'resource':<44}{'kind':<16}{'transferred B':>14}{'body B':>10}")
        for entry in run.entries:
            parts = urlsplit(entry["url"])
            where = parts.path + (f"?{parts.query}" if parts.query else "")
            print(
                f"  {where[:44]:<44}{entry['type']:<16}"
                f"{entry['transferred']:>14,}{entry['body']:>10,}"
            )
        print(f"  {'total':<60}{run.transferred:>14,}{sum(e['body'] for e in run.entries):>10,}")


async def run(args: argparse.Namespace) -> None:
    if f"views/{args.view}.js" not in FILES:
        sys.exit(f"no console view {args.view!r} in this tree (views/{args.view}.js)")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as scratch:
        work = Path(scratch)
        inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env = {**inherited, "TENANTGRAPH_DATA_DIR": str(work / "tenantgraph")}
        tenantgraph = [sys.executable, "-m", "tenantgraph.cli"]
        key = tenantgraph_key(tenantgraph, env, "bench", "bench")
        server: Server = start_tenantgraph(tenantgraph, ROOT / "tenantgraph.json", work, env)
        try:
            server.wait_ready()
            session = json.dumps({"credential": key, "org": None})
            scenarios = [
                Scenario("baseline: GET /ok", "/ok", None),
                Scenario("baseline: sign-in page", "/ui/", "#sign-in"),
                Scenario(
                    f"signed in: #/{args.view}",
                    f"/ui/#/{args.view}",
                    f"section.view-{args.view}[data-ready]",
                    session,
                ),
            ]
            loads: dict[str, list[tuple[Load, Load]]] = {s.name: [] for s in scenarios}
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM)
                print(
                    f"console_bench: tenantgraph {__version__}, Chromium {browser.version}, "
                    f"loopback, {args.runs} runs per scenario, round-robin"
                )
                for scenario in scenarios:  # one unmeasured load each: imports, pools warm
                    await cold_and_warm(browser, scenario, server.url)
                for _ in range(args.runs):
                    for scenario in scenarios:
                        loads[scenario.name].append(
                            await cold_and_warm(browser, scenario, server.url)
                        )
                await browser.close()
            report(scenarios, loads)
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--view", default="chat", help="the signed-in view loaded (chat: the first one shown)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
