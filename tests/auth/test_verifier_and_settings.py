"""The verifier's memory of tokens (bounded, expiring with the token, keyed by a hash), the
AUTH_* settings (validated at start, naming the setting), the warning and `/health/ready`
when auth is off."""

import asyncio
import json
import logging
import time
from pathlib import Path

import jwt
import pytest

from app.api.access import ADMIN, READ, WRITE, required_scope
from app.api.tokens import TokenError, TokenVerifier
from app.core.settings import SettingsError
from app.main import create_app, load_settings
from tests.auth.conftest import AUDIENCE, ISSUER, SECRET, AuthInstance, claims, token
from tests.auth.test_jwks import RSA_KID, public_jwk
from tests.conftest import AppFactory

LEEWAY_S = 1


def verifier(cache_size: int = 100) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, leeway_s=LEEWAY_S, secret=SECRET, cache_size=cache_size
    )


def header(value: str) -> bytes:
    return f"Bearer {value}".encode()


async def test_a_repeated_token_is_checked_once_and_remembered_until_it_expires() -> None:
    checker = verifier()
    expires = int(time.time()) + 1
    good = token(READ, exp=expires)
    assert checker.caller(header(good)).scopes == {READ}
    for _ in range(5):
        checker.caller(header(good))
    assert checker.verified == 1
    # remembered by the exact header: the same token with one character of its signature
    # changed is verified on its own, and refused
    forged = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    with pytest.raises(TokenError):
        checker.caller(header(forged))
    assert checker.verified == 1 and checker.cached == 1

    await asyncio.sleep(max(0.0, expires + LEEWAY_S / 2 - time.time()))
    assert checker.caller(header(good)).subject == "client-42"  # within the leeway
    assert checker.verified == 1
    await asyncio.sleep(max(0.0, expires + LEEWAY_S - time.time()) + 0.05)
    with pytest.raises(TokenError, match="expired"):
        checker.caller(header(good))
    assert checker.cached == 0


def test_a_header_padded_with_whitespace_is_accepted_but_never_remembered() -> None:
    """The memory is keyed by the header: padding is no way to fill it with long keys."""
    checker = verifier()
    good = token(READ)
    padded = b"Bearer " + b" " * 4096 + good.encode() + b"  "
    for _ in range(3):
        assert checker.caller(padded).scopes == {READ}
    assert checker.verified == 3 and checker.cached == 0
    assert checker.caller(b"bearer " + good.encode()).scopes == {READ}  # any case: remembered
    assert checker.cached == 1


def test_the_memory_is_bounded_oldest_out() -> None:
    checker = verifier(cache_size=2)
    tokens = [token(READ, sub=f"client-{n}") for n in range(3)]
    for value in tokens:
        checker.caller(header(value))
    assert checker.cached == 2 and checker.verified == 3
    checker.caller(header(tokens[2]))
    assert checker.verified == 3  # still remembered
    checker.caller(header(tokens[0]))
    assert checker.verified == 4  # was pushed out: checked again


def test_a_refused_token_is_not_remembered() -> None:
    checker = verifier()
    bad = token(READ, aud="someone-else")
    for _ in range(2):
        with pytest.raises(TokenError, match="aud"):
            checker.caller(header(bad))
    assert checker.cached == 0


def test_scope_and_sub_claims_must_be_strings() -> None:
    checker = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, leeway_s=0, secret=SECRET)
    with pytest.raises(TokenError, match="must be strings"):
        checker.caller(header(jwt.encode({**claims(READ), "scope": [READ]}, SECRET, "HS256")))


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/heroes/123", READ),
        ("HEAD", "/api/v1/heroes", READ),
        ("DELETE", "/api/v1/children/1", WRITE),
        ("PUT", "/api/v1/stories/1/rating", WRITE),
        ("DELETE", "/cache", ADMIN),
        ("POST", "/cache/warm", ADMIN),
        ("DELETE", "/cache/stats", ADMIN),
        ("GET", "/cache/stats", None),
        ("GET", "/dashboard", None),
        ("GET", "/health/ready", None),
        ("GET", "/static-offline-docs/swagger-ui.css", None),
        ("GET", "/healthz", READ),
        ("GET", "/", READ),
    ],
)
def test_required_scope(method: str, path: str, scope: str | None) -> None:
    assert required_scope(method, path, False) == scope


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"auth_enabled": True}, "exactly one of AUTH_JWT_SECRET"),
        (
            {"auth_enabled": True, "auth_jwt_secret": SECRET, "auth_jwks_file": __file__},
            "AUTH_JWKS_FILE",  # the file is no JWKS document
        ),
        ({"auth_jwt_secret": "short"}, "AUTH_JWT_SECRET: .*at least 32 bytes"),
        ({"auth_enabled": True, "auth_jwt_secret": SECRET}, "AUTH_ISSUER is required"),
        (
            {"auth_enabled": True, "auth_jwt_secret": SECRET, "auth_issuer": ISSUER},
            "AUTH_AUDIENCE is required",
        ),
        ({"auth_jwks_file": "/no/such/jwks.json"}, "AUTH_JWKS_FILE: .*cannot read"),
        ({"auth_leeway_s": -1}, "AUTH_LEEWAY_S"),
        ({"auth_leeway_s": 3600}, "AUTH_LEEWAY_S"),
        ({"auth_token_cache_size": 0}, "AUTH_TOKEN_CACHE_SIZE"),
        ({"auth_enabled": "maybe"}, "AUTH_ENABLED"),
    ],
)
def test_invalid_auth_settings_stop_start_up_naming_the_setting(
    overrides: dict[str, object], says: str
) -> None:
    with pytest.raises(SettingsError, match=says):
        load_settings(_env_file=None, **overrides)


def test_a_secret_and_a_jwks_file_together_are_refused(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(RSA_KID)]}))
    both = {"auth_jwt_secret": SECRET, "auth_jwks_file": str(jwks)}
    named = {"auth_issuer": ISSUER, "auth_audience": AUDIENCE}
    with pytest.raises(SettingsError, match="exactly one of AUTH_JWT_SECRET"):
        load_settings(_env_file=None, auth_enabled=True, **both, **named)
    assert load_settings(_env_file=None, auth_enabled=True, auth_jwks_file=str(jwks), **named)


def test_auth_off_is_announced_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.api.access"):
        create_app(load_settings(_env_file=None))
    warned = [r for r in caplog.records if r.name == "app.api.access"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert "AUTH_ENABLED is false" in warned[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.api.access"):
        create_app(
            load_settings(
                _env_file=None,
                auth_enabled=True,
                auth_jwt_secret=SECRET,
                auth_issuer=ISSUER,
                auth_audience=AUDIENCE,
            )
        )
    assert not [r for r in caplog.records if r.name == "app.api.access"]


async def test_readiness_says_whether_auth_is_on(
    cached_instance: AppFactory, auth_instance: AuthInstance
) -> None:
    async with cached_instance() as (_app, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["auth"] == "disabled"
        anyone = await client.get("/api/v1/heroes")
        assert anyone.status_code == 200  # off: open, as before
    async with auth_instance() as (_app, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["auth"] == "enabled"


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ENABLED", "true")
    with pytest.raises(SettingsError, match="AUTH_JWT_SECRET"):
        load_settings(_env_file=None)
    for name, value in (
        ("AUTH_JWT_SECRET", SECRET),
        ("AUTH_ISSUER", ISSUER),
        ("AUTH_AUDIENCE", AUDIENCE),
        ("AUTH_LEEWAY_S", "2.5"),
        ("AUTH_PROTECT_OPERATOR_ROUTES", "true"),
    ):
        monkeypatch.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert settings.auth_enabled and settings.auth_leeway_s == 2.5
    assert settings.auth_protect_operator_routes
    assert settings.auth_jwt_secret is not None
    assert SECRET not in repr(settings)  # a SecretStr
