"""Data the feedback and experiments views show, made through the API as a user would."""

from __future__ import annotations

from typing import Any

import httpx
from tests.run_helpers import HI


async def finished_run(http: httpx.AsyncClient, assistant_id: str = "agent") -> dict[str, Any]:
    """A finished run of the `agent` echo graph (or of an experiment) on a new thread: a
    thread's run is kept, so feedback can be given on it."""
    thread = await http.post("/threads", json={})
    assert thread.status_code == 200, thread.text
    made = await http.post(
        f"/threads/{thread.json()['thread_id']}/runs/wait",
        json={"assistant_id": assistant_id, "input": HI},
    )
    assert made.status_code == 200, made.text
    return (await http.get(made.headers["Content-Location"])).json()


async def give(http: httpx.AsyncClient, run: dict[str, Any], key: str, **event: Any) -> None:
    """The caller's feedback `key` on `run` (score, comment…)."""
    given = await http.post(f"/runs/{run['run_id']}/feedback", json={"key": key, **event})
    assert given.status_code == 200, given.text
