"""Custom stream events: reports progress through `get_stream_writer` (stream mode custom).

`configurable.steps` sets how many progress events it writes, `configurable.delay` how
long each step sleeps (so a run can be cancelled half way).
"""

import asyncio

from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    done: int


async def work(state: State, config: RunnableConfig) -> dict:
    writer = get_stream_writer()
    steps = int(config["configurable"].get("steps", 3))
    delay = float(config["configurable"].get("delay", 0))
    for step in range(1, steps + 1):
        if delay:
            await asyncio.sleep(delay)
        writer({"step": step, "of": steps})
    return {"done": steps}


builder = StateGraph(State)
builder.add_node("work", work)
builder.add_edge(START, "work")
builder.add_edge("work", END)
graph = builder.compile()
