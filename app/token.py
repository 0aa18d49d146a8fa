"""`python -m app token`: print a bearer token for local use, signed (HS256) with the
configured `AUTH_JWT_SECRET`, for `AUTH_ISSUER` and `AUTH_AUDIENCE`.

    export TOKEN=$(uv run python -m app token --scope "tales.read tales.write")
    curl -H "Authorization: Bearer $TOKEN" localhost:8000/api/v1/heroes

With `AUTH_JWKS_FILE` the tokens come from the identity provider that holds the private
keys; this command cannot sign them.
"""

from __future__ import annotations

import argparse
import sys

from app.api.access import SCOPES
from app.api.tokens import mint
from app.core.settings import SettingsError
from app.main import load_settings

EXIT_UNUSABLE = 2
DEFAULT_TTL_S = 3600
MAX_TTL_S = 7 * 24 * 3600
DEFAULT_SUBJECT = "local-developer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope",
        required=True,
        help=f'space-separated scopes, e.g. "tales.read tales.write" (known: {" ".join(SCOPES)})',
    )
    parser.add_argument(
        "--subject", default=DEFAULT_SUBJECT, help="the sub claim (default: %(default)s)"
    )
    parser.add_argument(
        "--ttl",
        type=int,
        default=DEFAULT_TTL_S,
        help=f"seconds until it expires (1..{MAX_TTL_S}, default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    scopes = args.scope.split()
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if not scopes or unknown:
        print(
            f"token: unknown scope(s) {unknown or args.scope!r}; known: {' '.join(SCOPES)}",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    if not 1 <= args.ttl <= MAX_TTL_S:
        print(f"token: --ttl must be between 1 and {MAX_TTL_S} seconds", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    missing = [
        name
        for name, value in (
            ("AUTH_JWT_SECRET", settings.auth_jwt_secret),
            ("AUTH_ISSUER", settings.auth_issuer),
            ("AUTH_AUDIENCE", settings.auth_audience),
        )
        if not value
    ]
    if missing:
        print(f"token: set {', '.join(missing)} (the values the service checks)", file=sys.stderr)
        return EXIT_UNUSABLE
    assert settings.auth_jwt_secret is not None
    print(
        mint(
            settings.auth_jwt_secret.get_secret_value(),
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            scopes=scopes,
            subject=args.subject,
            ttl_s=args.ttl,
        )
    )
    return 0
