"""RS256 and ES256 tokens checked with the public keys of AUTH_JWKS_FILE; `alg: none`,
algorithm confusion (an HS256 token whose secret is the public key), unknown keys and unusable
JWKS files refused."""

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.api.access import READ
from app.api.tokens import TokenError, TokenVerifier
from app.core.jwks import JwksError, load_jwks
from app.core.settings import SettingsError
from app.main import load_settings
from tests.auth.conftest import (
    AUDIENCE,
    ISSUER,
    AuthInstance,
    bearer,
    claims,
    hmac_signed,
    unsigned,
)

RSA_KID, EC_KID = "rsa-1", "ec-1"


def private_keys() -> dict[str, Any]:
    return {
        RSA_KID: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        EC_KID: ec.generate_private_key(ec.SECP256R1()),
    }


KEYS = private_keys()
ALGORITHMS = {RSA_KID: "RS256", EC_KID: "ES256"}


def public_jwk(kid: str) -> dict[str, Any]:
    key = KEYS[kid].public_key()
    algorithm = RSAAlgorithm if kid == RSA_KID else ECAlgorithm
    return {**algorithm.to_jwk(key, as_dict=True), "kid": kid, "use": "sig"}


def public_pem(kid: str) -> bytes:
    return (
        KEYS[kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def signed(kid: str, scope: str = READ, *, key: Any = None, **overrides: Any) -> str:
    return jwt.encode(
        claims(scope, **overrides),
        key or KEYS[kid],
        algorithm=ALGORITHMS[kid],
        headers={"kid": kid},
    )


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(RSA_KID), public_jwk(EC_KID)]}))
    return path


def verifier(jwks_file: Path) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, leeway_s=0, jwks=load_jwks(jwks_file))


@pytest.mark.parametrize("kid", [RSA_KID, EC_KID])
def test_tokens_signed_with_a_key_of_the_set_are_accepted(jwks_file: Path, kid: str) -> None:
    caller = verifier(jwks_file).caller(f"Bearer {signed(kid)}".encode())
    assert caller.subject == "client-42" and caller.scopes == {READ}


def confusion_tokens() -> dict[str, str]:
    """HS256 tokens 'signed' with what an attacker knows: the public keys, as PEM and JWK."""
    payload = claims(READ)
    tokens = {}
    for kid in (RSA_KID, EC_KID):
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        tokens[f"{kid}-pem"] = hmac_signed(public_pem(kid), payload, header)
        tokens[f"{kid}-jwk"] = hmac_signed(json.dumps(public_jwk(kid)).encode(), payload, header)
    return tokens


def refused_tokens() -> dict[str, tuple[str, str]]:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_curve = ec.generate_private_key(ec.SECP256R1())
    return {
        "alg_none": (unsigned(READ, kid=RSA_KID), "algorithm"),
        "alg_none_without_kid": (unsigned(READ), "(kid)"),
        "rs256_with_the_ec_kid": (  # a valid RS256 signature, but the named key is EC
            jwt.encode(claims(READ), KEYS[RSA_KID], algorithm="RS256", headers={"kid": EC_KID}),
            "algorithm",
        ),
        "unknown_kid": (
            jwt.encode(claims(READ), KEYS[RSA_KID], algorithm="RS256", headers={"kid": "nope"}),
            "(kid)",
        ),
        "no_kid_with_two_keys": (jwt.encode(claims(READ), KEYS[RSA_KID], "RS256"), "(kid)"),
        "a_stranger_rsa_key": (signed(RSA_KID, key=stranger), "signature"),
        "a_stranger_ec_key": (signed(EC_KID, key=other_curve), "signature"),
        "expired": (signed(EC_KID, exp=1), "expired"),
        "wrong_audience": (signed(RSA_KID, aud="other"), "(aud)"),
        **{f"confusion_{name}": (value, "algorithm") for name, value in confusion_tokens().items()},
    }


REFUSED = refused_tokens()


@pytest.mark.parametrize("kind", list(REFUSED))
def test_refused_tokens(jwks_file: Path, kind: str) -> None:
    value, says = REFUSED[kind]
    with pytest.raises(TokenError) as refused:
        verifier(jwks_file).caller(f"Bearer {value}".encode())
    assert says in refused.value.description
    assert value not in refused.value.description


async def test_jwks_tokens_over_http(auth_instance: AuthInstance, jwks_file: Path) -> None:
    async with auth_instance(auth_jwt_secret=None, auth_jwks_file=str(jwks_file)) as (_a, client):
        for kid in (RSA_KID, EC_KID):
            response = await client.get("/api/v1/heroes", headers=bearer(signed(kid)))
            assert response.status_code == 200, response.text
        for name in ("alg_none", "confusion_rsa-1-pem", "confusion_ec-1-jwk", "unknown_kid"):
            response = await client.get("/api/v1/heroes", headers=bearer(REFUSED[name][0]))
            assert response.status_code == 401, name
            assert 'error="invalid_token"' in response.headers["www-authenticate"]


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def private_jwk() -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(KEYS[RSA_KID], as_dict=True), "kid": "private"}


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "not a JSON document"),
        ({"nokeys": []}, "no 'keys' list"),
        ({"keys": []}, "no 'keys' list"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "'oct' is not accepted"),
        ({"keys": ["private"]}, "not a JSON object"),
        ({"keys": [{"kty": "RSA", "n": "abc"}]}, "not a valid RSA key"),
        ({"keys": [{"kty": "RSA", "n": "abc", "e": "AQAB", "alg": "HS256"}]}, "alg 'HS256'"),
        ({"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}]}, "curve 'P-384'"),
        ({"keys": [private_jwk()]}, "private key"),
        ({"keys": [public_jwk(RSA_KID), public_jwk(RSA_KID)]}, "same kid"),
    ],
)
def test_an_unusable_jwks_file_stops_start_up_naming_the_setting(
    tmp_path: Path, document: object, says: str
) -> None:
    path = write(tmp_path, document)
    with pytest.raises(JwksError, match=says):
        load_jwks(path)
    with pytest.raises(SettingsError, match=f"AUTH_JWKS_FILE: .*{says}"):
        load_settings(_env_file=None, auth_jwks_file=str(path))
