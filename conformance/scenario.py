"""The scenario, through `langgraph-sdk` (Python): every method of the five clients, with
their usual arguments and a few error cases. `js/scenario.mjs` is the same scenario through
`@langchain/langgraph-sdk` and uses the same call labels.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from langgraph_sdk import get_client

CLIENTS = ("assistants", "threads", "runs", "crons", "store")
HI = {"messages": [{"role": "user", "content": "hello"}]}
# Each SDK's scenario searches only for what it made (both run against the same servers).
SUITE = "conformance-python"
MISSING = "00000000-0000-4000-8000-000000000000"
FIXED_THREAD = "11111111-1111-4111-8111-111111111111"
# Long enough for the calls that catch a run mid-way; the scenario never waits it out.
SLOW = {"configurable": {"steps": 100, "delay": 0.1}}


def sdk_methods() -> list[str]:
    """Every public method of the clients `get_client` builds, as `client.method`."""
    client = get_client(url="http://127.0.0.1:9", api_key=None)
    return sorted(
        f"{name}.{method}"
        for name in CLIENTS
        for method, _ in inspect.getmembers(type(getattr(client, name)), inspect.isfunction)
        if not method.startswith("_")
    )


class Session:
    """One server: its client, the records of the calls so far and the ids named so far."""

    def __init__(self, url: str, api_key: str | None):
        self.statuses: list[int] = []
        self.answered = asyncio.Event()  # set by each HTTP answer
        self.client = get_client(url=url, api_key=api_key, timeout=60)

        async def seen(response: httpx.Response) -> None:
            self.statuses.append(response.status_code)
            self.answered.set()

        self.client.http.client.event_hooks["response"].append(seen)
        self.records: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}

    def name(self, value: str | None, name: str) -> None:
        if isinstance(value, str):
            self.names[value.lower()] = name

    async def call(
        self, call: str, method: str, work: Callable[[], Awaitable[Any]], limit: float = 60
    ) -> Any:
        """Run one SDK call and record it; returns its result, or None when it raised."""
        self.statuses = []
        self.answered.clear()
        error, body, result = None, None, None
        try:
            result = await asyncio.wait_for(work(), limit)
            body = result
        except Exception as exc:  # the error is what is compared
            error = type(exc).__name__
            body = getattr(exc, "body", None) or str(exc)
        self.records.append(
            {
                "call": call,
                "method": method,
                "statuses": self.statuses,
                "error": error,
                "body": body,
            }
        )
        return result


async def _collect(stream: Any, until: Callable[[Any], bool] | None = None) -> list[dict]:
    parts = []
    async for part in stream:
        parts.append({"event": part.event, "data": part.data})
        if until is not None and until(part):
            break
    return parts


async def run_scenario(url: str, api_key: str | None) -> Session:
    s = Session(url, api_key)
    await assistants(s)
    thread = await threads(s)
    await runs(s, thread)
    await crons(s, thread)
    await store(s)
    await s.call("threads.delete", "threads.delete", lambda: s.client.threads.delete(thread))
    await s.call("threads.get:deleted", "threads.get", lambda: s.client.threads.get(thread))
    await s.client.http.client.aclose()
    return s


async def assistants(s: Session) -> None:
    a = s.client.assistants
    found = await s.call(
        "assistants.search:graph", "assistants.search", lambda: a.search(graph_id="agent")
    )
    if found:
        s.name(found[0]["assistant_id"], "system_agent")
    # Where a server lists no system assistant, the graph's name stands in for it.
    nested = (await a.search(graph_id="nested")) or [{"assistant_id": "nested"}]
    s.name(nested[0]["assistant_id"], "system_nested")
    await s.call("assistants.count:graph", "assistants.count", lambda: a.count(graph_id="agent"))
    made = await s.call(
        "assistants.create",
        "assistants.create",
        lambda: a.create(
            "agent",
            config={"configurable": {"tone": "dry"}},
            metadata={"suite": SUITE},
            name="conformance",
            description="first",
        ),
    )
    assistant = made["assistant_id"] if made else MISSING
    s.name(assistant, "assistant")
    await s.call(
        "assistants.create:existing",
        "assistants.create",
        lambda: a.create("agent", assistant_id=assistant, if_exists="do_nothing"),
    )
    await s.call(
        "assistants.create:unknown graph", "assistants.create", lambda: a.create("no-such-graph")
    )
    await s.call("assistants.get", "assistants.get", lambda: a.get(assistant))
    await s.call("assistants.get:missing", "assistants.get", lambda: a.get(MISSING))
    await s.call(
        "assistants.update",
        "assistants.update",
        lambda: a.update(assistant, metadata={"suite": SUITE, "v": 2}, name="renamed"),
    )
    await s.call(
        "assistants.get_versions", "assistants.get_versions", lambda: a.get_versions(assistant)
    )
    await s.call(
        "assistants.set_latest", "assistants.set_latest", lambda: a.set_latest(assistant, 1)
    )
    await s.call(
        "assistants.search:metadata",
        "assistants.search",
        lambda: a.search(metadata={"suite": SUITE}, sort_by="name", sort_order="asc"),
    )
    await s.call(
        "assistants.count:metadata",
        "assistants.count",
        lambda: a.count(metadata={"suite": SUITE}),
    )
    await s.call("assistants.get_graph", "assistants.get_graph", lambda: a.get_graph(assistant))
    await s.call(
        "assistants.get_graph:xray",
        "assistants.get_graph",
        lambda: a.get_graph(nested[0]["assistant_id"], xray=True),
    )
    await s.call(
        "assistants.get_schemas", "assistants.get_schemas", lambda: a.get_schemas(assistant)
    )
    await s.call(
        "assistants.get_subgraphs",
        "assistants.get_subgraphs",
        lambda: a.get_subgraphs(nested[0]["assistant_id"], recurse=True),
    )
    await s.call("assistants.delete", "assistants.delete", lambda: a.delete(assistant))
    await s.call("assistants.get:deleted", "assistants.get", lambda: a.get(assistant))


async def threads(s: Session) -> str:
    t, r = s.client.threads, s.client.runs
    made = await s.call(
        "threads.create", "threads.create", lambda: t.create(metadata={"suite": SUITE})
    )
    thread = made["thread_id"] if made else MISSING
    s.name(thread, "thread")
    s.name(FIXED_THREAD, "fixed_thread")
    await s.call(
        "threads.create:with id", "threads.create", lambda: t.create(thread_id=FIXED_THREAD)
    )
    await s.call(
        "threads.create:existing",
        "threads.create",
        lambda: t.create(thread_id=FIXED_THREAD, if_exists="do_nothing"),
    )
    await s.call(
        "threads.create:conflict", "threads.create", lambda: t.create(thread_id=FIXED_THREAD)
    )
    await s.call("threads.get", "threads.get", lambda: t.get(thread))
    await s.call("threads.get:missing", "threads.get", lambda: t.get(MISSING))
    await s.call("threads.update", "threads.update", lambda: t.update(thread, metadata={"step": 1}))
    await s.call(
        "threads.search:metadata",
        "threads.search",
        lambda: t.search(metadata={"suite": SUITE}),
    )
    await s.call(
        "threads.search:ids", "threads.search", lambda: t.search(ids=[thread, FIXED_THREAD])
    )
    await s.call("threads.count", "threads.count", lambda: t.count(metadata={"suite": SUITE}))
    await s.call("runs.wait", "runs.wait", lambda: r.wait(thread, "agent", input=HI))
    await s.call("threads.get:after a run", "threads.get", lambda: t.get(thread))
    await s.call("threads.get_state", "threads.get_state", lambda: t.get_state(thread))
    history = await s.call(
        "threads.get_history", "threads.get_history", lambda: t.get_history(thread, limit=3)
    )
    first = history[-1]["checkpoint"] if history else {"checkpoint_id": MISSING}
    s.name(first.get("checkpoint_id"), "first_checkpoint")
    await s.call(
        "threads.get_state:checkpoint",
        "threads.get_state",
        lambda: t.get_state(thread, checkpoint_id=first["checkpoint_id"]),
    )
    reply = {"messages": [{"role": "ai", "content": "edited", "id": "edited-1"}]}
    await s.call(
        "threads.update_state",
        "threads.update_state",
        lambda: t.update_state(thread, reply, as_node="echo"),
    )
    await s.call("threads.get_state:after update", "threads.get_state", lambda: t.get_state(thread))
    copied = await s.call("threads.copy", "threads.copy", lambda: t.copy(thread))
    s.name(copied and copied.get("thread_id"), "copied_thread")
    if copied:
        await s.call(
            "threads.get_state:copy",
            "threads.get_state",
            lambda: t.get_state(copied["thread_id"]),
        )
        await s.call("threads.prune", "threads.prune", lambda: t.prune([copied["thread_id"]]))
    await s.call("threads.join_stream", "threads.join_stream", lambda: _thread_stream(s, thread))
    await s.call("threads.stream", "threads.stream", lambda: _protocol_stream(s), limit=30)
    await s.call("threads.delete:fixed", "threads.delete", lambda: t.delete(FIXED_THREAD))
    return thread


async def _thread_stream(s: Session, thread: str) -> list[dict]:
    """The thread's stream while a run goes through it, up to that run's last values."""
    parts: list[dict] = []

    async def read() -> None:
        stream = await s.client.threads.join_stream(thread, stream_mode=["values"])
        async for part in stream:
            parts.append({"event": part.event, "data": part.data})
            if part.event == "values" and "echo: again" in str(part.data):
                return

    reader = asyncio.create_task(read())
    try:
        # The run starts once the stream has answered.
        answered = asyncio.create_task(s.answered.wait())
        await asyncio.wait([answered, reader], return_when=asyncio.FIRST_COMPLETED)
        answered.cancel()
        again = {"messages": [{"role": "user", "content": "again"}]}
        await s.client.runs.wait(thread, "agent", input=again)
        await asyncio.wait_for(reader, 20)
    finally:
        reader.cancel()
    return parts


async def _protocol_stream(s: Session) -> Any:
    """The v3 thread stream (`POST /threads/{id}/commands` and `/stream/events`)."""
    async with s.client.threads.stream(FIXED_THREAD, assistant_id="agent") as stream:
        started = await stream.run.start(input=HI)
        s.name(started.get("run_id"), "protocol_run")
        return {"start": started, "output": await stream.output}


async def runs(s: Session, thread: str) -> None:
    r, t = s.client.runs, s.client.threads
    made = await s.call(
        "runs.create",
        "runs.create",
        lambda: r.create(thread, "agent", input=HI, metadata={"suite": SUITE}),
    )
    run = made["run_id"] if made else MISSING
    s.name(run, "run")
    await s.call("runs.join", "runs.join", lambda: r.join(thread, run))
    await s.call("runs.get", "runs.get", lambda: r.get(thread, run))
    await s.call("runs.get:missing", "runs.get", lambda: r.get(thread, MISSING))
    await s.call("runs.list", "runs.list", lambda: r.list(thread, limit=2))
    await s.call(
        "runs.stream",
        "runs.stream",
        lambda: _named_stream(
            s,
            "stream_run",
            r.stream(
                thread, "agent", input=HI, stream_mode=["values", "updates", "messages-tuple"]
            ),
        ),
    )
    await s.call(
        "runs.stream:stateless",
        "runs.stream",
        lambda: _named_stream(s, "stateless_run", r.stream(None, "agent", input=HI)),
    )
    await s.call(
        "runs.stream:custom",
        "runs.stream",
        lambda: _named_stream(
            s, "custom_run", r.stream(None, "custom", input={}, stream_mode="custom")
        ),
    )
    nested = (await t.create())["thread_id"]
    s.name(nested, "nested_thread")
    await s.call(
        "runs.stream:subgraphs",
        "runs.stream",
        lambda: _named_stream(
            s,
            "nested_run",
            r.stream(
                nested,
                "nested",
                input={"topic": "tea"},
                stream_mode="updates",
                stream_subgraphs=True,
            ),
        ),
    )
    await s.call(
        "threads.get_state:subgraphs",
        "threads.get_state",
        lambda: t.get_state(nested, subgraphs=True),
    )
    await s.call("runs.wait:stateless", "runs.wait", lambda: r.wait(None, "agent", input=HI))
    hitl = (await t.create())["thread_id"]
    s.name(hitl, "hitl_thread")
    await s.call("runs.wait:interrupt", "runs.wait", lambda: r.wait(hitl, "hitl", input=HI))
    await s.call(
        "runs.wait:resume", "runs.wait", lambda: r.wait(hitl, "hitl", command={"resume": "yes"})
    )
    await s.call(
        "runs.create_batch",
        "runs.create_batch",
        lambda: r.create_batch(
            [{"assistant_id": "agent", "input": HI}, {"assistant_id": "custom", "input": {}}]
        ),
    )
    slow = (await t.create())["thread_id"]
    s.name(slow, "slow_thread")
    made = await r.create(
        slow,
        "slow",
        input={},
        config={"configurable": {"steps": 3, "delay": 0.05}},
        stream_resumable=True,
    )
    s.name(made["run_id"], "slow_run")
    await s.call(
        "runs.join_stream",
        "runs.join_stream",
        lambda: _collect(r.join_stream(slow, made["run_id"], last_event_id="-1")),
    )
    long = await r.create(slow, "slow", input={}, config=SLOW)
    s.name(long["run_id"], "long_run")
    await s.call("runs.cancel", "runs.cancel", lambda: r.cancel(slow, long["run_id"], wait=True))
    await s.call("runs.get:cancelled", "runs.get", lambda: r.get(slow, long["run_id"]))
    pending = await r.create(slow, "slow", input={}, config=SLOW, after_seconds=3600)
    s.name(pending["run_id"], "pending_run")
    await s.call(
        "runs.cancel_many",
        "runs.cancel_many",
        lambda: r.cancel_many(thread_id=slow, run_ids=[pending["run_id"]]),
    )
    await s.call("runs.get:cancelled many", "runs.get", lambda: r.get(slow, pending["run_id"]))
    await s.call("runs.delete", "runs.delete", lambda: r.delete(slow, long["run_id"]))
    await s.call("runs.get:deleted", "runs.get", lambda: r.get(slow, long["run_id"]))


async def _named_stream(s: Session, name: str, stream: Any) -> list[dict]:
    parts = await _collect(stream)
    for part in parts:
        if part["event"] == "metadata":
            s.name(part["data"].get("run_id"), name)
    return parts


async def crons(s: Session, thread: str) -> None:
    c = s.client.crons
    made = await s.call(
        "crons.create",
        "crons.create",
        lambda: c.create("agent", schedule="0 0 * * *", input=HI, metadata={"suite": SUITE}),
    )
    cron = made["cron_id"] if made else MISSING
    s.name(cron, "cron")
    on_thread = await s.call(
        "crons.create_for_thread",
        "crons.create_for_thread",
        lambda: c.create_for_thread(thread, "agent", schedule="0 0 * * *", input=HI),
    )
    s.name(on_thread and on_thread.get("cron_id"), "thread_cron")
    await s.call(
        "crons.create:bad schedule",
        "crons.create",
        lambda: c.create("agent", schedule="not a schedule"),
    )
    await s.call("crons.search", "crons.search", lambda: c.search(metadata={"suite": SUITE}))
    await s.call("crons.search:thread", "crons.search", lambda: c.search(thread_id=thread))
    await s.call("crons.count", "crons.count", lambda: c.count())
    await s.call("crons.update", "crons.update", lambda: c.update(cron, schedule="0 1 * * *"))
    await s.call("crons.delete", "crons.delete", lambda: c.delete(cron))
    if on_thread:
        await c.delete(on_thread["cron_id"])
    await s.call("crons.count:after delete", "crons.count", lambda: c.count())


async def store(s: Session) -> None:
    st = s.client.store
    ns = ["conformance", "notes"]
    await s.call(
        "store.put_item", "store.put_item", lambda: st.put_item(ns, "k1", {"text": "hello"})
    )
    await s.call("store.get_item", "store.get_item", lambda: st.get_item(ns, "k1"))
    await s.call("store.get_item:missing", "store.get_item", lambda: st.get_item(ns, "nope"))
    await s.call(
        "store.search_items",
        "store.search_items",
        lambda: st.search_items(["conformance"], filter={"text": "hello"}),
    )
    await s.call(
        "store.list_namespaces",
        "store.list_namespaces",
        lambda: st.list_namespaces(prefix=["conformance"]),
    )
    await s.call("store.delete_item", "store.delete_item", lambda: st.delete_item(ns, "k1"))
    await s.call("store.get_item:deleted", "store.get_item", lambda: st.get_item(ns, "k1"))
