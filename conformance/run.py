"""`make conformance`: the same scenario through the LangGraph SDKs against `langgraph dev`
and against `tenantgraph serve`, compared call by call (README.md says how to read it).

Runs in the harness's own virtualenv (langgraph-cli[inmem], langgraph-sdk); tenantgraph runs
from the project's, started with the command given by `--tenantgraph`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from compare import Comparison, Difference, compare, grouped, merged, normalise
from differences import DELIBERATE
from peers import Server, start_langgraph_dev, start_tenantgraph, tenantgraph_key, write_config
from scenario import run_scenario, sdk_methods

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GRAPHS = {
    "agent": "echo",
    "memory": "memory",
    "hitl": "interrupt",
    "custom": "custom_stream",
    "slow": "slow",
    "nested": "nested",
}
USER = "dev"
# One org per SDK: tenantgraph's org state (its default assistants, say) must not carry
# over from one scenario to the next, as nothing does between two langgraph dev sessions.
ORGS = {"python": "conformance-python", "js": "conformance-js"}


def start(work: Path, tenantgraph: list[str]) -> tuple[Server, Server, dict[str, str]]:
    config = write_config(work, {name: REPO / "examples" / f"{m}.py" for name, m in GRAPHS.items()})
    inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    tg_env = {**inherited, "TENANTGRAPH_DATA_DIR": str(work / "tenantgraph")}
    keys = {sdk: tenantgraph_key(tenantgraph, tg_env, org, USER) for sdk, org in ORGS.items()}
    tg = start_tenantgraph(tenantgraph, config, work, tg_env)
    lg = start_langgraph_dev(
        Path(sys.executable).parent / "langgraph", config, work, inherited, "langgraph-dev.log"
    )
    tg.wait_ready()
    lg.wait_ready()
    return lg, tg, keys


def python_records(lg: Server, tg: Server, key: str) -> tuple[list[dict], list[dict]]:
    expected = asyncio.run(run_scenario(lg.url, None))
    actual = asyncio.run(run_scenario(tg.url, key))
    return (
        [normalise(r, expected.names) for r in expected.records],
        [normalise(r, actual.names) for r in actual.records],
    )


def js_records(lg: Server, tg: Server, key: str) -> tuple[list[dict], list[dict], list[str]]:
    def one(url: str, key: str | None) -> dict[str, Any]:
        done = subprocess.run(
            ["node", str(HERE / "js" / "scenario.mjs"), url, key or ""],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        return json.loads(done.stdout)

    expected, actual = one(lg.url, None), one(tg.url, key)
    return (
        [normalise(r, expected["names"]) for r in expected["records"]],
        [normalise(r, actual["names"]) for r in actual["records"]],
        expected["methods"],
    )


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 240 else text[:237] + "..."


def _where(difference: Difference, count: int) -> str:
    path = difference.wildcard_path() if count > 1 else difference.path
    return f"{path} ({difference.kind}{f', x{count}' if count > 1 else ''})"


def report(sdk: str, expected: list[dict], actual: list[dict], methods: list[str]) -> int:
    """Prints the comparison of one SDK's records; returns how many problems it found."""
    by_call = {r["call"]: r for r in actual}
    results: list[Comparison] = []
    problems = 0
    print(f"\n{'verdict':7} {'call':42} {'status':6} {'error':6} {'keys':6} values")
    for record in expected:
        other = by_call.pop(record["call"], None)
        if other is None:
            print(f"DIFF    {record['call']:42} (tenantgraph's scenario never made this call)")
            problems += 1
            continue
        result = compare(record, other, sdk)
        results.append(result)
        print(
            f"{result.verdict:7} {result.call:42} " + " ".join(f"{c:6}" for c in result.columns())
        )
        numbers = {
            (d.wildcard_path(), d.kind): DELIBERATE.index(e) + 1 for d, e in result.documented
        }
        for d, count in grouped([d for d, _ in result.documented]):
            print(f"          D{numbers[d.wildcard_path(), d.kind]} {_where(d, count)}")
        for d, count in merged(result.undocumented):
            expected = "(absent)" if d.kind == "extra" else _show(d.expected)
            actual = "(absent)" if d.kind == "missing" else _show(d.actual)
            print(f"          {_where(d, count)}: langgraph dev={expected} tenantgraph={actual}")
        if result.broken:
            print(f"          the call failed on langgraph dev: {_show(record['body'])}")
        problems += bool(result.undocumented) or result.broken
    for call in by_call:
        print(f"DIFF    {call:42} (only tenantgraph's scenario made this call)")
        problems += 1
    by_path: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for d, _ in merged(result.undocumented):
            calls = by_path.setdefault((d.wildcard_path(), d.kind), [])
            calls += [] if result.call in calls else [result.call]
    print(f"\n{sdk}: the undocumented differences by path (kind): calls")
    for (path, kind), calls in sorted(by_path.items()):
        print(f"  {path} ({kind}): {', '.join(calls)}")
    covered = {r.method for r in results}
    failing = sorted({r.method for r in results if r.undocumented or r.broken})
    uncovered = sorted(set(methods) - covered)
    agreeing = sorted(covered - set(failing))
    verdicts = [r.verdict for r in results]
    print(f"\n{sdk}: {len(methods)} client methods")
    print(f"  agreeing ({len(agreeing)}): {', '.join(agreeing) or '-'}")
    print(f"  with undocumented differences ({len(failing)}): {', '.join(failing) or '-'}")
    print(f"  uncovered ({len(uncovered)}): {', '.join(uncovered) or '-'}")
    print(
        f"  calls: {len(results)}: {verdicts.count('OK')} agree, {verdicts.count('DOC')} agree"
        f" but for documented differences, {verdicts.count('DIFF')} differ,"
        f" {verdicts.count('BROKEN')} broken"
    )
    return problems + len(uncovered)


def print_deliberate() -> None:
    print("\nDeliberate differences (conformance/differences.py), shown as D<n> under a call:")
    for number, entry in enumerate(DELIBERATE, 1):
        where = f"{entry.path} ({entry.kind}) in calls {entry.call}"
        sdk = "" if entry.sdk == "*" else f", {entry.sdk} SDK only"
        print(f"  D{number} {where}{sdk}: {entry.reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tenantgraph", required=True, help="command that runs the tenantgraph CLI"
    )
    parser.add_argument("--work", type=Path, default=REPO / ".conformance" / "run")
    parser.add_argument("--no-js", action="store_true", help="only the Python SDK")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    lg, tg, keys = start(args.work, shlex.split(args.tenantgraph))
    try:
        print(
            f"langgraph dev: langgraph-api {version('langgraph-api')}, langgraph"
            f" {version('langgraph')} at {lg.url}; tenantgraph at {tg.url}"
        )
        print_deliberate()
        print(f"\n== Python langgraph-sdk {version('langgraph-sdk')} ==")
        problems = report("python", *python_records(lg, tg, keys["python"]), sdk_methods())
        if not args.no_js:
            package = json.loads(
                (
                    HERE / "js" / "node_modules" / "@langchain" / "langgraph-sdk" / "package.json"
                ).read_text()
            )
            print(f"\n== JS @langchain/langgraph-sdk {package['version']} ==")
            problems += report("js", *js_records(lg, tg, keys["js"]))
    finally:
        lg.stop()
        tg.stop()
    print(
        f"\n{problems} problem(s): "
        + ("none undocumented" if not problems else "see DIFF and uncovered above")
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
