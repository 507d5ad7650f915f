"""The operator CLI against the same embedded servers as the running API."""

import os
import subprocess
import sys
import uuid

import httpx

from .api_fixtures import JWT_SECRET


def tenantgraph(settings, api_env, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI on the API server's database."""
    full_env = {**os.environ, "TENANTGRAPH_DATA_DIR": str(settings.data_dir), **api_env, **env}
    result = subprocess.run(
        [sys.executable, "-m", "tenantgraph.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_orgs_keys_and_tokens(settings, api_url, api_env):
    org = f"cli-{uuid.uuid4().hex[:6]}"
    tenantgraph(settings, api_env, "orgs", "create", org, "--name", "CLI Org", "--owner", "root")
    assert org in tenantgraph(settings, api_env, "orgs", "list", "--limit", "1000").stdout

    created = tenantgraph(
        settings, api_env, "keys", "create", "--org", org, "--user", "ci", "--role", "admin"
    )
    key = created.stdout.strip()
    assert key.startswith("tg_")
    with httpx.Client(base_url=api_url, headers={"X-Api-Key": key}) as client:
        thread = client.post("/threads", json={})
        assert thread.status_code == 200 and thread.json()["metadata"]["owner"] == "ci"
        for _ in range(3):  # the server now serves the key from its cache (api/key_cache.py)
            assert client.post("/threads/count", json={}).status_code == 200
        listed = tenantgraph(settings, api_env, "keys", "list", "--org", org).stdout
        key_id = next(line.split()[1] for line in listed.splitlines() if " ci " in line)
        tenantgraph(settings, api_env, "keys", "revoke", "--org", org, key_id)
        assert client.post("/threads", json={}).status_code == 401

    token = tenantgraph(
        settings,
        api_env,
        "token",
        "--org",
        org,
        "--user",
        "dev",
        "--role",
        "member",
        TENANTGRAPH_JWT_SECRET=JWT_SECRET,
    ).stdout.strip()
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.post("/threads/count", json={}).json() == 0

    tenantgraph(settings, api_env, "orgs", "set-member", org, "dana", "--role", "admin")
    assert "dana" in tenantgraph(settings, api_env, "orgs", "members", org).stdout
    tenantgraph(settings, api_env, "orgs", "remove-member", org, "dana")
    members = tenantgraph(settings, api_env, "orgs", "members", org).stdout
    assert "dana" not in members and "root" in members

    tenantgraph(settings, api_env, "orgs", "delete", org, "--yes")
    assert org not in tenantgraph(settings, api_env, "orgs", "list", "--limit", "1000").stdout


def test_token_without_a_secret_fails_clearly(settings):
    env = {**os.environ, "TENANTGRAPH_DATA_DIR": str(settings.data_dir)}
    env.pop("TENANTGRAPH_JWT_SECRET", None)
    result = subprocess.run(
        [sys.executable, "-m", "tenantgraph.cli", "token", "--org", "o", "--user", "u"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "TENANTGRAPH_JWT_SECRET" in result.stderr
