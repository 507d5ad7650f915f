"""Runs last (pytest collects files by name): after the whole suite wrote its Valkey keys,
`tenantgraph redis audit` must find none without a TTL and none without an org hash tag."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from tenantgraph.cli.redis import redis_app

from .ephemeral_app import valkey_url


async def test_the_suite_left_no_immortal_or_untagged_key(resources, settings):
    env = {"REDIS_URL": valkey_url(settings)}
    result = await asyncio.to_thread(CliRunner().invoke, redis_app, ["audit"], env=env)
    assert result.exit_code == 0, result.output
    assert "0 without TTL, 0 without org tag" in result.output
