"""Run events: LangGraph stream chunks encoded as the LangGraph API sends them, kept in a
Valkey Stream per run so any process can serve, join or resume them (Last-Event-ID).

The stream `{org_id}:run:<run_id>` holds one entry per event (`event`, `data` = JSON
bytes); entry ids (`<ms>-<seq>`) are the SSE event ids. Entries named `__…__` are ours
(`__created__` when the run is queued, `__end__` when it finished) and never reach a client.
Clients read the streams through the process's `stream_hub.StreamHub`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from langchain_core.messages import (
    AIMessageChunk,
    BaseMessage,
    BaseMessageChunk,
    ToolMessageChunk,
    convert_to_messages,
    message_chunk_to_message,
)
from langgraph.errors import (
    EmptyInputError,
    GraphBubbleUp,
    GraphRecursionError,
    InvalidUpdateError,
    TaskNotFound,
)
from langgraph.types import Send
from starlette.exceptions import HTTPException

from tenantgraph.ephemeral.client import VALKEY_DOWN
from tenantgraph.errors import InvalidInput
from tenantgraph.scope import KeyKind, Principal, redis_key

__all__ = [
    "CREATED",
    "DEFAULT_TTL_SECONDS",
    "END",
    "STREAM_MODES",
    "RunEvent",
    "RunResult",
    "StreamEncoder",
    "check_event_id",
    "created_entry",
    "dumps",
    "end_entry",
    "error_payload",
    "format_sse",
    "mark_created",
    "may_read",
    "metadata_event",
    "mode_matches",
    "publish_end",
    "run_events_key",
]

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 3600
STREAM_MODES = frozenset(
    {
        "values",
        "updates",
        "messages",
        "messages-tuple",
        "custom",
        "events",
        "debug",
        "checkpoints",
        "tasks",
    }
)
CREATED, END = b"__created__", b"__end__"
# Exceptions whose message reaches the client; others say "An internal error occurred"
# (the LangGraph API's rule: graph code must not leak internals through the stream).
_PUBLIC_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    RuntimeError,
    RecursionError,
    TimeoutError,
    InvalidUpdateError,
    GraphBubbleUp,
    GraphRecursionError,
    EmptyInputError,
    TaskNotFound,
    HTTPException,
)


class RunEvent(NamedTuple):
    """One event of a run: its stream id, SSE event name and JSON data (bytes, as sent)."""

    id: str
    event: str
    data: bytes

    def json(self) -> Any:
        return orjson.loads(self.data)


class RunResult:
    """What `wait` and `join` answer for a run (API §3.3): the last `values` event with
    every `__interrupt__` merged in, or `{"__error__": …}`. Fed the run's events in
    order, by a stream reader or by the worker executing the run."""

    __slots__ = ("error", "interrupts", "values")

    def __init__(self) -> None:
        self.values: Any = None
        self.interrupts: list[Any] = []
        self.error: Any = None

    def add(self, event: str, data: bytes) -> None:
        if event == "metadata":  # an execution starts (again): a retry's result replaces it
            self.values, self.interrupts, self.error = None, [], None
        elif event == "values":
            self.values = orjson.loads(data)
            if isinstance(self.values, dict) and "__interrupt__" in self.values:
                self.interrupts.extend(self.values.pop("__interrupt__"))
        elif event == "error":
            self.error = orjson.loads(data)

    def body(self) -> Any:
        if self.error is not None:
            return {"__error__": self.error}
        body = {} if self.values is None else self.values
        if self.interrupts and isinstance(body, dict):
            body["__interrupt__"] = self.interrupts
        return body


def run_events_key(principal: Principal, run_id: uuid.UUID | str) -> str:
    return redis_key(principal.org_id, KeyKind.RUN_EVENTS, str(run_id))


# --- encoding ------------------------------------------------------------------------


def error_payload(exc: BaseException) -> dict[str, str]:
    message = str(exc) if isinstance(exc, _PUBLIC_ERRORS) else "An internal error occurred"
    return {"error": type(exc).__name__, "message": message}


def _default(obj: Any) -> Any:
    if isinstance(obj, Send):
        return {"node": obj.node, "args": obj.arg}
    if hasattr(obj, "model_dump") and not isinstance(obj, type):
        return obj.model_dump()
    if hasattr(obj, "_asdict") and not isinstance(obj, type):
        return obj._asdict()
    if isinstance(obj, BaseException):
        return error_payload(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, Decimal):
        return float(obj)
    return str(obj)


def dumps(value: Any) -> bytes:
    """JSON as the LangGraph API writes it (messages as their dicts, Send, errors …)."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _debug(data: Any) -> Any:
    """A `debug` event as langgraph-api sends it: a checkpoint names its `checkpoint` and
    `parent_checkpoint`, and its tasks their subgraph's `checkpoint` (not its `state`)."""
    from tenantgraph.runtime.state_values import checkpoint_of  # it imports this module

    if not isinstance(data, dict) or data.get("type") != "checkpoint":
        return data
    payload = data["payload"]
    tasks = []
    for task in payload.get("tasks", []):
        state = task.get("state")
        configurable = state.get("configurable") if isinstance(state, dict) else None
        if configurable:
            task = {**{k: v for k, v in task.items() if k != "state"}, "checkpoint": configurable}
        tasks.append(task)
    return {
        **data,
        "payload": {
            **payload,
            "checkpoint": checkpoint_of(payload.get("config")),
            "parent_checkpoint": checkpoint_of(payload.get("parent_config")),
            "tasks": tasks,
        },
    }


@dataclass
class StreamEncoder:
    """Turns `astream` chunks into `(event, data)` pairs named as the LangGraph API names them.

    `messages-tuple` is sent as event `messages` with `[message, metadata]`; `messages`
    becomes `messages/metadata` once per message id, then `messages/partial` (chunks,
    accumulated) or `messages/complete`; subgraph events are `<mode>|<ns>|…`.
    """

    stream_mode: Sequence[str]
    subgraphs: bool = False
    _messages: dict[str, BaseMessage] = field(default_factory=dict)

    @property
    def graph_modes(self) -> list[str]:
        """The modes to ask LangGraph for (events come from astream_events instead)."""
        modes = {"messages" if m == "messages-tuple" else m for m in self.stream_mode}
        modes.discard("events")
        return sorted(modes) or ["values"]

    @property
    def wants_events(self) -> bool:
        return "events" in self.stream_mode

    def encode(self, chunk: Any) -> Iterable[tuple[str, Any]]:
        """One raw chunk of `astream(stream_mode=[…], subgraphs=…)` to zero or more events."""
        if self.subgraphs:
            ns, mode, data = chunk
        else:
            (mode, data), ns = chunk, ()
        suffix = "".join(f"|{part}" for part in ns)
        if mode == "messages":
            if "messages-tuple" in self.stream_mode:
                yield f"messages{suffix}", list(data)
            elif "messages" in self.stream_mode:
                yield from self._accumulate(data)
        elif mode == "debug" and mode in self.stream_mode:
            yield f"debug{suffix}", _debug(data)
        elif mode in self.stream_mode:
            yield f"{mode}{suffix}", data

    def _accumulate(self, data: tuple[Any, dict[str, Any]]) -> Iterable[tuple[str, Any]]:
        raw, meta = data
        is_chunk = False
        if isinstance(raw, dict):
            kind = f"{raw.get('type', '')}{raw.get('role', '')}".lower()
            if "chunk" in kind:
                cls = (
                    AIMessageChunk
                    if "ai" in kind
                    else ToolMessageChunk
                    if "tool" in kind
                    else BaseMessageChunk
                )
                msg, is_chunk = cls(**raw), True
            else:
                msg = convert_to_messages([raw])[0]
        else:
            msg = raw
        if msg.id in self._messages:
            self._messages[msg.id] += msg
        else:
            self._messages[msg.id] = msg
            yield "messages/metadata", {msg.id: {"metadata": meta}}
        current = self._messages[msg.id]
        name = "messages/partial" if isinstance(msg, BaseMessageChunk) else "messages/complete"
        yield name, [current if is_chunk else message_chunk_to_message(current)]


_STREAM_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_STREAM_ID_MAX = 2**64 - 1


def check_event_id(raw: str) -> str:
    """A client's `Last-Event-ID` if it is a stream entry id (`<ms>-<seq>` or `<ms>`, each
    below 2^64), else InvalidInput: checked before a stream starts, not half way through."""
    match = _STREAM_ID.fullmatch(raw)
    if match is None or any(int(part) > _STREAM_ID_MAX for part in match.groups("0")):
        raise InvalidInput(f"Last-Event-ID {raw!r} is not an event id of this stream")
    return raw


def mode_matches(event: str, modes: Iterable[str]) -> bool:
    """Whether a join that asked for `modes` gets `event` (no modes: every event)."""
    wanted = set(modes)
    if not wanted:
        return True
    base = event.split("|", 1)[0]
    if base in wanted or base == "metadata" or base == "error":
        return True
    return base.startswith("messages") and bool(wanted & {"messages", "messages-tuple"})


def format_sse(event: RunEvent, *, with_id: bool = True) -> bytes:
    """One SSE frame as the LangGraph API writes it (`id:` only for resumable streams, and
    for events of the stream: one rebuilt from Postgres has none)."""
    frame = b"event: " + event.event.encode() + b"\r\ndata: " + event.data + b"\r\n"
    if with_id and event.id:
        frame += b"id: " + event.id.encode() + b"\r\n"
    return frame + b"\r\n"


# --- the Valkey stream -----------------------------------------------------------------


async def _append(
    redis: aioredis.Redis, key: str, entries: Sequence[tuple[bytes, bytes]], ttl: int
) -> None:
    """Append `(event, data)` entries in one round trip (a run's executor appends through
    runtime/publisher.py, which waits out Valkey outages)."""
    # No MULTI needed: a reader never depends on the TTL being set.
    async with redis.pipeline(transaction=False) as pipe:
        for event, data in entries:
            pipe.xadd(key, {b"event": event, b"data": data})
        pipe.expire(key, ttl)
        await pipe.execute()


def metadata_event(
    run_id: uuid.UUID | str,
    attempt: int,
    resumed_from: str | None = None,
    feedback_tokens: dict[str, str] | None = None,
) -> bytes:
    """The data of the `metadata` event that starts each execution of a run; an execution
    that resumes from a checkpoint the run saved before names it (`resumed_from`), so a
    client knows the events that follow replay from there. A run created with feedback
    keys carries its tokens, so a browser that streams it can give feedback."""
    data: dict[str, Any] = {"run_id": str(run_id), "attempt": attempt}
    if resumed_from is not None:
        data["resumed_from"] = resumed_from
    if feedback_tokens:
        data["feedback_tokens"] = feedback_tokens
    return dumps(data)


def created_entry(principal: Principal, readers: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """The stream's opening entry: who may read it besides the org's admins (the run's
    creator, `principal`, and `readers`, e.g. the thread's owner)."""
    return CREATED, dumps({"readers": sorted({principal.user_id, *readers})})


def end_entry(run_id: uuid.UUID | str, status: str) -> tuple[bytes, bytes]:
    """The stream's closing entry: readers stop here."""
    return END, dumps({"run_id": str(run_id), "status": status})


async def mark_created(
    redis: aioredis.Redis,
    principal: Principal,
    run_id: uuid.UUID | str,
    *,
    readers: Iterable[str] = (),
    started: bool = False,
    ttl: int = DEFAULT_TTL_SECONDS,
    feedback_tokens: dict[str, str] | None = None,
) -> None:
    """Open the run's stream when it is queued, so a reader waits for it to start. The
    entry names who may read it besides the org's admins: the run's creator (`principal`)
    and `readers` (the thread's owner). `started`: the run was claimed at its creation,
    so its first `metadata` event (attempt 1) goes out with the same round trip."""
    entries = [created_entry(principal, readers)]
    if started:
        entries.append((b"metadata", metadata_event(run_id, 1, None, feedback_tokens)))
    await _append(redis, run_events_key(principal, run_id), entries, ttl)


async def may_read(redis: aioredis.Redis, key: str, principal: Principal) -> bool:
    """Whether the stream `key` exists and `principal` may read it (its `__created__` entry
    names the readers besides the org's admins)."""
    first = await redis.xrange(key, count=1)
    if not first or first[0][1][b"event"] != CREATED:
        return False
    readers = orjson.loads(first[0][1][b"data"])["readers"]
    return principal.sees_all_users or principal.user_id in readers


async def publish_end(
    redis: aioredis.Redis,
    principal: Principal,
    run_id: uuid.UUID | str,
    status: str,
    *,
    ttl: int = DEFAULT_TTL_SECONDS,
) -> None:
    """Close the run's stream: readers stop here. After the run's end is recorded, so with
    Valkey out it is skipped (logged): readers then follow the run's status in Postgres
    (services/run_results.py), and the request that ended the run still succeeds."""
    try:
        await _append(redis, run_events_key(principal, run_id), [end_entry(run_id, status)], ttl)
    except VALKEY_DOWN as exc:
        log.warning("run %s: no end marker in its stream, Valkey is out (%r)", run_id, exc)
