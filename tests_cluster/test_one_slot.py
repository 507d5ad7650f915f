"""Every Valkey command of the product touches one hash slot, as a cluster requires: the
key builders put the org's tag first whatever the other parts hold, every Lua script of the
product touches only the keys it is given, and while the suite ran every command the
cluster ran (the calls inside scripts included, every product script among them) named
keys of one slot and no master refused one for crossing slots."""

from __future__ import annotations

import ast
import hashlib
import importlib
import re
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

import tenantgraph
from tenantgraph.runtime.events import run_events_key
from tenantgraph.scope import KeyKind, Principal, redis_key

from .valkey_cluster import CommandLog, ValkeyCluster

ORGS = st.text(
    st.characters(blacklist_categories=("Z", "C"), blacklist_characters="{}."),
    min_size=1,
    max_size=40,
)
# Key parts may hold anything, hash-tag braces included: only the first `{…}` counts.
PARTS = st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4)


def _sha1(script: bytes) -> str:
    """The name EVALSHA gives a script."""
    return hashlib.sha1(script, usedforsecurity=False).hexdigest()


def _tag_slot(org: str) -> int:
    return key_slot(org.encode())


@given(org=ORGS, kind=st.sampled_from(KeyKind), parts=PARTS)
def test_every_key_of_an_org_hashes_to_its_slot(org, kind, parts):
    assert key_slot(redis_key(org, kind, *parts).encode()) == _tag_slot(org)


@given(org=ORGS, run_id=st.uuids())
def test_run_stream_keys_hash_to_the_org_slot(org, run_id: uuid.UUID):
    assert key_slot(run_events_key(Principal(org, "u"), run_id).encode()) == _tag_slot(org)


def product_scripts() -> dict[str, str]:
    """Every Lua script the product registers (`register_script(NAME)` of a module
    constant): its SHA1 and where it is."""
    return {_sha1(text.encode()): name for name, text in _scripts_by_name().items()}


def _scripts_by_name() -> dict[str, str]:
    scripts = {}
    root = Path(tenantgraph.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_script"
            ):
                (arg,) = node.args
                assert isinstance(arg, ast.Name), f"{path}: a script not held in a constant"
                module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
                text = getattr(importlib.import_module(module), arg.id)
                scripts[f"{module}.{arg.id}"] = text
    return scripts


# A call and its first argument: the key, for every command the scripts use but TIME.
_CALL = re.compile(r"redis\.p?call\('(\w+)'(?:,\s*([^,)]+))?")


def test_every_script_touches_only_the_keys_it_is_given():
    for name, text in _scripts_by_name().items():
        calls = _CALL.findall(text)
        assert calls, name
        for command, first in calls:
            if command != "TIME":
                assert re.fullmatch(r"KEYS\[\w+\]", first.strip()), (name, command, first)


@pytest.mark.after_the_suite
async def test_every_command_the_suite_sent_touches_one_slot(
    command_log: CommandLog, valkey_cluster: ValkeyCluster
):
    commands = await command_log.drain()
    for port in valkey_cluster.ports:  # refused commands never reach MONITOR
        with valkey_cluster.node(port) as node:
            errors = node.info("errorstats")
        assert "errorstat_CROSSSLOT" not in errors, (port, errors)
    scripts = product_scripts()
    assert len(scripts) >= 5, scripts  # the append, rate-limit and three episode scripts
    run = {c[1].decode().lower() for c in commands if c[0].upper() == b"EVALSHA"}
    run |= {_sha1(c[1]) for c in commands if c[0].upper() == b"EVAL"}
    assert set(scripts) <= run, f"never run: {[scripts[s] for s in set(scripts) - run]}"
    keyed, crossing = 0, []
    with valkey_cluster.node(valkey_cluster.ports[0]) as node:
        for start in range(0, len(commands), 1000):
            batch = commands[start : start + 1000]
            pipe = node.pipeline(transaction=False)
            for command in batch:
                pipe.execute_command("COMMAND GETKEYS", *command)
            for command, keys in zip(batch, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(keys, redis.ResponseError):
                    assert "no key arguments" in str(keys), (command[:4], keys)
                    continue
                keyed += 1
                if len({key_slot(k if isinstance(k, bytes) else k.encode()) for k in keys}) > 1:
                    crossing.append(command[:6])
    assert keyed > 1000, keyed  # the suite's Valkey work was seen
    assert crossing == []
