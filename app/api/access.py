"""Who may call what: the bearer-token check, in front of everything else.

`AccessControl.check` runs first in the outermost ASGI layer (`NearFront`, before its near
cache lookup), so no answer, cached or not, leaves the service before the caller was
checked. The scope a request needs comes
from its method and path alone (`required_scope`), before any routing:

| request | needs |
|---|---|
| `GET`/`HEAD` under `/api/v1/` | `tales.read` |
| `POST`/`PUT`/`PATCH`/`DELETE` under `/api/v1/` | `tales.write` |
| `/cache/...` (flush, invalidate, warm) | `tales.admin`, or `ADMIN_TOKEN` |
| `/metrics`, `/dashboard`, `GET /cache/stats`, `GET /cache/samples` | `tales.admin` if
  `AUTH_PROTECT_OPERATOR_ROUTES` |
| `/health`, `/health/ready`, `/docs`, `/redoc`, `/openapi.json` (and the docs' assets) | open |
| anything else | `tales.read` (closed by default) |

(`AUTH_PROTECT_OPERATOR_ROUTES=false`: the operator routes are open.)

A refusal is answered here, per RFC 6750: 401 with `WWW-Authenticate: Bearer realm=...`
(plus `error="invalid_token"` and a description unless the token is simply missing), 403
with `error="insufficient_scope"`. The body is the service's `{"detail": ...}` and never
contains the token. The caller goes on in the ASGI scope (`CALLER`) for the audit log and
the admin routes.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import orjson
from starlette.types import Scope, Send

from app.api.tokens import Caller, TokenError, TokenVerifier, bearer_token
from app.core.settings import Settings

logger = logging.getLogger(__name__)

READ, WRITE, ADMIN = "tales.read", "tales.write", "tales.admin"
SCOPES = {
    READ: "read heroes, children and stories",
    WRITE: "create, change and delete them",
    ADMIN: "cache administration (and the operator routes when protected)",
}
REALM = "tales-api"
#: the ASGI scope key under which the checked caller travels
CALLER = "tales.caller"
#: the caller of a request that presented ADMIN_TOKEN on an admin route
ADMIN_TOKEN_CALLER = Caller(subject="admin-token", scopes=frozenset({ADMIN}), expires=0.0)

API_PREFIX = "/api/v1/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset(
    {"/health", "/health/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
OPEN_PREFIXES = ("/static-offline-docs/",)
OPERATOR_PATHS = frozenset({"/metrics", "/dashboard", "/cache/stats", "/cache/samples"})
OPERATOR_PREFIXES = ("/dashboard/",)
#: operator paths under /cache/: only their GET is an operator route (the page polls them)
READ_ONLY_OPERATOR_PATHS = frozenset({"/cache/stats", "/cache/samples"})
CACHE_PATH, CACHE_PREFIX = "/cache", "/cache/"

UNAUTHORIZED, FORBIDDEN = 401, 403


def required_scope(method: str, path: str, protect_operator_routes: bool) -> str | None:
    """The scope a request needs (None: open to anyone). Paths may be concrete or the
    OpenAPI templates (`/api/v1/heroes/{entity_id}`): only their prefixes count."""
    if path.startswith(API_PREFIX):
        return WRITE if method in WRITE_METHODS else READ
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    if path in OPERATOR_PATHS or path.startswith(OPERATOR_PREFIXES):
        if path in READ_ONLY_OPERATOR_PATHS and method != "GET":
            return ADMIN
        return ADMIN if protect_operator_routes else None
    if path == CACHE_PATH or path.startswith(CACHE_PREFIX):
        return ADMIN
    return READ


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(error: str | None = None, description: str = "", scope: str = "") -> bytes:
    """The `WWW-Authenticate` value of a refusal (RFC 6750 section 3)."""
    parts = [f"Bearer realm={_quoted(REALM)}"]
    if error is not None:
        parts.append(f"error={_quoted(error)}")
        parts.append(f"error_description={_quoted(description)}")
    if scope:
        parts.append(f"scope={_quoted(scope)}")
    return ", ".join(parts).encode("latin-1", "replace")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request's answer: 401 or 403 with its `WWW-Authenticate` challenge."""

    status: int
    detail: str
    authenticate: bytes

    async def send(self, send: Send) -> None:
        body = orjson.dumps({"detail": self.detail})
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", self.authenticate),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


MISSING = Refusal(
    UNAUTHORIZED, "this request needs a bearer token (Authorization: Bearer ...)", challenge()
)


class AccessControl:
    """The bearer-token check of every HTTP request that needs one.

    `check` is synchronous and runs first in the outermost ASGI layer (`NearFront`), before
    any cache lookup: one layer, not two, on the hot path of an authenticated near hit."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        protect_operator_routes: bool = False,
        admin_token: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.protect_operator_routes = protect_operator_routes
        self._admin_token = admin_token.encode() if admin_token else None

    def check(self, scope: Scope) -> Refusal | None:
        """None if the HTTP request in `scope` may go on (its caller then in `scope[CALLER]`,
        unless it needs no token); else the refusal to send."""
        path: str = scope["path"]
        if path.startswith(API_PREFIX):  # the hot path: entity reads, without a call
            needed = WRITE if scope["method"] in WRITE_METHODS else READ
        else:
            required = required_scope(scope["method"], path, self.protect_operator_routes)
            if required is None:
                return None
            needed = required
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        if authorization is None:
            return MISSING
        try:
            if needed == ADMIN and self._is_admin_token(authorization):
                caller = ADMIN_TOKEN_CALLER
            else:
                caller = self.verifier.caller(authorization)
        except TokenError as exc:
            description = exc.description
            return Refusal(UNAUTHORIZED, description, challenge("invalid_token", description))
        if needed not in caller.scopes:
            detail = f"this request needs the scope {needed}, which the token does not grant"
            return Refusal(FORBIDDEN, detail, challenge("insufficient_scope", detail, needed))
        scope[CALLER] = caller
        return None

    def _is_admin_token(self, authorization: bytes) -> bool:
        return self._admin_token is not None and hmac.compare_digest(
            bearer_token(authorization), self._admin_token
        )


def access_control(settings: Settings) -> AccessControl | None:
    """The access check of `settings`, or None when AUTH_ENABLED is false."""
    if not settings.auth_enabled:
        logger.warning(
            "AUTH_ENABLED is false: every route, children's data included, answers without "
            "credentials (set AUTH_ENABLED=true outside a developer's machine)"
        )
        return None
    admin_token = settings.admin_token
    return AccessControl(
        TokenVerifier.from_settings(settings),
        protect_operator_routes=settings.auth_protect_operator_routes,
        admin_token=None if admin_token is None else admin_token.get_secret_value(),
    )
