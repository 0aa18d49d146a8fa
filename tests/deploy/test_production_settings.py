"""The image refuses to start on development defaults (APP_ENV=production); the database URL
built from its parts escapes the password; secrets are read from a secrets directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.core.settings import Settings, SettingsError, load_settings
from app.entities import ENTITIES
from tests.deploy.conftest import ENTRYPOINT, ROOT

EXIT_INVALID_SETTINGS = 2
#: a password that breaks a URL pasted together by hand
AWKWARD_PASSWORD = "p@ss:w/rd#?%&="
REQUIRED = ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_SALT")


def settings(**values: Any) -> Settings:
    return load_settings(ENTITIES, _env_file=None, **values)


def production(**values: Any) -> Settings:
    """Production settings with everything explicit; a value of None leaves that one out."""
    explicit: dict[str, Any] = {
        "app_env": "production",
        "database_url": "postgresql+asyncpg://tales@db/tales",
        "redis_url": "redis://cache:6379/0",
        "cache_key_salt": "salt",
    }
    merged = {**explicit, **values}
    return settings(**{name: value for name, value in merged.items() if value is not None})


def test_development_accepts_the_defaults() -> None:
    loaded = settings()
    assert loaded.app_env == "development"
    assert loaded.database_url.startswith("sqlite+aiosqlite://")


def test_production_refuses_the_defaults_naming_each_missing_setting() -> None:
    with pytest.raises(SettingsError) as error:
        settings(app_env="production")
    for name in REQUIRED:
        assert name in str(error.value)
    assert "APP_ENV=development" in str(error.value)


@pytest.mark.parametrize(
    ("dropped", "named"),
    [
        ("database_url", "DATABASE_URL"),
        ("redis_url", "REDIS_URL"),
        ("cache_key_salt", "CACHE_KEY_SALT"),
    ],
)
def test_production_names_the_one_missing_setting(dropped: str, named: str) -> None:
    values = {
        "database_url": "postgresql+asyncpg://tales@db/tales",
        "redis_url": "redis://cache:6379/0",
        "cache_key_salt": "salt",
    }
    del values[dropped]
    with pytest.raises(SettingsError) as error:
        settings(app_env="production", **values)
    message = str(error.value)
    assert named in message
    assert [n for n in REQUIRED if n != named and f"; {n}" in message] == []


def test_production_accepts_explicit_settings_or_redis_explicitly_off() -> None:
    assert production().redis_url == "redis://cache:6379/0"
    explicit_off = settings(
        app_env="production",
        database_url="postgresql+asyncpg://tales@db/tales",
        redis_enabled=False,
        cache_key_salt="salt",
    )
    assert not explicit_off.redis_enabled
    with pytest.raises(SettingsError, match="REDIS_URL"):
        settings(
            app_env="production",
            database_url="postgresql+asyncpg://tales@db/tales",
            redis_enabled=True,
            cache_key_salt="salt",
        )


def test_the_database_url_built_from_parts_escapes_the_password() -> None:
    loaded = production(
        database_url=None,
        database_host="db.internal",
        database_port=6432,
        database_user="tales",
        database_password=AWKWARD_PASSWORD,
        database_name="tales",
    )
    url = make_url(loaded.database_url)
    assert (url.drivername, url.host, url.port, url.username, url.database) == (
        "postgresql+asyncpg",
        "db.internal",
        6432,
        "tales",
        "tales",
    )
    assert url.password == AWKWARD_PASSWORD


def test_an_explicit_url_wins_over_the_parts_and_incomplete_parts_are_refused() -> None:
    explicit = "sqlite+aiosqlite:///x.db"
    assert settings(database_url=explicit, database_host="db").database_url == explicit
    with pytest.raises(SettingsError, match="DATABASE_USER and DATABASE_NAME"):
        settings(database_host="db", database_name="tales")


def test_secrets_are_read_from_the_secrets_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "database_password").write_text(AWKWARD_PASSWORD + "\n")
    (tmp_path / "cache_key_salt").write_text("salt-from-a-file\n")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    loaded = settings(
        app_env="production",
        database_host="db",
        database_user="tales",
        database_name="tales",
        redis_url="redis://cache:6379/0",
    )
    assert loaded.cache_key_salt.get_secret_value() == "salt-from-a-file"
    assert make_url(loaded.database_url).password == AWKWARD_PASSWORD
    # the environment wins over a file
    monkeypatch.setenv("CACHE_KEY_SALT", "salt-from-the-environment")
    assert settings().cache_key_salt.get_secret_value() == "salt-from-the-environment"


def test_a_missing_secrets_directory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETS_DIR", "/nonexistent/secrets")
    with pytest.raises(SettingsError, match="SECRETS_DIR"):
        settings()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "app", "serve"],
        [sys.executable, "-m", "app", "migrate"],
        ["sh", str(ENTRYPOINT)],
        ["sh", str(ENTRYPOINT), "migrate"],
    ],
    ids=["serve", "migrate", "entrypoint", "entrypoint-migrate"],
)
def test_the_service_refuses_to_start_in_production_without_its_settings(
    command: list[str],
) -> None:
    env = {
        **os.environ,
        "APP_ENV": "production",
        "APP_HOME": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    run = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == EXIT_INVALID_SETTINGS, run.stderr
    for name in REQUIRED:
        assert name in run.stderr
    assert "Traceback" not in run.stderr
