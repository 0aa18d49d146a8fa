"""Fixtures of the access tests: cached instances (PostgreSQL, the session redis-server, the
near cache on) with AUTH_ENABLED, and tokens of every kind, good and bad."""

import base64
import hashlib
import hmac
import json
import time
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import jwt
import pytest

from app.api.access import ADMIN, READ, WRITE
from tests.conftest import AppAndClient, AppFactory

SECRET = "tests-only-hs256-secret-0123456789abcdef"
OTHER_SECRET = "another-hs256-secret-nobody-trusts-0123456"
ISSUER = "https://issuer.tales.test"
AUDIENCE = "tales-api"
ADMIN_TOKEN = "tests-admin-token"
#: L of these tests (CACHE_NEAR_LEASE_MS): short, so that waiting for the near cache is short
LEASE_MS = 400

AUTH_SETTINGS: dict[str, object] = {
    "auth_enabled": True,
    "auth_jwt_secret": SECRET,
    "auth_issuer": ISSUER,
    "auth_audience": AUDIENCE,
    "auth_leeway_s": 0,
    "admin_token": ADMIN_TOKEN,
    "cache_near_lease_ms": LEASE_MS,
}


def claims(scope: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "client-42",
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def token(scope: str = READ, secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(scope, **overrides), secret, algorithm="HS256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(scope: str, **header_members: str) -> str:
    """`alg: none`: no signature at all."""
    header = b64(json.dumps({"alg": "none", "typ": "JWT", **header_members}).encode())
    return f"{header}.{b64(json.dumps(claims(scope)).encode())}."


def hmac_signed(secret: bytes, payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A token signed HS256 with any bytes as the secret (PyJWT refuses to sign with a public
    key, which is exactly what an algorithm-confusion attacker does)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


#: every kind of bad credentials -> (Authorization header, what the 401 says)
BAD: dict[str, tuple[str, str]] = {
    "malformed": ("Bearer not-a-jwt", "malformed"),
    "not_bearer": ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
    "empty_bearer": ("Bearer ", "must be 'Bearer <token>'"),
    "expired": (f"Bearer {token(READ, exp=int(time.time()) - 60)}", "expired"),
    "not_yet_valid": (f"Bearer {token(READ, nbf=int(time.time()) + 600)}", "not valid yet"),
    "issued_in_the_future": (f"Bearer {token(READ, iat=int(time.time()) + 600)}", "not valid yet"),
    "wrong_signature": (f"Bearer {token(READ, secret=OTHER_SECRET)}", "signature"),
    "wrong_issuer": (f"Bearer {token(READ, iss='https://elsewhere.test')}", "issuer"),
    "wrong_audience": (f"Bearer {token(READ, aud='another-service')}", "(aud)"),
    "no_expiry": (f"Bearer {token(READ, exp=None)}", "no exp claim"),
    "alg_none": (f"Bearer {unsigned(READ)}", "algorithm"),
}
"""Tokens of the module's import time: valid (or refused for one reason) for ten minutes."""

SCOPE_TOKENS = {scope: token(scope) for scope in (READ, WRITE, ADMIN)}
ALL_SCOPES = token(f"{READ} {WRITE} {ADMIN}")


class AuthInstance(Protocol):
    def __call__(self, **overrides: object) -> AbstractAsyncContextManager[AppAndClient]: ...


@pytest.fixture
def auth_instance(cached_instance: AppFactory) -> AuthInstance:
    """Factory of cached instances (near cache on) with AUTH_ENABLED; keywords override
    settings."""

    def factory(**overrides: object) -> AbstractAsyncContextManager[AppAndClient]:
        return cached_instance(**{**AUTH_SETTINGS, **overrides})

    return factory
