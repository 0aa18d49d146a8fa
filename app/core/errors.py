"""Domain errors and their HTTP rendering. Bad input is a 4xx with a body saying what is wrong."""

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class AppError(Exception):
    """The one error hierarchy: a domain or access error rendered as `{"detail": ...}`."""

    status_code = 500
    title = "error"

    def __init__(
        self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers

    def body(self) -> dict[str, object]:
        if self.field is None:
            return {"detail": self.detail}
        return {"detail": [{"loc": ["body", self.field], "msg": self.detail, "type": self.title}]}


class NotFound(AppError):
    status_code = 404
    title = "not_found"

    @classmethod
    def of(cls, entity: str, entity_id: object) -> "NotFound":
        return cls(f"{entity} {entity_id} not found")


class PreconditionFailed(AppError):
    status_code = 412
    title = "precondition_failed"


class Unprocessable(AppError):
    status_code = 422
    title = "invalid_reference"


class Unauthorized(AppError):
    """401: the credentials are missing or wrong; the client is told how to authenticate."""

    status_code = 401
    title = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    title = "forbidden"


def _database_error_is_outage(exc: DBAPIError) -> bool:
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _validation_body(errors: Sequence[Any]) -> bytes:
    """FastAPI's 422 body, also when the echoed input cannot be written as JSON.

    An invalid value is echoed back under `input`; NaN, Infinity or a lone surrogate (all of
    which Python's JSON parser accepts) cannot be encoded, so those errors are sent without it.
    """
    try:
        return json.dumps(
            {"detail": jsonable_encoder(errors)},
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        bare = [{key: value for key, value in error.items() if key != "input"} for error in errors]
        text = json.dumps(
            {"detail": jsonable_encoder(bare)},
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            default=str,
        )
        return text.encode("utf-8", "replace")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        return Response(
            _validation_body(exc.errors()), status_code=422, media_type="application/json"
        )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI answers 400 when the JSON body cannot be parsed for another reason than a
        # syntax error: bytes that are not UTF-8, nesting deeper than the parser allows.
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}
            return JSONResponse({"detail": [error]}, status_code=422)
        return await http_exception_handler(request, exc)

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StaleDataError)
    async def _stale(_request: Request, _exc: StaleDataError) -> JSONResponse:
        return JSONResponse(
            {"detail": "the entity was changed concurrently; reload it and retry"},
            status_code=409,
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.error(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return JSONResponse(
            {"detail": "database unavailable"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if _database_error_is_outage(exc):
            return await _unavailable(request, exc)
        logger.error(
            "database error on %s %s: %s",
            request.method,
            request.url.path,
            type(exc.orig).__name__,
        )
        return JSONResponse({"detail": "the database rejected the request"}, status_code=409)

    for exc_type in (PoolTimeoutError, OSError, TimeoutError, ConnectionError):
        app.add_exception_handler(exc_type, _unavailable)
