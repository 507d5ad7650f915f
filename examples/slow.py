"""A slow graph for cancellation, multitasking and crash tests: ticks `steps` times,
sleeping `delay` seconds per tick (both from `configurable`; defaults 3 and 0.2).

`started` records `<run_id>:<attempt>` each time an execution begins and `finished` the run
id when one completes, so a test can count executions from the thread state.
`configurable.fail` makes the last tick raise ValueError (a run ending in `error`).
"""

import asyncio
import operator
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    started: Annotated[list[str], operator.add]
    ticks: int
    finished: Annotated[list[str], operator.add]


def start(state: State, config: RunnableConfig) -> dict:
    run_id = config["configurable"].get("run_id", "")
    attempt = config["metadata"].get("run_attempt", 1)
    return {"started": [f"{run_id}:{attempt}"], "ticks": 0}


async def tick(state: State, config: RunnableConfig) -> dict:
    options = config["configurable"]
    await asyncio.sleep(float(options.get("delay", 0.2)))
    ticks = state.get("ticks", 0) + 1
    if options.get("fail") and ticks >= int(options.get("steps", 3)):
        raise ValueError("told to fail")
    return {"ticks": ticks}


def more(state: State, config: RunnableConfig) -> str:
    return "tick" if state["ticks"] < int(config["configurable"].get("steps", 3)) else "finish"


def finish(state: State, config: RunnableConfig) -> dict:
    return {"finished": [config["configurable"].get("run_id", "")]}


builder = StateGraph(State)
builder.add_node("start", start)
builder.add_node("tick", tick)
builder.add_node("finish", finish)
builder.add_edge(START, "start")
builder.add_edge("start", "tick")
builder.add_conditional_edges("tick", more, ["tick", "finish"])
builder.add_edge("finish", END)
graph = builder.compile()
