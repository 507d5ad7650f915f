"""The keys the server owns reach a graph only with the server's values, whichever
client-supplied source names them: the run's config, context, checkpoint or command, the
assistant's config and context, or a cron's payload."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg.types.json import Jsonb

from tenantgraph.runtime.worker import Worker
from tenantgraph.services.crons import Crons
from tenantgraph.services.runs import RunCreate, Runs

from .runtime_fixtures import make_org, make_thread, make_worker, wait_for

FORGED = {
    "org_id": "org-of-someone-else",
    "user_id": "mallory",
    "assistant_id": str(uuid.uuid4()),
    "thread_id": str(uuid.uuid4()),
    "run_id": "forged",
    "graph_id": "agent",
    "langgraph_auth_user_id": "mallory",
    "langgraph_auth_user": {"identity": "mallory"},
    "langgraph_auth_permissions": ["admin"],
    "__pregel_store": "forged",
    "__pregel_forged": "forged",
}


@pytest.fixture
async def org(resources, org_ids):
    return await make_org(resources.db, org_ids[0])


@pytest.fixture
def runs(resources) -> Runs:
    return Runs(resources.db, resources.redis, resources.streams)


@pytest.fixture
async def worker(resources) -> AsyncIterator[Worker]:
    started = make_worker(resources)
    await started.start()
    yield started
    await started.stop()


def _assert_server_values(values: dict, alice, assistant_id, thread_id, run_id) -> None:
    server = {
        "org_id": alice.org_id,
        "user_id": "alice",
        "assistant_id": str(assistant_id),
        "thread_id": str(thread_id),
        "run_id": str(run_id),
        "graph_id": "probe",
        "langgraph_auth_user_id": "alice",
        "langgraph_auth_permissions": [],
    }
    configurable = values["seen_config"]
    assert {k: configurable.get(k) for k in server} == server
    assert configurable["langgraph_auth_user"]["identity"] == "alice"
    assert configurable["langgraph_auth_user"]["permissions"] == []
    assert "__pregel_forged" not in configurable
    assert configurable.get("__pregel_store") != "forged"
    # The context keeps the client's own keys; a server key it named holds the server's value.
    context = values["seen_context"]
    assert context["keep"] == "me"
    assert {k: context[k] for k in server if k in context} == {
        k: v for k, v in server.items() if k in FORGED
    }
    # A context that names the caller gets the server's.
    assert context.get("langgraph_auth_user", {"identity": "alice"})["identity"] == "alice"
    named = {*server, "langgraph_auth_user"}
    assert not any(k.startswith(("langgraph_auth_user", "__")) for k in context if k not in named)
    assert "forged" not in str(context) and "mallory" not in str(context)


async def _forge_assistant(resources, alice, assistant_id) -> None:
    async with resources.db.tenant(alice) as conn:
        await conn.execute(
            "UPDATE assistants SET config = %s, context = %s WHERE assistant_id = %s",
            (Jsonb({"configurable": FORGED}), Jsonb({**FORGED, "keep": "me"}), assistant_id),
        )


@pytest.mark.parametrize(
    "forged",
    [{"config": {"configurable": FORGED}}, {"context": {**FORGED, "keep": "me"}}],
    ids=["config", "context"],  # a run may not name both (as in the LangGraph API)
)
async def test_the_run_and_its_assistant_cannot_override_the_server(
    resources, org, runs, worker, forged
):
    alice, _, assistants = org
    await _forge_assistant(resources, alice, assistants["probe"])
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["probe"],
        RunCreate.model_validate(
            {"input": {"note": "hi"}, "checkpoint": {**FORGED, "checkpoint_ns": ""}, **forged}
        ),
    )
    values = await runs.join(alice, run["run_id"])
    _assert_server_values(values, alice, assistants["probe"], thread_id, run["run_id"])


async def test_a_command_cannot_override_the_server(resources, org, runs, worker):
    alice, _, assistants = org
    thread_id = await make_thread(resources.db, alice)
    run = await runs.create(
        alice,
        thread_id,
        assistants["probe"],
        RunCreate.model_validate(
            {
                "command": {"update": {"note": "x", **FORGED}, "resume": FORGED},
                "context": {**FORGED, "keep": "me"},
            }
        ),
    )
    values = await runs.join(alice, run["run_id"])
    _assert_server_values(values, alice, assistants["probe"], thread_id, run["run_id"])


async def test_a_cron_payload_cannot_override_the_server(resources, org, runs, worker):
    alice, _, assistants = org
    await _forge_assistant(resources, alice, assistants["probe"])
    thread_id = await make_thread(resources.db, alice)
    cron = await Crons(resources.db, runs).create(
        alice,
        assistants["probe"],
        {
            "schedule": "0 0 1 1 *",
            "input": {"note": "hi"},
            "context": {**FORGED, "keep": "me"},
            "checkpoint": FORGED,
        },
        thread_id=thread_id,
    )
    async with resources.db.tenant(alice) as conn:
        await conn.execute(
            "UPDATE crons SET next_run_date = now() - interval '1 second' WHERE cron_id = %s",
            (cron["cron_id"],),
        )
    for _ in range(400):
        async with resources.db.tenant(alice) as conn:
            cur = await conn.execute(
                "SELECT run_id FROM runs WHERE metadata->>'cron_id' = %s", (str(cron["cron_id"]),)
            )
            fired = await cur.fetchone()
        if fired is not None:
            break
        await asyncio.sleep(0.05)
    assert fired is not None, "the cron did not fire"
    await wait_for(runs, alice, fired["run_id"])
    state = await runs.join(alice, fired["run_id"])
    _assert_server_values(state, alice, assistants["probe"], thread_id, fired["run_id"])
