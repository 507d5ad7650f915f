"""Configuration: environment variables plus a `langgraph.json`-compatible config file.

The bottom layer: nothing here imports another tenantgraph module.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CONFIG_FILE_NAMES = ("tenantgraph.json", "langgraph.json")
AUTH_FIELDS = frozenset(
    {
        "jwt_secret",
        "jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "org_mode",
        "org_claim",
        "role_claim",
        "user_claim",
        "scope_claims",
    }
)


class Limit(BaseModel):
    """A token bucket: holds `limit` tokens and refills all of them in `window_seconds`."""

    limit: int = Field(gt=0)
    window_seconds: int = Field(gt=0)


class RateLimits(BaseModel):
    """Global defaults of every bucket; an org may override each one (table `rate_limits`).

    Sized so that people and their scripts never meet them in ordinary use (a bucket holds
    its whole limit, so a burst may spend it at once): an evaluation of 100 runs at a time
    with its thread and store calls, or a loop of a thousand store puts, passes; a runaway
    loop is stopped within a minute. The README has the numbers and how to tighten them.
    """

    org_requests: Limit = Limit(limit=30_000, window_seconds=60)
    user_requests: Limit = Limit(limit=3_000, window_seconds=60)
    api_key_requests: Limit = Limit(limit=3_000, window_seconds=60)
    org_runs: Limit = Limit(limit=1_200, window_seconds=60)
    user_runs: Limit = Limit(limit=300, window_seconds=60)


class EphemeralSettings(BaseModel):
    """The ephemeral state's settings (field `ephemeral`, env `TENANTGRAPH_EPHEMERAL__<FIELD>`):
    global rate limits, idempotency records (kept in Postgres) and memory lifetimes."""

    rate_limits: RateLimits = RateLimits()
    rate_limit_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long an org's overrides are cached in-process."
    )
    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    idempotency_pending_seconds: int = Field(
        default=600,
        gt=0,
        description="How long an in-flight request holds its key if the process dies mid-way.",
    )
    idempotency_max_body_bytes: int = Field(
        default=1 << 20, gt=0, description="Larger request or response bodies are not stored."
    )
    session_window_size: int = Field(default=50, gt=0)
    session_window_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    episode_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    episode_max_per_session: int = Field(default=1000, gt=0)
    flag_ttl_seconds: int = Field(default=24 * 3600, gt=0)


class CorsConfig(BaseModel):
    """Cross-origin access for browser UIs served from another origin: langgraph.json's
    `http.cors` keys. Without it no origin is allowed (a browser refuses the answers)."""

    model_config = ConfigDict(extra="forbid")

    allow_origins: list[str] = Field(default_factory=list)
    allow_origin_regex: str | None = None
    allow_methods: list[str] = Field(default_factory=lambda: ["*"])
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])
    # Credentials are headers (API keys, tokens), not cookies: browsers need no more.
    allow_credentials: bool = False
    # What the SDKs read: where a run streams and joins, pagination, the request id, and
    # when to retry.
    expose_headers: list[str] = Field(
        default_factory=lambda: [
            "Content-Location",
            "Location",
            "X-Pagination-Next",
            "X-Pagination-Total",
            "X-Request-Id",
            "Retry-After",
        ]
    )
    max_age: int = Field(default=600, ge=0)


class HttpConfig(BaseModel):
    """langgraph.json's `http` section; a key of it that is not built is refused at start."""

    model_config = ConfigDict(extra="forbid")

    cors: CorsConfig | None = None


class ThreadTtl(BaseModel):
    """langgraph.json's `checkpointer.ttl`: a thread not updated for `default_ttl` minutes
    is deleted (`delete`) or cut back to its latest checkpoints (`keep_latest`), checked
    every `sweep_interval_minutes`, at most `sweep_limit` threads per sweep."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["delete", "keep_latest"] = "delete"
    default_ttl: float = Field(gt=0)
    sweep_interval_minutes: float = Field(default=5, gt=0)
    sweep_limit: int = Field(default=10_000, gt=0)


class CheckpointerConfig(BaseModel):
    """langgraph.json's `checkpointer`; its other keys (a custom backend, serde) are not
    built, so they are refused at start."""

    model_config = ConfigDict(extra="forbid")

    ttl: ThreadTtl | None = None


# langgraph.json keys that shape the image `langgraph build` makes, not the running server.
BUILD_KEYS = frozenset(
    {
        "api_version",
        "base_image",
        "dependencies",
        "dockerfile_lines",
        "image_distro",
        "keep_pkg_tools",
        "node_version",
        "pip_config_file",
        "pip_installer",
        "python_version",
        "source",
        "ui",
        "_INTERNAL_docker_tag",
    }
)
# Runtime features of the LangGraph platform that tenantgraph does not have: a config that
# asks for one must not start as if it had it.
UNBUILT_KEYS = frozenset({"encryption", "priority", "webhooks"})


class ConfigFile(BaseModel):
    """The parts of a config file the server reads. Build-time keys of `langgraph.json`
    are no-ops, keys of runtime features tenantgraph lacks are refused, and any other key
    is a warning at start (`unknown_keys`): nothing is accepted and silently ignored."""

    model_config = ConfigDict(extra="allow")

    graphs: dict[str, Any] = Field(default_factory=dict)
    store: dict[str, Any] = Field(default_factory=dict)
    auth: dict[str, Any] = Field(default_factory=dict)
    http: HttpConfig = Field(default_factory=HttpConfig)
    checkpointer: CheckpointerConfig = Field(default_factory=CheckpointerConfig)
    env: dict[str, str] | str = Field(
        default_factory=dict,
        description="Variables for the graphs' code: a mapping, or a `.env` file's path.",
    )
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _refuse_unbuilt_features(self) -> ConfigFile:
        unbuilt = sorted(UNBUILT_KEYS & set(self.model_extra or {}))
        if unbuilt:
            raise ValueError(f"tenantgraph does not support the config keys {unbuilt}")
        return self

    @property
    def build_keys(self) -> list[str]:
        """The keys read by `langgraph build` only: a no-op here."""
        return sorted(BUILD_KEYS & set(self.model_extra or {}))

    @property
    def unknown_keys(self) -> list[str]:
        """Keys no langgraph.json has (a misspelling, most likely)."""
        return sorted(set(self.model_extra or {}) - BUILD_KEYS)

    def apply_env(self) -> None:
        """Put `env` into the process environment before the graphs are imported; a
        variable the environment sets already wins, as it does for the server's settings."""
        if isinstance(self.env, str):
            values = dotenv_values(self.base_dir / self.env)
        else:
            values = self.env
        for name, value in values.items():
            if value is not None:
                os.environ.setdefault(name, value)

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
    def path(self) -> Path | None:
        """The file read, if any (absolute)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths in the file (e.g. graph modules) are resolved from."""
        return self._path.parent if self._path else Path.cwd()


class Settings(BaseSettings):
    """Process settings. With no `DATABASE_URL` / `REDIS_URL` embedded servers are started."""

    model_config = SettingsConfigDict(
        env_prefix="TENANTGRAPH_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_assignment=True,
    )

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
    redis_cluster: bool = Field(
        default=False,
        description="REDIS_URL names a node of a Valkey/Redis Cluster (the client finds the rest).",
    )
    data_dir: Path = Path(".tenantgraph")
    config: Path | None = None
    pool_min_size: int = 2
    # 40: with 20 (16 runs at once), 32 clients' runs.wait queued half their runs and made
    # 77-86 runs/s; 99-117 with 40 (32 at once), the same at 8 clients (docs/measurements.md).
    pool_max_size: int = 40
    pool_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait for a database connection before a 503 with Retry-After.",
    )
    supervise_embedded: bool = Field(
        default=True,
        description="Restart an embedded Postgres or Valkey that died (off: hold an outage).",
    )
    ephemeral: EphemeralSettings = Field(default_factory=EphemeralSettings)
    worker_concurrency: int | None = Field(  # an int once validated (see below)
        default=None,
        ge=0,
        description="Runs executed at once by the server's own worker; 0: none. Default: "
        "4/5 of the pool (32 of 40), as a run holds at most one connection at a time.",
    )
    worker_lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a claimed run is held without a heartbeat."
    )
    worker_heartbeat_seconds: float = Field(
        default=1.0, gt=0, description="Lease renewal (and cancel check) period of a run."
    )
    worker_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often a worker looks for runs queued elsewhere."
    )
    worker_cron_seconds: float = Field(
        default=5.0, gt=0, description="How often a worker fires due crons."
    )
    events_buffer_bytes: int = Field(
        default=4 * 2**20,
        gt=0,
        description="Events of one run kept in memory while Valkey is unreachable; past it the "
        "oldest intermediate events are dropped (the outcome and end marker are kept).",
    )
    cron_min_interval_seconds: float = Field(
        default=60.0, ge=0, description="Schedules that fire more often than this are refused."
    )
    crons_per_user: int = Field(default=100, gt=0, description="Crons one user may own.")
    stream_readers: int = Field(
        default=4,
        gt=0,
        description="Valkey connections that read every run stream a process serves.",
    )
    streams_per_user: int = Field(
        default=50, gt=0, description="Streams and joins one user may hold open in one process."
    )
    streams_per_org: int = Field(
        default=500, gt=0, description="Streams and joins one org may hold open in one process."
    )
    shutdown_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a stopping process waits for open requests and runs to end.",
    )
    max_body_bytes: int = Field(
        default=10 * 2**20, gt=0, description="Larger request bodies are refused with 413."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated); "
        "replaces the config file's `http.cors.allow_origins`.",
    )
    outbound_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Non-public networks (comma-separated CIDRs, e.g. 10.1.0.0/16) that "
        "webhooks may reach; by default only public addresses are.",
    )
    outbound_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of one attempt of a webhook's POST."
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Base URL of Slack's Web API, where channel replies are posted.",
    )
    whatsapp_api_url: str = Field(
        default="https://graph.facebook.com/v21.0",
        description="Base URL of the WhatsApp Cloud API (Graph API), where replies are sent.",
    )
    channel_dedup_seconds: int = Field(
        default=24 * 3600, gt=0, description="How long a channel's delivery ids are remembered."
    )
    pg_shared_buffers_mb: int | None = Field(
        default=None, description="Embedded Postgres shared_buffers; sized from memory if unset."
    )

    # Authentication (api/auth.py). The config file's "auth" section may set the same
    # names without the TENANTGRAPH_ prefix; the environment wins.
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    org_mode: Literal["claims", "membership"] = "claims"
    org_claim: str = "org_id"
    role_claim: str = "org_role"
    user_claim: str = "sub"
    scope_claims: list[str] = Field(
        default_factory=lambda: ["scope", "permissions"],
        description="Claims holding a token's scopes (the first present: a space-separated "
        "string or a list).",
    )
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs feedback tokens and encrypts tenants' secrets at rest; required "
        "with an external database, generated into the data dir otherwise.",
    )

    @field_validator("cors_origins", "outbound_allowed_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _default_concurrency(self) -> Settings:
        """4 at once made 8 clients queue (bench/peer_bench.py); a fifth of the pool stays
        for the requests while every run holds a connection."""
        if self.worker_concurrency is None:
            self.worker_concurrency = max(1, self.pool_max_size * 4 // 5)
        return self

    @model_validator(mode="after")
    def _cluster_needs_url(self) -> Settings:
        if self.redis_cluster and not self.redis_url:
            raise ValueError(
                "TENANTGRAPH_REDIS_CLUSTER needs REDIS_URL (the embedded Valkey is one server)"
            )
        return self

    @model_validator(mode="after")
    def _auth_from_config_file(self) -> Settings:
        for name, value in self.config_file.auth.items():
            if name in AUTH_FIELDS and name not in self.model_fields_set:
                setattr(self, name, value)
        return self

    @property
    def app_password(self) -> str | None:
        return self.app_role_password.get_secret_value() if self.app_role_password else None

    @property
    def cors(self) -> CorsConfig | None:
        """The CORS policy: the config file's, with the origins of `cors_origins` if set."""
        cors = self.config_file.http.cors
        if self.cors_origins:
            return (cors or CorsConfig()).model_copy(update={"allow_origins": self.cors_origins})
        return cors

    @cached_property
    def config_file(self) -> ConfigFile:
        return ConfigFile.load(self.config)
