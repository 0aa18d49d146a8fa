"""The public keys of `AUTH_JWKS_FILE`: a JWKS document on disk, read once at start-up.

Only asymmetric public keys are accepted, each with the one algorithm it verifies (RS256 for
an RSA key, ES256 for an EC P-256 key). A symmetric (`oct`) key or a private key in the file
is refused: a token can then never choose how it is checked (algorithm confusion).
"""

from __future__ import annotations

import json
from pathlib import Path

from jwt import PyJWK
from jwt.exceptions import PyJWTError

#: key type of the JWK -> the one algorithm such a key verifies
KEY_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}
EC_CURVE = "P-256"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


class JwksError(ValueError):
    """The JWKS document cannot be used; the message says why."""


def load_jwks(path: Path) -> dict[str | None, PyJWK]:
    """The keys of the JWKS file by `kid` (None: a key without one). JwksError says what is
    wrong with the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JwksError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise JwksError(f"{path} is not a JSON document") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise JwksError(f"{path} has no 'keys' list (a JWKS document is {{\"keys\": [...]}})")
    keys: dict[str | None, PyJWK] = {}
    for index, entry in enumerate(entries):
        kid = entry.get("kid") if isinstance(entry, dict) else None
        keys[kid] = _public_key(entry, f"{path}: key {index}")
    if len(keys) != len(entries):
        raise JwksError(f"{path}: two keys have the same kid (or several have none)")
    return keys


def _public_key(entry: object, where: str) -> PyJWK:
    if not isinstance(entry, dict):
        raise JwksError(f"{where} is not a JSON object")
    kty = entry.get("kty")
    expected = KEY_ALGORITHMS.get(kty) if isinstance(kty, str) else None
    if expected is None:
        raise JwksError(f"{where}: key type {kty!r} is not accepted (only RSA and EC)")
    if any(member in entry for member in PRIVATE_MEMBERS):
        raise JwksError(f"{where} is a private key; the file must hold public keys only")
    if kty == "EC" and entry.get("crv") != EC_CURVE:
        raise JwksError(f"{where}: curve {entry.get('crv')!r} is not accepted ({EC_CURVE})")
    algorithm = entry.get("alg", expected)
    if algorithm != expected:
        raise JwksError(f"{where}: alg {algorithm!r} is not accepted for a {kty} key ({expected})")
    try:
        key = PyJWK.from_dict(entry, algorithm=expected)
    except (PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise JwksError(f"{where} is not a valid {kty} key: {exc}") from None
    return key
