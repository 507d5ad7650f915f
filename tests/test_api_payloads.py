"""Input PostgreSQL cannot store is a 422 naming the field, and nothing is written."""

import json

import pytest


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": {"k": "nul\u0000"}}, "metadata"),
        ({"metadata": {"nul\u0000key": 1}}, "metadata"),
        ({"metadata": {"k": "\ud800"}}, "metadata"),
    ],
)
async def test_unstorable_json_is_refused(tenants, body, field):
    before = await tenants.a_member.sdk.threads.count()
    response = await tenants.a_member.http.post(
        "/threads",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert await tenants.a_member.sdk.threads.count() == before


async def test_non_finite_numbers_and_nul_names_are_refused(tenants):
    response = await tenants.a_admin.http.post(
        "/assistants",
        content='{"graph_id": "agent", "config": {"x": 1e400}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422 and "config" in response.json()["detail"]
    response = await tenants.a_admin.http.post(
        "/assistants", json={"graph_id": "agent", "name": "a\u0000b"}
    )
    assert response.status_code == 422 and "name" in response.json()["detail"]
