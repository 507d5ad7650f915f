"""The deliberate differences between tenantgraph and `langgraph dev`: each is reported as
documented, with its reason, instead of failing the run.

An entry matches a difference when the SDK (`"python"`, `"js"` or `"*"`), the call label, the
path (list indexes written `[*]`; `status` and `error` for those two columns) and the kind
(`missing`: only langgraph dev has it, `extra`: only tenantgraph, `value`, or `*`) all match;
`call` and `path` are shell-style patterns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deliberate:
    call: str
    path: str
    kind: str
    reason: str
    sdk: str = "*"


NO_AUTH = (
    "langgraph dev runs without authentication, so its user id is the empty string; every"
    " tenantgraph request has an authenticated user (here `dev`)"
)
DELIBERATE: list[Deliberate] = [
    Deliberate(
        "*",
        "*.metadata.owner",
        "extra",
        "tenantgraph stamps the creator of a thread into its metadata (threads belong to the"
        " user who made them); an added key, which clients ignore",
    ),
    Deliberate(
        "*",
        "*.metadata.org_id",
        "extra",
        "tenantgraph writes the caller's org into `configurable`, and LangGraph copies"
        " `configurable` into checkpoint metadata; an added key",
    ),
    Deliberate(
        "*",
        "*.metadata.user_id",
        "extra",
        "tenantgraph writes the caller's user into `configurable` on every write, state"
        " updates included, and LangGraph copies it into checkpoint metadata; an added key",
    ),
    Deliberate("*", "*.user_id", "value", NO_AUTH),
    Deliberate("*", "*.langgraph_auth_user_id", "value", NO_AUTH),
    Deliberate(
        "*:*",
        "$.detail",
        "value",
        "error messages are each server's own wording (tenantgraph names the object); the"
        " status and the SDK's error class, compared separately, are what clients act on",
    ),
    Deliberate(
        "*",
        "*.langgraph_auth_user",
        "value",
        "graphs get the verified caller (identity, org, role, permissions) where langgraph dev"
        " without auth sends null: a multi-tenant graph needs the tenant",
    ),
    Deliberate(
        "*",
        "*.configurable.org_id",
        "extra",
        "tenantgraph writes the caller's org into `configurable` for the graphs; an added key",
    ),
    Deliberate(
        "*",
        "*.configurable.__*__",
        "missing",
        "langgraph-api's internal timing keys (`__after_seconds__`, `__request_start_time_ms__`)"
        " are its queue's bookkeeping; graphs and clients do not read them",
    ),
    Deliberate(
        "*",
        "*.configurable.__pregel_*",
        "missing",
        "LangGraph's internal `__pregel_…` keys that langgraph-api's worker leaves in a stored"
        " run's config; tenantgraph keeps the run's kwargs as created",
    ),
    Deliberate(
        "*",
        "*.kwargs.config.metadata.*",
        "missing",
        "langgraph-api's worker writes its host, plan, URL, versions and attempt into the"
        " stored run's kwargs while it runs; tenantgraph keeps the kwargs as created (the graph"
        " still gets `run_attempt` and the versions in its config)",
    ),
    Deliberate(
        "*",
        "*.langgraph_api_version",
        "value",
        "tenantgraph's own version, as `/info` reports it, is the API version it serves",
    ),
    Deliberate(
        "*",
        "*.langgraph_api_url",
        "missing",
        "the public URL is the operator's (behind their proxy); tenantgraph does not guess it",
    ),
    Deliberate("*", "*.langgraph_plan", "missing", "there is no LangGraph Platform plan"),
    Deliberate(
        "*",
        "*.on_completion",
        "extra",
        "a run's kwargs also say what happens to a stateless run's thread (`keep`/`delete`);"
        " an added key",
    ),
    Deliberate(
        "*",
        "*.on_run_completed",
        "extra",
        "a stateless cron's payload keeps its `on_run_completed`; an added key",
    ),
    Deliberate(
        "*",
        "*.interrupts",
        "extra",
        "threads keep `interrupts`: langgraph-sdk's `Thread` type still declares it, and UIs"
        " written for earlier servers read it; an added key",
    ),
    Deliberate(
        "*",
        "*.error",
        "extra",
        "threads keep their last run's `error` (null when it succeeded); an added key",
    ),
    Deliberate(
        "threads.copy",
        "$.values",
        "extra",
        "a copy is answered with the thread's fields, its state included (langgraph dev answers"
        " the copy's bare row); an added key",
    ),
    Deliberate(
        "threads.copy",
        "$.config.configurable",
        "extra",
        "a copy keeps the source's kept config (empty here); an added key",
    ),
    Deliberate(
        "threads.get*tate:checkpoint",
        "$.checkpoint.checkpoint_ns",
        "extra",
        "the state's `checkpoint` always names its namespace, also when it was asked for by"
        " id; an added key",
    ),
    Deliberate(
        "threads.get*tate:subgraphs",
        "$.tasks*.state.metadata.*",
        "missing",
        "a subgraph task's state carries the metadata of the subgraph's own checkpoint, where"
        " langgraph-api also copies the parent task's (`langgraph_node`, `langgraph_path`,"
        " `checkpoint_map`, …); the task itself names its node and path",
    ),
    Deliberate(
        "runs.stream",
        "$*.data*.owner",
        "extra",
        "checkpoint metadata in `debug` events carries the thread owner (see `metadata.owner`)",
    ),
    Deliberate(
        "runs.cancel",
        "$.*",
        "extra",
        "`cancel(wait=True)` answers the state the cancelled run had checkpointed, as `join`"
        " of an interrupted run does; langgraph dev answers an empty body",
    ),
    Deliberate(
        "runs.create*atch",
        "*.graph_id",
        "extra",
        "every run's metadata names its graph, stateless batch runs too; an added key",
    ),
    Deliberate(
        "assistants.get*chemas",
        "$.state_schema.title",
        "value",
        "the JSON schema's title is the name pydantic gives the state model; clients read the"
        " properties, not the title",
    ),
    Deliberate(
        "threads.join*tream",
        "$*",
        "*",
        "langgraph-api reads the thread stream's modes from `stream_modes` and ignores the"
        " SDK's `stream_mode`; tenantgraph also honours `stream_mode`, so a client asking for"
        " `values` gets only those (with each run's start and `run_done`)",
    ),
    Deliberate(
        "threads.stream",
        "*",
        "*",
        "the SDK's v3 thread protocol (`/threads/{id}/commands`, `/stream/events`) is not"
        " built: 404",
    ),
]
