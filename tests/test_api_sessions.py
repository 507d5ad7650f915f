"""Session windows over HTTP: bounded, expiring, and only ever the caller's own."""

import uuid

from .api_fixtures import caller


async def test_window_is_bounded_and_private(api_url, tenants, settings):
    session = uuid.uuid4().hex
    alice = tenants.a_member.http
    path = f"/sessions/agent/{session}"
    size = settings.ephemeral.session_window_size
    for start in range(0, size + 10, 7):
        batch = [{"role": "user", "n": n} for n in range(start, start + 7)]
        length = (await alice.post(f"{path}/messages", json={"messages": batch})).json()["length"]
        assert length <= size
    window = (await alice.get(f"{path}/messages")).json()["messages"]
    assert len(window) == size and window[-1]["n"] > window[0]["n"]
    assert (await alice.get(f"{path}/messages", params={"last": 2})).json()["messages"] == window[
        -2:
    ]
    for other in (
        tenants.a_admin,
        tenants.b_member,
        caller(api_url, tenants.a_member.org, "carl", "member"),
    ):
        assert (await other.http.get(f"{path}/messages")).json() == {"messages": []}
        assert (await other.http.delete(path)).status_code == 204
    assert len((await alice.get(f"{path}/messages")).json()["messages"]) == size
    assert (await alice.delete(path)).status_code == 204
    assert (await alice.get(f"{path}/messages")).json() == {"messages": []}
    empty = await alice.post(f"{path}/messages", json={"messages": []})
    assert empty.status_code == 422
