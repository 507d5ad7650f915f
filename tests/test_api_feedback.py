"""Feedback on runs: attribution, visibility, tokens, stats, retention and the GDPR paths,
against the session's API server (and, for the sweep, the session's database)."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import jwt
import psycopg
from scipy import stats as scipy_stats

from tenantgraph.scope import Principal
from tenantgraph.secret_key import SecretKey
from tenantgraph.services.store_sweeper import StoreSweeper
from tenantgraph.stores import feedback as feedback_store

from .api_fixtures import ADMIN_TOKEN, caller
from .run_helpers import HI, parts
from .servers import SECRET_KEY
from .tenant_rows import seed

TOKEN_KEY = SecretKey(SECRET_KEY).derive("feedback-token")


async def _run(who, **body) -> dict:
    """A finished run of `who` on a new thread of theirs."""
    thread = await who.sdk.threads.create()
    created = await who.http.post(
        f"/threads/{thread['thread_id']}/runs", json={"assistant_id": "agent", "input": HI, **body}
    )
    assert created.status_code == 200, created.text
    run = created.json()
    await who.sdk.runs.join(thread["thread_id"], run["run_id"])
    return run


async def _give(who, run_id, **event) -> httpx.Response:
    return await who.http.post(f"/runs/{run_id}/feedback", json=event)


async def test_feedback_is_attributed_to_the_run_and_seen_by_its_giver_and_admins(api_url, tenants):
    alice, anna = tenants.a_member, tenants.a_admin
    run = await _run(alice)
    given = await _give(alice, run["run_id"], key="thumbs", score=1, comment="nice")
    assert given.status_code == 200, given.text
    event = given.json()
    assert (event["run_id"], event["thread_id"], event["user_id"]) == (
        run["run_id"],
        run["thread_id"],
        "alice",
    )
    assert event["assistant_id"] == run["assistant_id"] and event["assistant_version"] == 1
    on_thread = await alice.http.post(
        f"/threads/{run['thread_id']}/runs/{run['run_id']}/feedback",
        json={"key": "correct", "value": {"label": "yes"}, "source": {"type": "human"}},
    )
    assert on_thread.status_code == 200 and on_thread.json()["value"] == {"label": "yes"}
    wrong_thread = await alice.http.post(
        f"/threads/{uuid.uuid4()}/runs/{run['run_id']}/feedback", json={"key": "thumbs"}
    )
    assert wrong_thread.status_code == 404
    # The org's admin sees the run and may give feedback on it; another member may not.
    assert (await _give(anna, run["run_id"], key="thumbs", score=0)).status_code == 200
    carl = caller(api_url, alice.org, "carl", "member")
    for outsider in (carl, tenants.b_member, tenants.b_admin):
        refused = await _give(outsider, run["run_id"], key="thumbs", score=0)
        missing = await _give(outsider, uuid.uuid4(), key="thumbs", score=0)
        assert refused.status_code == missing.status_code == 404, refused.text
    mine = (await alice.http.post("/feedback/search", json={"run_id": run["run_id"]})).json()
    assert sorted(e["key"] for e in mine) == ["correct", "thumbs"]  # not anna's
    org = (await anna.http.post("/feedback/search", json={"run_id": run["run_id"]})).json()
    assert sorted(e["user_id"] for e in org) == ["alice", "alice", "anna"]
    only = {"run_id": run["run_id"], "user_id": "alice", "key": "thumbs"}
    assert [e["comment"] for e in (await anna.http.post("/feedback/search", json=only)).json()] == [
        "nice"
    ]
    for outsider in (carl, tenants.b_admin):
        seen = await outsider.http.post("/feedback/search", json={"run_id": run["run_id"]})
        assert seen.status_code == 200 and seen.json() == []


async def test_feedback_bodies_are_checked(tenants):
    run = await _run(tenants.a_member)
    http = tenants.a_member.http
    for body in ('{"key": "k", "score": Infinity}', '{"key": "k", "score": NaN}', '{"key": ""}'):
        sent = await http.post(
            f"/runs/{run['run_id']}/feedback",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert sent.status_code == 422, (body, sent.text)
    assert (await _give(tenants.a_member, run["run_id"], key="has space")).status_code == 422


def _wilson(successes: int, n: int) -> tuple[float, float]:
    ci = scipy_stats.binomtest(successes, n).proportion_ci(method="wilson")
    return ci.low, ci.high


async def test_stats_per_group_with_a_wilson_interval_for_rates(tenants):
    alice, anna = tenants.a_member, tenants.a_admin
    runs = [await _run(alice) for _ in range(2)]
    key = f"k{uuid.uuid4().hex[:8]}"
    for score, tool in [(1, "web"), (1, "web"), (0, "web"), (1, "app")]:
        made = await _give(alice, runs[0]["run_id"], key=key, score=score, source={"tool": tool})
        assert made.status_code == 200
    rating = f"r{uuid.uuid4().hex[:8]}"
    for score in (2.0, 4.0, 9.0):
        assert (await _give(alice, runs[1]["run_id"], key=rating, score=score)).status_code == 200
    # An admin's event just before the query is counted by the admin, not by alice.
    assert (await _give(anna, runs[0]["run_id"], key=key, score=1)).status_code == 200
    answer = await alice.http.get("/feedback/stats", params={"key": key})
    assert answer.status_code == 200, answer.text
    [rate] = answer.json()
    low, high = _wilson(3, 4)
    assert (rate["count"], rate["rate"]) == (4, 0.75)
    assert round(rate["rate_low"], 6) == round(low, 6) and round(rate["rate_high"], 6) == round(
        high, 6
    )
    [org] = (await anna.http.get("/feedback/stats", params={"key": key})).json()
    assert (org["count"], org["rate"]) == (5, 0.8)
    [scores] = (await alice.http.get("/feedback/stats", params={"key": rating})).json()
    assert (scores["count"], scores["mean"], scores["min"], scores["max"]) == (3, 5.0, 2.0, 9.0)
    assert round(scores["stddev"], 6) == round((((3**2 + 1 + 4**2) / 2) ** 0.5), 6)
    assert scores["rate"] is None and scores["rate_low"] is None
    tools = await alice.http.get("/feedback/stats", params={"key": key, "group_by": "tool"})
    assert {g["group"]: g["count"] for g in tools.json()} == {"app": 1, "web": 3}
    days = await alice.http.get("/feedback/stats", params={"key": key, "group_by": "day"})
    assert [g["count"] for g in days.json()] == [4]
    keys = await alice.http.get("/feedback/stats", params={"group_by": "key"})
    counts = {g["group"]: g["count"] for g in keys.json()}
    assert (counts[key], counts[rating]) == (4, 3)
    versions = await alice.http.get(
        "/feedback/stats", params={"key": key, "group_by": "assistant_version"}
    )
    assert [g["group"]["assistant_version"] for g in versions.json()] == [1]
    later = await alice.http.get("/feedback/stats", params={"key": key, "since": "2999-01-01"})
    assert later.json() == []
    outsider = await tenants.b_admin.http.get("/feedback/stats", params={"key": key})
    assert outsider.json() == []


def _token(run_id: str, org: str, key: str = "thumbs", **claims) -> str:
    payload = {
        "org": org,
        "run": run_id,
        "sub": "alice",
        "key": key,
        "exp": int(time.time()) + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, TOKEN_KEY, algorithm="HS256")


async def test_feedback_tokens_record_once_without_a_credential(api_url, tenants):
    alice = tenants.a_member
    run = await _run(alice, feedback_keys=["thumbs", "stars"])
    tokens = run["feedback_tokens"]
    assert set(tokens) == {"thumbs", "stars"}
    async with httpx.AsyncClient(base_url=api_url) as browser:  # no credential
        used = await browser.post(f"/feedback/tokens/{tokens['thumbs']}", json={"score": 1})
        assert used.status_code == 200, used.text
        assert (used.json()["key"], used.json()["user_id"]) == ("thumbs", "alice")
        assert used.json()["run_id"] == run["run_id"]
        replayed = await browser.post(f"/feedback/tokens/{tokens['thumbs']}", json={"score": 0})
        assert replayed.status_code == 409, replayed.text
        other = await _run(alice)
        another_run = await browser.post(
            f"/feedback/tokens/{tokens['stars']}", json={"score": 5, "run_id": other["run_id"]}
        )
        assert another_run.status_code == 403, another_run.text
        expired = _token(run["run_id"], alice.org, exp=int(time.time()) - 5)
        forged = jwt.encode(
            {"org": alice.org, "run": run["run_id"], "sub": "alice", "key": "thumbs",
             "exp": int(time.time()) + 60, "jti": "x"},
            b"not-the-server-key-" + b"x" * 13,
            algorithm="HS256",
        )  # fmt: skip
        for bad in (expired, forged, "not-a-token"):
            refused = await browser.post(f"/feedback/tokens/{bad}", json={"score": 1})
            assert refused.status_code == 403, refused.text
        # A token may say it is reusable; one of another org's run finds nothing there.
        multi = _token(run["run_id"], alice.org, key="stars", multi=True)
        for score in (4, 5):
            assert (
                await browser.post(f"/feedback/tokens/{multi}", json={"score": score})
            ).is_success
        foreign = _token(run["run_id"], tenants.b_member.org)
        assert (await browser.post(f"/feedback/tokens/{foreign}", json={})).status_code == 404
    recorded = await alice.http.post("/feedback/search", json={"run_id": run["run_id"]})
    assert sorted((e["key"], e["score"]) for e in recorded.json()) == [
        ("stars", 4.0),
        ("stars", 5.0),
        ("thumbs", 1.0),
    ]


async def test_a_streamed_run_announces_its_tokens_in_its_first_metadata_event(tenants):
    sdk = tenants.a_member.sdk
    thread = await sdk.threads.create()
    stream = sdk.runs.stream(thread["thread_id"], "agent", input=HI, feedback_keys=["thumbs"])
    events = await parts(stream)
    name, data = events[0]
    assert name == "metadata" and set(data["feedback_tokens"]) == {"thumbs"}
    token = data["feedback_tokens"]["thumbs"]
    assert jwt.decode(token, TOKEN_KEY, algorithms=["HS256"])["run"] == data["run_id"]


async def test_the_sweeper_deletes_feedback_past_its_orgs_retention(resources, org_ids):
    short, default = org_ids
    for org in org_ids:
        async with resources.db.tenant(Principal(org, "alice")) as conn:
            await seed(conn, org)
            if org == short:
                await conn.execute(
                    "INSERT INTO org_quotas (org_id, quota, limit_value)"
                    " VALUES (%s, 'feedback_retention_days', 30)",
                    (short,),
                )
            for days in (10, 40, 400):
                await conn.execute(
                    "INSERT INTO feedback (org_id, feedback_id, run_id, assistant_id, user_id,"
                    " key, created_at) SELECT org_id, gen_random_uuid(), run_id, assistant_id,"
                    " 'alice', %s, now() - make_interval(days => %s) FROM runs",
                    (f"d{days}", days),
                )
    assert await StoreSweeper(resources.db).sweep_feedback() >= 3
    kept = {}
    for org in org_ids:
        async with resources.db.tenant(Principal(org, "alice", "admin")) as conn:
            rows = await feedback_store.search(
                conn, Principal(org, "alice", "admin"), {}, limit=100, offset=0
            )
        kept[org] = sorted(r["key"] for r in rows)
    assert kept == {short: ["d10", "thumbs"], default: ["d10", "d40", "thumbs"]}


async def test_gdpr_export_and_erasure_include_feedback(api_url, api_env, tenants):
    alice, anna = tenants.a_member, tenants.a_admin
    run = await _run(alice)
    assert (await _give(alice, run["run_id"], key="thumbs", score=1)).status_code == 200
    assert (await _give(anna, run["run_id"], key="thumbs", score=0)).status_code == 200
    exported = await anna.http.get("/store/users/alice/export")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert [(x["feedback"]["user_id"], x["feedback"]["score"]) for x in lines] == [("alice", 1.0)]
    refused = await tenants.a_member.http.get("/store/users/anna/export")
    assert refused.status_code == 403
    erased = await alice.http.delete("/store/users/alice")
    assert erased.json() == {"deleted": 0, "feedback_deleted": 1}
    left = (await anna.http.post("/feedback/search", json={"run_id": run["run_id"]})).json()
    assert [e["user_id"] for e in left] == ["anna"]
    org_wide = await anna.http.delete("/store/org")
    assert org_wide.json() == {"deleted": 0, "feedback_deleted": 1}
    assert (await anna.http.post("/feedback/search", json={})).json() == []
    # Deleting the org deletes its feedback with it.
    assert (await _give(alice, run["run_id"], key="thumbs", score=1)).status_code == 200
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ) as platform:
        assert (await platform.delete(f"/orgs/{alice.org}")).status_code in (200, 204)
    async with await psycopg.AsyncConnection.connect(api_env["DATABASE_URL"]) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM tenantgraph.feedback WHERE org_id = %s", (alice.org,)
        )
        assert await cur.fetchone() == (0,)


async def test_feedback_rows_are_never_updated_by_the_runtime_role(resources, org_ids):
    org = org_ids[0]
    async with resources.db.tenant(Principal(org, "alice")) as conn:
        await seed(conn, org)
    try:
        async with resources.db.tenant(Principal(org, "alice")) as conn:
            await conn.execute("UPDATE feedback SET score = 0")
    except psycopg.errors.InsufficientPrivilege:
        return
    raise AssertionError("the runtime role updated a feedback event")
