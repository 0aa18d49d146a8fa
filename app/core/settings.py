"""Service configuration, read from the environment and `.env` (pydantic-settings).

Each entity adds its TTL setting, `CACHE_<NAME>_TTL`, from its declaration: the settings
class of an app is `settings_class(registry)`.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL

from app.core.jwks import load_jwks

if TYPE_CHECKING:  # the registry's entities need the database module, which needs Settings
    from app.core.registry import EntitySpec, Registry


#: Where secrets are read from, one file per setting named like it (`database_password`,
#: `cache_key_salt`, ...): Docker/compose secrets are mounted there. `SECRETS_DIR` moves it.
DEFAULT_SECRETS_DIR = "/run/secrets"
SECRETS_DIR_VARIABLE = "SECRETS_DIR"

#: RFC 7518 3.2: an HS256 key is at least as long as the hash (256 bits)
MIN_HS256_SECRET_BYTES = 32
MAX_AUTH_LEEWAY_S = 300
#: CACHE_REPAIR_BOUND_MS limits: below the minimum every process would poll its outbox more
#: than 20 times a second; the maximum keeps the guarantee meaningful.
MIN_REPAIR_BOUND_MS = 200
MAX_REPAIR_BOUND_MS = 60_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # `development` (the default of `make run`) accepts the built-in defaults: a SQLite
    # file and the Redis on localhost. `production` (the image's default) refuses to start
    # unless the database, Redis and CACHE_KEY_SALT are set explicitly.
    app_env: Literal["development", "production"] = "development"

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    web_concurrency: int = Field(1, ge=1, le=64)  # worker processes of `python -m app serve`
    # uvicorn's access log (off: it costs a tenth of a hit); when on, paths are logged without
    # their query string, which can carry a child's name (app.core.access_log)
    access_log: bool = False
    # X-Forwarded-For/-Proto from these proxies only (comma-separated IPs/CIDRs, or "*")
    proxy_headers: bool = True
    forwarded_allow_ips: str = Field("127.0.0.1", min_length=1)
    # seconds a stopping worker waits for requests in flight (SIGTERM) before closing them
    graceful_shutdown_timeout: int = Field(20, ge=1, le=600)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    health_timeout: float = Field(1.0, gt=0, le=30)

    # Database: DATABASE_URL, or (when it is not set) the parts DATABASE_HOST/PORT/USER/
    # PASSWORD/NAME (PostgreSQL), from which the URL is built with its password escaped (a
    # password file needs no quoting).
    database_url: str = "sqlite+aiosqlite:///./tales.db"
    database_host: str | None = None
    database_port: int = Field(5432, ge=1, le=65535)
    database_user: str | None = None
    database_password: SecretStr | None = None
    database_name: str | None = None
    database_pool_size: int = Field(10, ge=1)
    database_connect_timeout: float = Field(5.0, gt=0)
    database_statement_timeout: float = Field(15.0, gt=0)

    # Redis: `standalone` (REDIS_URL), `cluster` (REDIS_URL names any node; the client
    # discovers the others) or `sentinel` (REDIS_SENTINELS + REDIS_SENTINEL_MASTER).
    redis_mode: Literal["standalone", "cluster", "sentinel"] = "standalone"
    redis_url: str = "redis://localhost:6379/0"
    redis_sentinels: str = ""  # host:port,host:port,...
    redis_sentinel_master: str = ""
    redis_sentinel_password: SecretStr | None = None
    redis_password: SecretStr | None = None
    # CA bundle that signs the Redis servers' certificates (`rediss://`); unset: the system's
    redis_tls_ca_file: FilePath | None = None
    redis_db: int | None = Field(None, ge=0)
    redis_enabled: bool = True
    redis_max_connections: int = Field(10, ge=1)
    redis_socket_timeout: float = Field(0.05, gt=0, le=30)
    redis_connect_timeout: float = Field(0.05, gt=0, le=30)
    redis_pool_timeout: float = Field(0.2, gt=0, le=30)

    # Cache
    cache_default_ttl: int = Field(3600, ge=1)  # of entities that declare no TTL
    cache_key_prefix: str = Field("tales:", min_length=1, max_length=64)
    cache_key_salt: SecretStr = SecretStr("")
    cache_lease_ms: int = Field(2000, ge=10)
    cache_lease_wait_ms: int = Field(300, ge=0)
    cache_early_refresh_beta: float = Field(1.0, ge=0)
    cache_near_enabled: bool = True
    cache_near_max_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)
    cache_near_lease_ms: int = Field(500, ge=50, le=60_000)
    # Once a write is acknowledged, no instance serves older data for longer than this, even
    # when the writing process lost Redis, was killed after COMMIT or shut down: any live
    # process applies the write's outbox row (app/cache/outbox.py).
    cache_repair_bound_ms: int = Field(1000, ge=MIN_REPAIR_BOUND_MS, le=MAX_REPAIR_BOUND_MS)

    # Operating the cache (README "Operating the cache")
    cache_warm_on_start: bool = False  # warm every entity in the background at start-up
    cache_warm_limit: int = Field(1000, ge=1, le=100_000)  # most recent rows warmed at start
    cache_prefetch: bool = True  # reading a child brings its first stories page in
    cache_prefetch_concurrency: int = Field(4, ge=1, le=256)  # prefetches running at once
    cache_verify_interval_s: float = Field(30.0, ge=0.1, le=86_400)  # 0.1 s .. 1 day
    cache_verify_sample: int = Field(100, ge=0, le=10_000)  # entries per interval; 0 = off

    # Circuit breaker around Redis
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_cooldown_seconds: float = Field(2.0, gt=0)

    # Admin endpoints (unset: disabled)
    admin_token: SecretStr | None = None

    # Bearer tokens (JWT) with scopes; see app/api/access.py. Off: every route is open.
    auth_enabled: bool = False
    auth_jwt_secret: SecretStr | None = None  # HS256
    auth_jwks_file: Path | None = None  # RS256 / ES256 public keys (a JWKS document)
    auth_issuer: str = ""
    auth_audience: str = ""
    auth_leeway_s: float = Field(10.0, ge=0, le=MAX_AUTH_LEEWAY_S)
    auth_protect_operator_routes: bool = False  # /metrics, /dashboard, /cache/stats
    auth_token_cache_size: int = Field(10_000, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: str) -> str:
        for address in sentinel_addresses(value):
            del address  # parsing is the check
        return value

    @model_validator(mode="after")
    def _database_from_parts(self) -> Settings:
        if self.database_host is None or "database_url" in self.model_fields_set:
            return self  # an explicit DATABASE_URL wins (e.g. the URL alembic/env.py is given)
        if not self.database_user or not self.database_name:
            raise ValueError("DATABASE_HOST needs DATABASE_USER and DATABASE_NAME")
        password = self.database_password.get_secret_value() if self.database_password else None
        url = URL.create(
            "postgresql+asyncpg",
            username=self.database_user,
            password=password,
            host=self.database_host,
            port=self.database_port,
            database=self.database_name,
        )
        self.database_url = url.render_as_string(hide_password=False)
        return self

    @model_validator(mode="after")
    def _production_is_explicit(self) -> Settings:
        """A deployment that forgot its database or Redis must not run on a throwaway SQLite
        file, degraded forever; nor hash children's names with an empty salt."""
        if self.app_env != "production":
            return self
        given = self.model_fields_set
        missing = []
        if "database_url" not in given and self.database_host is None:
            missing.append("DATABASE_URL (or DATABASE_HOST, DATABASE_USER, DATABASE_NAME)")
        redis_explicit = (
            "redis_url" in given
            or self.redis_mode == "sentinel"  # REDIS_SENTINELS is required then
            or ("redis_enabled" in given and not self.redis_enabled)
        )
        if not redis_explicit:
            missing.append(
                "REDIS_URL (or REDIS_MODE=sentinel with REDIS_SENTINELS, or REDIS_ENABLED=false)"
            )
        if not self.cache_key_salt.get_secret_value():
            missing.append("CACHE_KEY_SALT")
        if missing:
            raise ValueError(
                "APP_ENV=production needs explicit settings: "
                + "; ".join(missing)
                + " (APP_ENV=development accepts the development defaults)"
            )
        return self

    @model_validator(mode="after")
    def _mode_needs(self) -> Settings:
        if self.redis_mode == "sentinel":
            if not self.redis_sentinels:
                raise ValueError("REDIS_SENTINELS is required when REDIS_MODE=sentinel")
            if not self.redis_sentinel_master:
                raise ValueError("REDIS_SENTINEL_MASTER is required when REDIS_MODE=sentinel")
        if self.redis_tls_ca_file is not None and not self.redis_url.startswith("rediss://"):
            raise ValueError("REDIS_TLS_CA_FILE is set but REDIS_URL does not use rediss://")
        if self.redis_mode == "cluster" and self.redis_db not in (None, 0):
            raise ValueError("REDIS_DB must be 0 (or unset) when REDIS_MODE=cluster")
        return self

    @field_validator("auth_jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_HS256_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_HS256_SECRET_BYTES} bytes (an HS256 key of 256 bits)"
            )
        return value

    @field_validator("auth_jwks_file")
    @classmethod
    def _jwks_usable(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_jwks(value)  # JwksError (a ValueError) says what is wrong with the file
        return value

    @model_validator(mode="after")
    def _auth_needs(self) -> Settings:
        if not self.auth_enabled:
            return self
        if (self.auth_jwt_secret is None) == (self.auth_jwks_file is None):
            raise ValueError(
                "AUTH_ENABLED=true needs exactly one of AUTH_JWT_SECRET (HS256) and "
                "AUTH_JWKS_FILE (RS256/ES256)"
            )
        if not self.auth_issuer:
            raise ValueError("AUTH_ISSUER is required when AUTH_ENABLED=true")
        if not self.auth_audience:
            raise ValueError("AUTH_AUDIENCE is required when AUTH_ENABLED=true")
        return self

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must use sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("cache_key_prefix")
    @classmethod
    def _prefix_is_plain(cls, value: str) -> str:
        if any(ch in value for ch in "*?[]\\ \n\r\t"):
            raise ValueError("must not contain glob characters or whitespace")
        if any(ch in value for ch in "{}"):  # the keys' hash tags follow it (cache/format.py)
            raise ValueError("must not contain { or } (they would change the keys' hash tags)")
        return value

    def ttl(self, spec: EntitySpec) -> int:
        """The entity's TTL in seconds: its `CACHE_<NAME>_TTL` setting."""
        value = getattr(self, spec.ttl_setting, None)
        return value if isinstance(value, int) else self.cache_default_ttl


def sentinel_addresses(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as (host, port) pairs; ValueError names a malformed one."""
    addresses: list[tuple[str, int]] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


class SettingsError(RuntimeError):
    """Invalid configuration; the message names the offending environment variables."""


@cache
def settings_class(registry: Registry) -> type[Settings]:
    """Settings with one `CACHE_<NAME>_TTL` field per declared entity (default: the TTL it
    declares, or CACHE_DEFAULT_TTL)."""
    fields: dict[str, Any] = {
        spec.ttl_setting: (int | None, Field(spec.ttl, ge=1)) for spec in registry
    }
    model: type[Settings] = create_model("Settings", __base__=Settings, **fields)
    return model


def secrets_dir() -> Path | None:
    """The secrets directory: SECRETS_DIR if set (it must exist), else /run/secrets when it
    exists (absent outside containers: no secret files then)."""
    configured = os.environ.get(SECRETS_DIR_VARIABLE)
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise SettingsError(
                f"invalid configuration: {SECRETS_DIR_VARIABLE}: {configured} is not a directory"
            )
        return path
    default = Path(DEFAULT_SECRETS_DIR)
    return default if default.is_dir() else None


def load_settings(registry: Registry, **overrides: Any) -> Settings:
    """The settings from (by precedence) `overrides`, the environment, `.env` and the secrets
    directory (`secrets_dir()`)."""
    overrides.setdefault("_secrets_dir", secrets_dir())
    try:
        return settings_class(registry)(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"]
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
