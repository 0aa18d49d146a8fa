"""Who may use the admin routes: a caller whose bearer token grants `tales.admin` (checked by
`app/api/access.py` when AUTH_ENABLED), or a bearer token equal to `ADMIN_TOKEN`. With
neither auth nor an `ADMIN_TOKEN` configured, the admin routes are disabled."""

import hmac
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from app.api.access import ADMIN, CALLER
from app.api.dependencies import ServicesDep
from app.api.tokens import Caller
from app.core.errors import Forbidden, Unauthorized


def require_admin(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    caller = request.scope.get(CALLER)
    if isinstance(caller, Caller) and ADMIN in caller.scopes:
        return
    token = services.settings.admin_token
    if token is None or not token.get_secret_value():
        raise Forbidden("admin endpoints are disabled: no ADMIN_TOKEN is configured")
    scheme, _, presented = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected):
        raise Unauthorized("a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is required")


Admin = Annotated[None, Depends(require_admin)]
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong admin token"},
    403: {"description": "Admin endpoints disabled (no ADMIN_TOKEN), or no tales.admin scope"},
}
