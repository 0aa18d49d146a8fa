"""The OpenAPI document of an app with AUTH_ENABLED: a bearer (JWT) security scheme, and on
each operation the scope `required_scope` gives it (the same function the check uses, so
the document cannot disagree with it). `/docs` keeps a pasted token across reloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.api.access import ADMIN, SCOPES, required_scope

SCHEME = "bearerAuth"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
REFUSALS: dict[str, dict[str, Any]] = {
    "401": {
        "description": "No bearer token, or a token that is invalid (WWW-Authenticate says why)"
    },
    "403": {"description": "The token does not grant the scope this operation needs"},
}


def secure_document(schema: dict[str, Any], protect_operator_routes: bool) -> dict[str, Any]:
    """Add the security scheme and each operation's requirement to `schema` (in place)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT whose `scope` claim (space-separated) grants "
        + "; ".join(f"`{name}`: {meaning}" for name, meaning in SCOPES.items())
        + ". The cache admin routes also accept `ADMIN_TOKEN`.",
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            needed = required_scope(method.upper(), path, protect_operator_routes)
            if needed is None:
                operation["security"] = []
                continue
            operation["security"] = [{SCHEME: [needed]}]
            responses = operation.setdefault("responses", {})
            for status, response in REFUSALS.items():
                responses.setdefault(status, response)
            if needed == ADMIN:
                responses["401"] = {
                    "description": REFUSALS["401"]["description"] + " or ADMIN_TOKEN"
                }
    return schema


def document_security(app: FastAPI, protect_operator_routes: bool) -> None:
    """Make `app.openapi()` declare the security of an app with AUTH_ENABLED."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = secure_document(generate(), protect_operator_routes)
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 (mypy refuses assigning to a method)
    app.swagger_ui_parameters = {**(app.swagger_ui_parameters or {}), "persistAuthorization": True}
