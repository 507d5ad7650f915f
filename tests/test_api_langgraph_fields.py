"""The fields langgraph-api shapes (assistants, runs, checkpoints, streams, crons), read
through langgraph-sdk as a client written for LangGraph Platform reads them."""

from __future__ import annotations

import uuid

from tenantgraph.stores.assistants import default_assistant_id

from .api_fixtures import GRAPHS

HI = {"messages": [{"role": "user", "content": "hi"}]}


async def test_every_org_finds_a_system_assistant_per_graph_from_the_start(tenants):
    for member in (tenants.a_member, tenants.b_member):  # fresh orgs, never used
        found = await member.sdk.assistants.search(graph_id="agent")
        assert [(a["assistant_id"], a["name"], a["metadata"]) for a in found] == [
            (str(default_assistant_id("agent")), "agent", {"created_by": "system"})
        ]
        assert await member.sdk.assistants.count() == len(GRAPHS)
        listed = await member.sdk.assistants.search(limit=100)
        assert sorted(a["graph_id"] for a in listed) == sorted(GRAPHS)
    # Each org's is its own: a change in one leaves the other's alone.
    system = str(default_assistant_id("hitl"))
    await tenants.a_admin.sdk.assistants.update(system, metadata={"team": "a"})
    theirs = await tenants.b_member.sdk.assistants.get(system)
    assert theirs["metadata"] == {"created_by": "system"} and theirs["version"] == 1


async def test_assistant_context_mirrors_its_configurable(tenants):
    sdk = tenants.a_admin.sdk
    made = await sdk.assistants.create("agent", config={"configurable": {"model": "m1"}})
    assert made["context"] == {"model": "m1"}
    by_context = await sdk.assistants.create("agent", context={"model": "m2"})
    assert by_context["config"] == {"configurable": {"model": "m2"}}
    changed = await sdk.assistants.update(
        by_context["assistant_id"], config={"configurable": {"model": "m3"}}
    )
    assert changed["context"] == {"model": "m3"}


async def test_schemas_of_a_graph_whose_state_is_a_typing_typeddict(tenants):
    schemas = await tenants.a_member.sdk.assistants.get_schemas("whoami")
    assert schemas["graph_id"] == "whoami"
    assert set(schemas["state_schema"]["properties"]) == {"greeting", "identity", "permissions"}
    assert schemas["input_schema"] is None and schemas["config_schema"] == {}


async def test_run_kwargs_metadata_and_the_thread_config(tenants):
    admin, alice = tenants.a_admin, tenants.a_member
    assistant = await admin.sdk.assistants.create(
        "agent",
        config={"configurable": {"model": "m1"}},
        metadata={"from": "assistant", "a": 1, "t": 0},
    )
    thread = await alice.sdk.threads.create(metadata={"from": "thread", "t": 1})
    run = await alice.sdk.runs.create(
        thread["thread_id"],
        assistant["assistant_id"],
        input=HI,
        metadata={"from": "run", "r": 1, "graph_id": "forged"},
    )
    # assistant < thread < request, then the server's assistant_id and graph_id.
    assert run["metadata"] == {
        "from": "run",
        "a": 1,
        "t": 1,
        "r": 1,
        "owner": alice.user,
        "assistant_id": assistant["assistant_id"],
        "graph_id": "agent",
    }
    kwargs = run["kwargs"]
    assert kwargs["config"]["metadata"] == run["metadata"]
    assert kwargs["context"] == {"model": "m1"}
    assert kwargs["config"]["configurable"]["model"] == "m1"
    assert kwargs["checkpoint_during"] is True and kwargs["durability"] == "async"
    assert "langsmith_session_name" in run and run["langsmith_session_name"] is None
    await alice.sdk.runs.join(thread["thread_id"], run["run_id"])
    kept = await alice.sdk.threads.get(thread["thread_id"])
    assert kept["config"]["configurable"] == {"model": "m1"}


async def test_checkpoint_metadata_carries_the_run_and_server_keys(tenants):
    alice = tenants.a_member
    thread = await alice.sdk.threads.create(metadata={"topic": "tea"})
    run = await alice.sdk.runs.create(
        thread["thread_id"], "agent", input=HI, metadata={"source_app": "ui"}
    )
    await alice.sdk.runs.join(thread["thread_id"], run["run_id"])
    for state in [
        await alice.sdk.threads.get_state(thread["thread_id"]),
        *await alice.sdk.threads.get_history(thread["thread_id"]),
    ]:
        meta = state["metadata"]
        assert meta["source_app"] == "ui" and meta["topic"] == "tea"
        assert meta["graph_id"] == "agent" and meta["thread_id"] == thread["thread_id"]
        assert meta["run_id"] == run["run_id"]
        assert meta["assistant_id"] == str(default_assistant_id("agent"))
        assert meta["langgraph_auth_user_id"] == alice.user
        assert meta["langgraph_request_id"] and meta["langgraph_version"]
        assert meta["run_attempt"] == 1
    await alice.sdk.threads.update_state(thread["thread_id"], {"messages": []})
    updated = (await alice.sdk.threads.get_state(thread["thread_id"]))["metadata"]
    assert updated["source"] == "update"
    assert updated["graph_id"] == "agent" and updated["thread_id"] == thread["thread_id"]


async def test_streams_carry_checkpoints_and_the_caller(tenants):
    alice = tenants.a_member
    thread = await alice.sdk.threads.create()
    request_id = uuid.uuid4().hex
    parts = [
        part
        async for part in alice.sdk.runs.stream(
            thread["thread_id"],
            "whoami",
            input={},
            stream_mode=["debug", "checkpoints"],
            headers={"x-request-id": request_id},
        )
    ]
    debug = [p.data for p in parts if p.event == "debug" and p.data["type"] == "checkpoint"]
    assert debug and all({"checkpoint", "parent_checkpoint"} <= set(d["payload"]) for d in debug)
    assert debug[-1]["payload"]["checkpoint"]["thread_id"] == thread["thread_id"]
    assert debug[-1]["payload"]["parent_checkpoint"]["checkpoint_id"]
    checkpoints = [p.data for p in parts if p.event == "checkpoints"]
    assert checkpoints
    for checkpoint in checkpoints:
        configurable = checkpoint["config"]["configurable"]
        assert configurable["langgraph_auth_user"]["identity"] == alice.user
        assert configurable["langgraph_auth_permissions"] == []
        assert configurable["langgraph_request_id"] == request_id


async def test_a_platform_graph_reads_the_caller_from_langgraph_auth_user(tenants):
    for member in (tenants.a_member, tenants.b_admin):
        said = await member.sdk.runs.wait(None, "whoami", input={})
        assert said == {
            "greeting": f"hello {member.user}",
            "identity": member.user,
            "permissions": [],
        }


async def test_cron_payload_names_its_assistant_and_config(tenants):
    alice = tenants.a_member
    thread = await alice.sdk.threads.create()
    cron = await alice.sdk.crons.create_for_thread(
        thread["thread_id"],
        "agent",
        schedule="0 0 1 1 *",
        input=HI,
        config={"configurable": {"k": "v"}},
    )
    try:
        assert cron["payload"]["assistant_id"] == str(default_assistant_id("agent"))
        assert cron["payload"]["config"]["configurable"] == {"k": "v", "cron_id": cron["cron_id"]}
    finally:
        await alice.sdk.crons.delete(cron["cron_id"])


async def test_a_new_run_answers_pending_even_when_taken_at_once(tenants, tmp_path):
    sdk = tenants.a_member.sdk
    thread = (await sdk.threads.create())["thread_id"]
    gate = tmp_path / "gate"
    config = {"configurable": {"gate": str(gate)}}
    made = await sdk.runs.create(thread, "gate", input={}, config=config)
    batch = await sdk.runs.create_batch([{"assistant_id": "agent", "input": HI}])
    assert made["status"] == "pending" and [r["status"] for r in batch] == ["pending"]
    # The local worker took it in the creating transaction: it is running from then on.
    assert (await sdk.runs.get(thread, made["run_id"]))["status"] == "running"
    gate.touch()
    await sdk.runs.join(thread, made["run_id"])


async def test_a_copied_threads_checkpoints_name_the_copy(tenants):
    sdk = tenants.a_member.sdk
    source = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(source, "agent", input=HI)
    copied = (await sdk.threads.copy(source))["thread_id"]
    assert (await sdk.threads.get_state(copied))["metadata"]["thread_id"] == copied
    assert (await sdk.threads.get_state(source))["metadata"]["thread_id"] == source
