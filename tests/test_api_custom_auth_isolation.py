"""The isolation matrix (tests/test_isolation.py's routes and checks) against a server whose
credentials all go through a custom auth handler (tests/custom_auth_app/jwt_auth.py)."""

import json
from pathlib import Path

import pytest

from .api_fixtures import ADMIN_TOKEN, GRAPHS, JWT_SECRET, Tenants
from .servers import ServerProcess
from .test_isolation import _assert_untouched, attack_from_another_org, victim  # noqa: F401

APP = Path(__file__).resolve().parent / "custom_auth_app"


@pytest.fixture(scope="module")
def custom_url(api_env, tmp_path_factory):
    data = tmp_path_factory.mktemp("custom-auth-matrix")
    config = data / "langgraph.json"
    auth = {"path": f"{APP}/jwt_auth.py:auth"}
    config.write_text(json.dumps({"graphs": GRAPHS, "auth": auth}))
    env = {**api_env, "TENANTGRAPH_ADMIN_TOKEN": ADMIN_TOKEN, "TENANTGRAPH_JWT_SECRET": JWT_SECRET}
    server = ServerProcess(data, config=config, env=env)
    server.wait_ready()
    yield server.url
    server.terminate()


@pytest.fixture
def tenants(custom_url) -> Tenants:
    """The matrix's two orgs, their tokens verified by the custom handler."""
    return Tenants.create(custom_url)


@pytest.mark.parametrize("attacker", ["b_member", "b_admin"])
async def test_other_org_reaches_nothing_through_custom_auth(tenants, victim, attacker):  # noqa: F811
    await attack_from_another_org(getattr(tenants, attacker), victim)
    await _assert_untouched(tenants, victim)


async def test_the_owner_filter_hides_a_thread_from_its_orgs_admin(tenants, victim):  # noqa: F811
    """Without the handler an admin reads every thread of the org; with it, only their own."""
    anna = tenants.a_admin.http
    assert (await anna.get(f"/threads/{victim['thread_id']}")).status_code == 404
    found = await anna.post("/threads/search", json={"metadata": {"tag": victim["tag"]}})
    assert found.json() == []
    await _assert_untouched(tenants, victim)
