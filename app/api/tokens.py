"""Bearer tokens: JWTs verified with PyJWT, and minted for local use.

`TokenVerifier` checks a token's signature with the configured key (HS256 with
`AUTH_JWT_SECRET`, or RS256/ES256 with the public keys of `AUTH_JWKS_FILE`), then `iss`,
`aud`, `exp`, `nbf` and `iat` (with `AUTH_LEEWAY_S`). The accepted algorithm comes from the
configured key, never from the token's header, so `alg: none` and algorithm confusion (an
HS256 token "signed" with a public key) are refused.

A verified token is remembered until it expires, bounded to `AUTH_TOKEN_CACHE_SIZE` tokens,
oldest first out. A caller that repeats its token costs one dict lookup per request, not a
signature check. The memory is keyed by the header value itself, as Envoy's JWT cache keys
by the token: an exact match, so a token that differs by one byte is verified on its own.
A digest key, which kept no token in memory, was measured and given up: hashing the header
was two thirds of the check inside a loaded server (2.9-3.6 us a request with SHA-256 or
BLAKE2b), and the authenticated hit missed its target (x1.12-x1.20 in the pinned bench;
README, "Cost"). The cost is that a memory dump shows the unexpired tokens of recent
callers. With HS256 the same memory already holds `AUTH_JWT_SECRET`, which mints any token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from app.core.jwks import load_jwks
from app.core.settings import Settings

HS256 = "HS256"
BEARER = "bearer"
#: claims every accepted token carries
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
#: A remembered header is exactly the scheme (any case), one space and the token.
BEARER_SPACE = b"Bearer "


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified token speaks for: its subject and scopes, usable until `expires`
    (epoch seconds, the leeway included)."""

    subject: str
    scopes: frozenset[str]
    expires: float


class TokenError(Exception):
    """A token that is refused; `description` says why (it never contains the token)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UnknownKey(InvalidSignatureError):
    """The token's `kid` names no key of the JWKS (or names none, and the set has several)."""


#: PyJWT's refusal -> what the caller is told (most specific first: they subclass each other)
REFUSALS: tuple[tuple[type[InvalidTokenError], str], ...] = (
    (UnknownKey, "the token's key id (kid) names no key this service trusts"),
    (ExpiredSignatureError, "the token has expired"),
    (ImmatureSignatureError, "the token is not valid yet (nbf or iat is in the future)"),
    (InvalidIssuedAtError, "the token's iat claim is not a number"),
    (InvalidIssuerError, "the token was not issued by the issuer this service trusts (iss)"),
    (InvalidAudienceError, "the token is not meant for this service (aud)"),
    (InvalidSignatureError, "the token's signature does not verify"),
    (InvalidAlgorithmError, "the token's algorithm (alg) is not the one of the configured key"),
    (DecodeError, "the token is malformed: not a signed JWT"),
)


def refusal(exc: InvalidTokenError) -> str:
    if isinstance(exc, MissingRequiredClaimError):
        return f"the token has no {exc.claim} claim"
    for kind, description in REFUSALS:
        if isinstance(exc, kind):
            return description
    return "the token is invalid"


def bearer_token(authorization: bytes) -> bytes:
    """The token of an `Authorization: Bearer <token>` header value."""
    scheme, _, token = authorization.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise TokenError("the Authorization header must be 'Bearer <token>'")
    return token


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        leeway_s: float,
        secret: str | None = None,
        jwks: dict[str | None, PyJWK] | None = None,
        cache_size: int = 10_000,
    ) -> None:
        if (secret is None) == (jwks is None):
            raise ValueError("a verifier needs exactly one of a secret and a JWKS")
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._secret = secret
        self._jwks = jwks
        self.cache_size = cache_size
        self._cache: dict[bytes, Caller] = {}
        self.verified = 0  # signature checks made (a cached token costs none)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        secret = settings.auth_jwt_secret
        jwks_file = settings.auth_jwks_file
        return cls(
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            leeway_s=settings.auth_leeway_s,
            secret=None if secret is None else secret.get_secret_value(),
            jwks=None if jwks_file is None else load_jwks(jwks_file),
            cache_size=settings.auth_token_cache_size,
        )

    @property
    def cached(self) -> int:
        return len(self._cache)

    def caller(self, authorization: bytes) -> Caller:
        """The caller of an Authorization header value; TokenError says why it is refused.

        The hot path: one dict lookup (the header value is the key), one clock read."""
        caller = self._cache.get(authorization)
        if caller is not None and time.time() < caller.expires:
            return caller
        return self._remember(authorization)

    def _remember(self, authorization: bytes) -> Caller:
        self._cache.pop(authorization, None)  # expired
        token = bearer_token(authorization)
        caller = self._verify(token)
        if len(authorization) != len(BEARER_SPACE) + len(token):
            # Padded with whitespace: verified each time, never a key. One token could
            # otherwise fill the memory with headers of any length.
            return caller
        if len(self._cache) >= self.cache_size:
            del self._cache[next(iter(self._cache))]  # the oldest
        self._cache[authorization] = caller
        return caller

    def _verify(self, token: bytes) -> Caller:
        try:
            key, algorithm = self._key_of(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": False},
            )
        except InvalidTokenError as exc:
            raise TokenError(refusal(exc)) from None
        self.verified += 1
        scope = claims.get("scope", "")
        subject = claims["sub"]
        if not isinstance(scope, str) or not isinstance(subject, str):
            raise TokenError("the token's scope and sub claims must be strings")
        return Caller(
            subject=subject,
            scopes=frozenset(scope.split()),
            expires=float(claims["exp"]) + self.leeway_s,
        )

    def _key_of(self, token: bytes) -> tuple[Any, str]:
        """The key and the one algorithm it verifies: from the configuration, never from the
        token (its header only names which of the JWKS keys, by `kid`)."""
        if self._secret is not None:
            return self._secret, HS256
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        jwk = self._jwks.get(kid)
        if jwk is None and kid is None and len(self._jwks) == 1:
            jwk = next(iter(self._jwks.values()))
        if jwk is None:
            raise UnknownKey()
        return jwk.key, jwk.algorithm_name


def mint(
    secret: str,
    *,
    issuer: str,
    audience: str,
    scopes: Iterable[str],
    subject: str,
    ttl_s: int,
    now: float | None = None,
) -> str:
    """An HS256 token for local use (`python -m app token`) and the tests."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=HS256)
