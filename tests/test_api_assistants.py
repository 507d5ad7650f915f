"""Assistants through langgraph-sdk, exactly as users call them."""

import uuid

import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, PermissionDeniedError

from tenantgraph.stores.assistants import default_assistant_id


async def test_create_honours_caller_chosen_id_and_if_exists(tenants):
    sdk = tenants.a_admin.sdk
    chosen = str(uuid.uuid4())
    created = await sdk.assistants.create(
        "agent",
        config={"configurable": {"model": "m"}},
        metadata={"team": "x"},
        assistant_id=chosen,
        name="Helper",
        description="d",
    )
    assert created["assistant_id"] == chosen
    assert created["version"] == 1 and created["name"] == "Helper"
    assert created["config"] == {"configurable": {"model": "m"}}
    with pytest.raises(ConflictError):
        await sdk.assistants.create("agent", assistant_id=chosen)
    again = await sdk.assistants.create(
        "agent", assistant_id=chosen, if_exists="do_nothing", name="ignored"
    )
    assert again["name"] == "Helper"
    assert (await sdk.assistants.get(chosen))["metadata"] == {"team": "x"}


async def test_unknown_graph_is_404(tenants):
    with pytest.raises(NotFoundError):
        await tenants.a_admin.sdk.assistants.create("no-such-graph")


async def test_members_read_admins_write(tenants):
    made = await tenants.a_admin.sdk.assistants.create("agent", name="shared tool")
    member = tenants.a_member.sdk
    assert (await member.assistants.get(made["assistant_id"]))["name"] == "shared tool"
    with pytest.raises(PermissionDeniedError):
        await member.assistants.create("agent")
    with pytest.raises(PermissionDeniedError):
        await member.assistants.update(made["assistant_id"], name="mine now")
    with pytest.raises(PermissionDeniedError):
        await member.assistants.delete(made["assistant_id"])
    assert (await member.assistants.get(made["assistant_id"]))["name"] == "shared tool"


async def test_graph_name_resolves_to_the_orgs_default_assistant(tenants):
    a = await tenants.a_member.sdk.assistants.get("agent")
    assert a["assistant_id"] == str(default_assistant_id("agent"))
    assert a["graph_id"] == "agent" and a["metadata"] == {"created_by": "system"}
    b = await tenants.b_member.sdk.assistants.get("agent")
    assert b["assistant_id"] == a["assistant_id"]  # same id, two rows: one per org
    await tenants.a_admin.sdk.assistants.update("agent", name="A's agent")
    assert (await tenants.b_member.sdk.assistants.get("agent"))["name"] == "agent"


async def test_update_creates_versions_and_set_latest_rolls_back(tenants):
    sdk = tenants.a_admin.sdk
    made = await sdk.assistants.create("agent", metadata={"a": 1}, config={"k": 1})
    aid = made["assistant_id"]
    v2 = await sdk.assistants.update(aid, metadata={"b": 2}, config={"k": 2})
    assert v2["version"] == 2 and v2["metadata"] == {"a": 1, "b": 2}
    v3 = await sdk.assistants.update(aid, graph_id="other", name="renamed")
    assert v3["version"] == 3 and v3["graph_id"] == "other" and v3["config"] == {"k": 2}
    versions = await sdk.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["version"] for v in await sdk.assistants.get_versions(aid, limit=1, offset=1)] == [2]
    assert [v["version"] for v in await sdk.assistants.get_versions(aid, metadata={"b": 2})] == [
        3,
        2,
    ]
    back = await sdk.assistants.set_latest(aid, 1)
    assert back["version"] == 1 and back["config"] == {"k": 1} and back["graph_id"] == "agent"
    with pytest.raises(NotFoundError):
        await sdk.assistants.set_latest(aid, 99)


async def test_search_filters_pagination_sort_select_and_count(tenants):
    sdk = tenants.a_admin.sdk
    tag = uuid.uuid4().hex
    for i in range(5):
        await sdk.assistants.create(
            "other" if i % 2 else "agent", metadata={"tag": tag, "i": i}, name=f"bot-{tag}-{i}"
        )
    found = await sdk.assistants.search(metadata={"tag": tag}, limit=10)
    assert len(found) == 5
    assert [a["metadata"]["i"] for a in found] == [4, 3, 2, 1, 0]  # created_at desc
    asc = await sdk.assistants.search(
        metadata={"tag": tag}, sort_by="name", sort_order="asc", limit=2, offset=1
    )
    assert [a["name"] for a in asc] == [f"bot-{tag}-1", f"bot-{tag}-2"]
    only_other = await sdk.assistants.search(metadata={"tag": tag}, graph_id="other")
    assert {a["metadata"]["i"] for a in only_other} == {1, 3}
    by_name = await sdk.assistants.search(name=f"{tag}-3".upper())
    assert [a["metadata"]["i"] for a in by_name] == [3]
    slim = await sdk.assistants.search(metadata={"tag": tag}, select=["assistant_id", "name"])
    assert [set(a) for a in slim] == [{"assistant_id", "name"}] * 5
    page = await sdk.assistants.search(metadata={"tag": tag}, limit=2, response_format="object")
    assert len(page["assistants"]) == 2 and page["next"] == "2"
    assert await sdk.assistants.count(metadata={"tag": tag}) == 5
    assert await sdk.assistants.count(metadata={"tag": tag}, graph_id="agent") == 3
    assert await tenants.b_admin.sdk.assistants.count(metadata={"tag": tag}) == 0


async def test_delete(tenants):
    sdk = tenants.a_admin.sdk
    made = await sdk.assistants.create("agent")
    await sdk.assistants.delete(made["assistant_id"])
    with pytest.raises(NotFoundError):
        await sdk.assistants.get(made["assistant_id"])
    with pytest.raises(NotFoundError):
        await sdk.assistants.delete(made["assistant_id"])


async def test_bad_input_names_the_field(tenants):
    response = await tenants.a_admin.http.post("/assistants", json={"graph_id": 5})
    assert response.status_code == 422
    assert "graph_id" in response.json()["detail"]
    response = await tenants.a_admin.http.post(
        "/assistants", json={"graph_id": "agent", "assistant_id": "not-a-uuid"}
    )
    assert response.status_code == 422 and "assistant_id" in response.json()["detail"]
    response = await tenants.a_admin.http.post("/assistants/search", json={"sort_by": "secret"})
    assert response.status_code == 400 and "sort_by" in response.json()["detail"]


async def test_graph_drawing_and_schemas(tenants):
    sdk = tenants.a_member.sdk
    drawn = await sdk.assistants.get_graph("agent")
    assert {n["id"] for n in drawn["nodes"]} >= {"__start__", "echo", "__end__"}
    assert {(e["source"], e["target"]) for e in drawn["edges"]} >= {("__start__", "echo")}
    schemas = await sdk.assistants.get_schemas("agent")
    assert schemas["graph_id"] == "agent"
    assert "messages" in schemas["input_schema"]["properties"]
    assert "messages" in schemas["output_schema"]["properties"]
    assert await sdk.assistants.get_subgraphs("agent") == {}
