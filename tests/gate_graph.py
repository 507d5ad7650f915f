"""A graph whose one step waits until the file named by `configurable.gate` exists: a run
that lasts exactly as long as a test wants, across server restarts."""

import asyncio
from pathlib import Path
from typing import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    opened: bool


async def wait_for_gate(state: State, config: RunnableConfig) -> State:
    gate = Path(config["configurable"]["gate"])
    # The gate is opened by another process: there is nothing to wait on but the file.
    while not await asyncio.to_thread(gate.exists):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return {"opened": True}


builder = StateGraph(State)
builder.add_node("wait_for_gate", wait_for_gate)
builder.add_edge(START, "wait_for_gate")
builder.add_edge("wait_for_gate", END)
graph = builder.compile()
