import json
import os

import pytest

from tenantgraph.settings import ConfigFile, Settings


def test_environment_names(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("TENANTGRAPH_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.database_url == "postgresql://db/x"
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.data_dir == tmp_path


def test_a_cluster_is_named_by_redis_url(monkeypatch):
    monkeypatch.setenv("TENANTGRAPH_REDIS_CLUSTER", "true")
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValueError, match="TENANTGRAPH_REDIS_CLUSTER needs REDIS_URL"):
        Settings()
    monkeypatch.setenv("REDIS_URL", "redis://node-1:6379")
    assert Settings().redis_cluster


def test_defaults_start_embedded_servers(monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "TENANTGRAPH_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.database_url is None and settings.redis_url is None
    assert str(settings.data_dir) == ".tenantgraph"


def test_worker_concurrency_follows_the_pool_unless_set(monkeypatch):
    """Four runs at once made eight clients queue; the default is 4/5 of the pool."""
    for name in ("TENANTGRAPH_WORKER_CONCURRENCY", "TENANTGRAPH_POOL_MAX_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().worker_concurrency == 32
    assert Settings(pool_max_size=10).worker_concurrency == 8
    assert Settings(pool_max_size=1).worker_concurrency == 1
    monkeypatch.setenv("TENANTGRAPH_WORKER_CONCURRENCY", "0")  # no worker in this process
    assert Settings().worker_concurrency == 0


def test_langgraph_json_sections_are_read_and_build_keys_named(tmp_path):
    path = tmp_path / "langgraph.json"
    path.write_text(
        json.dumps(
            {
                "dependencies": ["."],
                "graphs": {"agent": "./agent.py:graph"},
                "store": {"index": {"dims": 384, "embed": "fake", "fields": ["text"]}},
                "auth": {"path": "./auth.py:auth"},
                "env": ".env",
            }
        )
    )
    config = ConfigFile.load(path)
    assert config.graphs == {"agent": "./agent.py:graph"}
    assert config.store["index"]["dims"] == 384
    assert config.auth == {"path": "./auth.py:auth"}
    assert config.env == ".env"
    assert config.build_keys == ["dependencies"] and config.unknown_keys == []
    assert config.base_dir == tmp_path
    assert Settings(config=path).config_file.graphs == config.graphs


def test_config_file_found_in_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ConfigFile.load(None).graphs == {}
    (tmp_path / "tenantgraph.json").write_text('{"graphs": {"g": "m:g"}}')
    assert ConfigFile.load(None).graphs == {"g": "m:g"}


def test_unreadable_config_file_is_a_clear_error(tmp_path):
    path = tmp_path / "tenantgraph.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read config file"):
        ConfigFile.load(path)


def test_env_reaches_the_process_without_overriding_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TG_SET_ALREADY", "from the environment")
    for name in ("TG_FROM_FILE", "TG_FROM_DOTENV"):  # unset again after the test
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"env": {"TG_FROM_FILE": "a", "TG_SET_ALREADY": "b"}}))
    ConfigFile.load(path).apply_env()
    assert os.environ["TG_FROM_FILE"] == "a"
    assert os.environ["TG_SET_ALREADY"] == "from the environment"
    (tmp_path / "graphs.env").write_text("TG_FROM_DOTENV='quoted value'\n# a comment\n")
    path.write_text(json.dumps({"env": "graphs.env"}))
    ConfigFile.load(path).apply_env()
    assert os.environ["TG_FROM_DOTENV"] == "quoted value"


@pytest.mark.parametrize("key", ["checkpointer", "encryption", "priority", "webhooks"])
def test_a_runtime_feature_tenantgraph_lacks_is_refused_at_start(tmp_path, key):
    path = tmp_path / "langgraph.json"
    path.write_text(json.dumps({"graphs": {}, key: {"path": "./x.py:y"}}))
    with pytest.raises(ValueError, match=key):
        ConfigFile.load(path)
