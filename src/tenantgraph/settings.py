"""Configuration: environment variables plus a `langgraph.json`-compatible config file."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_FILE_NAMES = ("tenantgraph.json", "langgraph.json")


class ConfigFile(BaseModel):
    """The parts of a config file the server reads; other `langgraph.json` keys are kept."""

    model_config = ConfigDict(extra="allow")

    graphs: dict[str, Any] = Field(default_factory=dict)
    store: dict[str, Any] = Field(default_factory=dict)
    auth: dict[str, Any] = Field(default_factory=dict)
    _path: Path | None = PrivateAttr(default=None)

    @classmethod
    def load(cls, path: Path | None) -> ConfigFile:
        """Read `path`, or the first config file in the working directory, or nothing."""
        if path is None:
            path = next((Path(n) for n in CONFIG_FILE_NAMES if Path(n).is_file()), None)
            if path is None:
                return cls()
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read config file {path}: {exc}") from exc
        config = cls.model_validate(raw)
        config._path = path.resolve()
        return config

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the file (e.g. graph modules) are resolved from."""
        return self._path.parent if self._path else Path.cwd()


class Settings(BaseSettings):
    """Process settings. With no `DATABASE_URL` / `REDIS_URL` embedded servers are started."""

    model_config = SettingsConfigDict(env_prefix="TENANTGRAPH_", extra="ignore")

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TENANTGRAPH_DATABASE_URL")
    )
    app_database_url: str | None = Field(
        default=None,
        description="Connection string of the runtime role; derived from DATABASE_URL if unset.",
    )
    app_role_password: SecretStr | None = Field(
        default=None,
        description="Password `migrate` gives the runtime role on an external database.",
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "TENANTGRAPH_REDIS_URL")
    )
    data_dir: Path = Path(".tenantgraph")
    config: Path | None = None
    pool_min_size: int = 2
    pool_max_size: int = 20
    pg_shared_buffers_mb: int | None = Field(
        default=None, description="Embedded Postgres shared_buffers; sized from memory if unset."
    )

    @property
    def app_password(self) -> str | None:
        return self.app_role_password.get_secret_value() if self.app_role_password else None

    @cached_property
    def config_file(self) -> ConfigFile:
        return ConfigFile.load(self.config)
