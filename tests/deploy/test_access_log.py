"""Access logs carry no child's name, however the service is started (README, "Deployment":
logs carry ids, never names). Each case starts the REAL process with ACCESS_LOG on, sends
requests with a child's name in the query string and the body, and reads what the process
wrote to stdout and stderr."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.api.payloads import API, child
from tests.conftest import migrate
from tests.deploy.conftest import ENTRYPOINT, ROOT, Started, base_env
from tests.support.redis_server import RedisServer

NAME = "Zoë Quillfeather"
#: every form the name could take in a log line: as sent, percent-encoded, form-encoded
NAME_FORMS = ("Quillfeather", "Zoë", "Zo%C3%AB", "Zo%c3%ab")
VENV_BIN = str(Path(sys.executable).parent)


def make_run() -> list[str]:
    return ["make", "--no-print-directory", "run"]


def entrypoint() -> list[str]:
    return ["sh", str(ENTRYPOINT)]  # the image's entrypoint; no argument: `serve`


def uvicorn_by_hand() -> list[str]:
    return [sys.executable, "-m", "uvicorn", "app.main:app", "--access-log"]


STARTS = {
    "make-run": make_run,
    "entrypoint": entrypoint,
    "uvicorn": uvicorn_by_hand,
}


def exercise(url: str, headers: dict[str, str] | None = None) -> None:
    """Requests that carry the name: in a body, in list filters, in a story's filter."""
    with httpx.Client(base_url=url, headers=headers, timeout=10.0) as client:
        created = client.post(f"{API}/children", json=child(name=NAME))
        assert created.status_code == 201, created.text
        child_id = created.json()["id"]
        listed = client.get(f"{API}/children", params={"name": NAME})
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json()["items"]] == [child_id]
        assert client.get(f"{API}/stories", params={"child_name": NAME}).status_code == 200
        assert client.get(f"{API}/children/{child_id}").status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("start", STARTS)
def test_access_log_lines_carry_no_child_name(
    start: str,
    fresh_database_url: str,
    redis_server: RedisServer,
    started: list[Started],
    tmp_path: Path,
) -> None:
    migrate(fresh_database_url)
    env = base_env(
        DATABASE_URL=fresh_database_url,
        REDIS_URL=redis_server.url,
        ACCESS_LOG="true",
        LOG_LEVEL="INFO",
        # the entrypoint's settings: the image's production mode, alembic.ini in the checkout
        APP_ENV="production",
        CACHE_KEY_SALT="a-salt-for-this-test",
        APP_HOME=str(ROOT),
    )
    env_args = ["--host", env["HOST"], "--port", env["PORT"]] if start == "uvicorn" else []
    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"  # `python` of the entrypoint: this venv's
    service = Started([*STARTS[start](), *env_args], env, tmp_path / "service.log")
    started.append(service)
    service.wait_healthy()

    exercise(service.url)
    # uvicorn writes its access line before the response body: a last request flushes all
    httpx.get(f"{service.url}/health", timeout=5.0)
    service.stop()

    output = service.output()
    for form in NAME_FORMS:
        assert form.lower() not in output.lower(), f"{form!r} in the log:\n{output}"
    access_lines = re.findall(r'"(GET|POST) (/api/v1/\S+) HTTP/1\.1" (\d{3})', output)
    assert ("POST", "/api/v1/children", "201") in access_lines, output
    assert ("GET", "/api/v1/children?…", "200") in access_lines, output
    assert ("GET", "/api/v1/stories?…", "200") in access_lines, output


CLIENT_BEHIND_PROXY = "203.0.113.7"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("trusted", "logged"), [("127.0.0.1", CLIENT_BEHIND_PROXY), ("10.9.9.9", "127.0.0.1")]
)
def test_forwarded_for_is_taken_only_from_trusted_proxies(
    trusted: str,
    logged: str,
    postgresql_database_url: str,
    redis_server: RedisServer,
    started: list[Started],
    tmp_path: Path,
) -> None:
    """FORWARDED_ALLOW_IPS reaches uvicorn through `python -m app serve`: the access line
    names the client a trusted proxy forwarded, and ignores the header from anyone else."""
    env = base_env(
        DATABASE_URL=postgresql_database_url,
        REDIS_URL=redis_server.url,
        ACCESS_LOG="true",
        FORWARDED_ALLOW_IPS=trusted,
    )
    service = Started([sys.executable, "-m", "app", "serve"], env, tmp_path / "service.log")
    started.append(service)
    service.wait_healthy()
    response = httpx.get(
        f"{service.url}/health/ready", headers={"x-forwarded-for": CLIENT_BEHIND_PROXY}, timeout=5
    )
    assert response.status_code == 200, response.text
    httpx.get(f"{service.url}/health", timeout=5.0)
    service.stop()
    lines = [line for line in service.output().splitlines() if "/health/ready" in line]
    assert lines, service.output()
    assert lines[0].split()[1].startswith(f"{logged}:"), lines
