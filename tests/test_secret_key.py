"""The secret key: given, required with an external database, or generated once per data dir."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from tenantgraph.secret_key import InvalidToken, SecretKey
from tenantgraph.settings import Settings

GIVEN = "k" * 40


def test_a_given_key_is_used_and_each_purpose_derives_its_own():
    key = SecretKey.from_settings(Settings(secret_key=GIVEN, database_url="postgresql://x/y"))
    assert key.derive("feedback-token") == SecretKey(GIVEN).derive("feedback-token")
    assert key.derive("feedback-token") != key.derive("channel-secrets")
    assert len(key.derive("feedback-token")) == 32


def test_an_external_database_without_a_key_is_refused(tmp_path):
    with pytest.raises(ValueError, match="TENANTGRAPH_SECRET_KEY is required"):
        SecretKey.from_settings(Settings(database_url="postgresql://x/y", data_dir=tmp_path))
    assert not (tmp_path / "secret_key").exists()


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 32"):
        SecretKey("short")


def test_the_embedded_default_generates_one_private_key_and_keeps_it(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: SecretKey.from_settings(settings), range(8)))
    derived = {key.derive("x") for key in keys}
    assert len(derived) == 1
    path = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]
    assert SecretKey.from_settings(settings).derive("x") in derived
    assert SecretKey.from_settings(Settings(data_dir=tmp_path / "other")).derive("x") not in derived


def test_encryption_round_trips_only_under_its_own_purpose():
    key = SecretKey(GIVEN)
    sealed = key.encrypt("channel-secrets", "xoxb-bot-token")
    assert "xoxb" not in sealed
    assert key.decrypt("channel-secrets", sealed) == "xoxb-bot-token"
    with pytest.raises(InvalidToken):
        key.decrypt("webhook-secrets", sealed)
    with pytest.raises(InvalidToken):
        SecretKey("z" * 40).decrypt("channel-secrets", sealed)
