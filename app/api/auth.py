"""Who may use the admin routes: a bearer token equal to `ADMIN_TOKEN` (none configured:
the admin routes are disabled)."""

import hmac
from typing import Annotated, Any

from fastapi import Depends, Header

from app.api.dependencies import ServicesDep
from app.core.errors import Forbidden, Unauthorized


def require_admin(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> None:
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
    403: {"description": "Admin endpoints disabled (no ADMIN_TOKEN)"},
}
