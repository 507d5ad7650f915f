"""The thread use cases, called in-process."""

import uuid

import pytest

from tenantgraph.errors import Conflict
from tenantgraph.scope import Principal, Role
from tenantgraph.services.orgs import Orgs
from tenantgraph.services.threads import Threads


async def test_create_if_exists_do_nothing_returns_the_callers_thread(resources, org_ids):
    org, _ = org_ids
    await Orgs(resources.db, resources.redis).create_org(org, "T")
    alice, bob = Principal(org, "alice"), Principal(org, "bob", Role.MEMBER)
    threads = Threads(resources.db)
    thread_id = uuid.uuid4()
    made = await threads.create(alice, thread_id=thread_id, metadata={"a": 1})
    same = await threads.create(alice, thread_id=thread_id, if_exists="do_nothing")
    assert same == made and same["metadata"] == {"a": 1, "owner": "alice"}
    with pytest.raises(Conflict):
        await threads.create(alice, thread_id=thread_id)
    # Another member's thread: the id is taken, but it is not bob's to see.
    with pytest.raises(Conflict):
        await threads.create(bob, thread_id=thread_id, if_exists="do_nothing")
