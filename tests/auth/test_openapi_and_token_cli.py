"""The OpenAPI document declares the bearer scheme and each operation's scope; `/docs` keeps
a pasted token; `python -m app token` mints a token the service accepts."""

import os
import subprocess
import sys
from pathlib import Path

import jwt

from app.api.access import ADMIN, READ, WRITE
from app.main import create_app, load_settings
from tests.auth.conftest import AUDIENCE, AUTH_SETTINGS, ISSUER, SECRET, AuthInstance, bearer
from tests.auth.test_route_matrix import expected_scope

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 60


async def test_the_document_declares_the_scheme_and_every_operations_scope(
    auth_instance: AuthInstance,
) -> None:
    async with auth_instance() as (_app, client):
        document = (await client.get("/openapi.json")).json()  # open, without a token
        docs = await client.get("/docs")
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert all(name in scheme["description"] for name in (READ, WRITE, ADMIN))
    seen = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            needed = expected_scope(method.upper(), path)
            seen.add(needed)
            if needed is None:
                assert operation["security"] == [], (method, path)
                continue
            assert operation["security"] == [{"bearerAuth": [needed]}], (method, path)
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    assert seen == {None, READ, WRITE, ADMIN}
    assert docs.status_code == 200
    assert '"persistAuthorization": true' in docs.text  # a pasted token survives a reload


def test_without_auth_the_document_declares_no_security() -> None:
    document = create_app(load_settings(_env_file=None)).openapi()
    assert "securitySchemes" not in document.get("components", {})
    assert not any("security" in op for item in document["paths"].values() for op in item.values())


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTH_", "ADMIN_", "DATABASE_", "REDIS_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "token", *args],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


CONFIGURED = {"AUTH_JWT_SECRET": SECRET, "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE}


async def test_the_token_command_mints_a_token_the_service_accepts(
    auth_instance: AuthInstance,
) -> None:
    made = cli(
        "--scope", f"{READ} {WRITE}", "--subject", "ann-laptop", "--ttl", "120", **CONFIGURED
    )
    assert made.returncode == 0, made.stderr
    minted = made.stdout.strip()
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["scope"] == f"{READ} {WRITE}" and claims["sub"] == "ann-laptop"
    assert claims["exp"] - claims["iat"] == 120
    assert AUTH_SETTINGS["auth_jwt_secret"] == SECRET
    async with auth_instance() as (_app, client):
        listed = await client.get("/api/v1/heroes", headers=bearer(minted))
        assert listed.status_code == 200
        flush = await client.delete("/cache/heroes", headers=bearer(minted))
        assert flush.status_code == 403


def test_the_token_command_says_what_is_missing() -> None:
    unconfigured = cli("--scope", READ)
    assert unconfigured.returncode == 2 and not unconfigured.stdout
    assert "AUTH_JWT_SECRET, AUTH_ISSUER, AUTH_AUDIENCE" in unconfigured.stderr
    unknown = cli("--scope", "tales.everything", **CONFIGURED)
    assert unknown.returncode == 2 and "unknown scope" in unknown.stderr
    short_secret = cli("--scope", READ, **{**CONFIGURED, "AUTH_JWT_SECRET": "s3cr3t-value"})
    assert short_secret.returncode == 2 and "AUTH_JWT_SECRET" in short_secret.stderr
    assert "s3cr3t-value" not in short_secret.stderr
