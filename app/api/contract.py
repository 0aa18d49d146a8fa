"""What the OpenAPI document says about the HTTP layer: the precondition headers and their
format, the error bodies, the status codes each kind of route can answer, and readable
operation ids. The routes use these declarations; the service enforces what they state."""

from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.core.http import ETAG_LIST_PATTERN


class ErrorMessage(BaseModel):
    """Body of a 404, 409, 412, 413 or 503: what went wrong, in words."""

    detail: str


IfMatch = Annotated[
    str | None,
    Header(
        pattern=ETAG_LIST_PATTERN,
        description='ETags the entity must still have (`"<id>.<version>"`, a list, or `*`);'
        " otherwise 412",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        pattern=ETAG_LIST_PATTERN,
        description="ETags the client holds (a list, or `*`): 304 when one is current",
    ),
]

Responses = dict[int | str, dict[str, Any]]

ETAG_HEADER = {"description": 'The entity\'s `"<id>.<version>"`', "schema": {"type": "string"}}
LOCATION_HEADER = {"description": "URL of the created entity", "schema": {"type": "string"}}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorMessage, "description": description}


UNAVAILABLE: Responses = {503: _error("Database unavailable (`Retry-After: 1`)")}
TOO_LARGE: Responses = {413: _error("Request body larger than MAX_BODY_BYTES")}
NOT_FOUND: Responses = {404: _error("Not found")}
CONFLICT: Responses = {
    409: _error("Concurrent change (reload and retry), or refused by the database")
}
PRECONDITION: Responses = {412: _error("If-Match names no current ETag of the entity")}
NOT_MODIFIED: Responses = {
    304: {
        "description": "Not modified (If-None-Match names the current ETag)",
        "headers": {"ETag": ETAG_HEADER},
    }
}

#: Per kind of route, every answer besides its success and FastAPI's 422.
READ_ONE = {**NOT_MODIFIED, **NOT_FOUND, **UNAVAILABLE}
READ_MANY = UNAVAILABLE
CREATE = {**CONFLICT, **TOO_LARGE, **UNAVAILABLE}
WRITE = {**NOT_FOUND, **CONFLICT, **PRECONDITION, **TOO_LARGE, **UNAVAILABLE}
DELETE = {**NOT_FOUND, **CONFLICT, **PRECONDITION, **UNAVAILABLE}


def with_etag(description: str, *, location: bool = False) -> dict[str, Any]:
    headers = {"ETag": ETAG_HEADER}
    if location:
        headers["Location"] = LOCATION_HEADER
    return {"description": description, "headers": headers}


def operation_id(route: APIRoute) -> str:
    """The route's name (`list_heroes`, `get_hero`, `rate_story`): a generated client's
    function names, grouped by the route's tag (`heroes.list_heroes`)."""
    return route.name


def without_null_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """An optional header or query parameter is left out, never null (a query string or a
    header cannot carry a JSON null): its schema loses the `null` branch pydantic gives an
    optional value, which a client or a fuzzer would otherwise send as the text "null"."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                branches = schema.get("anyOf")
                if branches is None:
                    continue
                kept = [branch for branch in branches if branch != {"type": "null"}]
                if len(kept) == 1:
                    del schema["anyOf"]
                    schema.update(kept[0])
                else:
                    schema["anyOf"] = kept
    return document


def publish_openapi(app: FastAPI) -> None:
    """Serve the document through `without_null_parameters`, built on first request as
    FastAPI's own (`app.openapi` is FastAPI's documented hook for a custom document)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = without_null_parameters(build())
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 (mypy refuses assigning to a method)
