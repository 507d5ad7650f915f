"""The assistant use cases and the default assistant of a graph, called in-process."""

import pytest

from tenantgraph.errors import Forbidden, NotFound
from tenantgraph.scope import Principal, Role
from tenantgraph.services.assistants import Assistants
from tenantgraph.services.orgs import Orgs
from tenantgraph.stores import assistants as assistant_store

from .runtime_fixtures import registry


class Rollback(Exception):
    pass


async def test_ensure_default_runs_on_the_callers_transaction(resources, org_ids):
    """The store creates the default assistant on the connection it is given, so a caller
    that rolls back leaves none, and a second call in one transaction finds the first."""
    org, _ = org_ids
    await Orgs(resources.db, resources.redis).create_org(org, "A")
    alice = Principal(org, "alice")
    with pytest.raises(Rollback):
        async with resources.db.tenant(alice) as conn:
            made = await assistant_store.ensure_default(conn, alice, "agent")
            assert made["assistant_id"] == assistant_store.default_assistant_id("agent")
            assert await assistant_store.ensure_default(conn, alice, "agent") == made
            raise Rollback
    async with resources.db.tenant(alice) as conn:
        assert await assistant_store.get(conn, alice, made["assistant_id"]) is None
        kept = await assistant_store.ensure_default(conn, alice, "agent")
    assert kept["graph_id"] == "agent" and kept["metadata"] == {"created_by": "system"}


async def test_a_graph_name_stands_for_the_default_assistant(resources, org_ids):
    org, _ = org_ids
    await Orgs(resources.db, resources.redis).create_org(org, "A")
    member, admin = Principal(org, "alice"), Principal(org, "root", Role.ADMIN)
    assistants = Assistants(resources.db, registry())
    default_id = assistant_store.default_assistant_id("agent")
    assert await assistants.resolve_id(member, "agent") == default_id
    assert (await assistants.get(member, "agent"))["assistant_id"] == default_id
    with pytest.raises(NotFound):
        await assistants.resolve_id(member, "no-such-graph")
    with pytest.raises(Forbidden):
        await assistants.update(member, "agent", name="renamed")
    updated = await assistants.update(admin, "agent", name="renamed", metadata={"k": 1})
    assert updated["version"] == 2 and updated["metadata"] == {"created_by": "system", "k": 1}
    versions = await assistants.list_versions(member, default_id)
    assert [v["version"] for v in versions] == [2, 1]
    assert (await assistants.set_latest(admin, "agent", 1))["name"] == "agent"
