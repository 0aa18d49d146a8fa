"""Pydantic building blocks shared by the entity schemas.

Every rule a write schema enforces is also stated in the JSON schema it publishes (the
OpenAPI document): lengths, ranges, enums and patterns, NUL exclusion included (`NoNul`).
Numbers are strict: a JSON body's integer must be a JSON integer (`JsonInteger`: no boolean,
no string, no float), a query string's integer a plain decimal (`QueryInt`).
"""

import math
import re
from copy import copy
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    create_model,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"


class Language(StrEnum):
    en = "en"
    ru = "ru"


#: The pattern the OpenAPI document states for text without a format of its own: no NUL.
NO_NUL_PATTERN = "^[^\\x00]*$"
NUL_MESSAGE = "must not contain NUL characters"


def _reject_nul(value: Any) -> Any:
    """Text columns cannot hold NUL on PostgreSQL; refuse it on every backend alike."""
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError(NUL_MESSAGE)
    return value


@dataclass(frozen=True, slots=True)
class NoNul:
    """Marks a text type: NUL is refused (with a message saying so) and the JSON schema says
    it with a pattern, unless the type has a pattern of its own (which must exclude NUL)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_reject_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


def _json_integer(value: Any) -> Any:
    """JSON Schema's integers include `13.0` (a number with a zero fraction); nothing else
    becomes one: no boolean, no string, no fraction (refused by `Strict`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class JsonInteger:
    """Marks an integer of a JSON body, after its constraints (`Annotated[int, Field(ge=1),
    JsonInteger()]`, so that they stay stated in the JSON schema): a JSON integer (13 or
    13.0), never a boolean, a string or a number with a fraction."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        strict: Any = {**handler(source), "strict": True}
        return core_schema.no_info_before_validator_function(_json_integer, strict)


_DECIMAL = re.compile(r"[0-9]{1,18}")


def _decimal_text(value: Any) -> Any:
    """A query string's integer: plain decimal digits only ("1.0", " 1", "+1", "true" and
    "1_000" are refused, though Python's int() takes some of them)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError("must be an integer written in decimal digits")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_decimal_text)]
"""An integer in the query string (always text there), parsed strictly."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul()]
StrList = Annotated[list[NonEmptyStr], Field(max_length=20)]


class StrictModel(BaseModel):
    """Unknown fields are rejected, text must not contain NUL."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _reject_nul(value)


class InputModel(StrictModel):
    """Request bodies."""


class QueryModel(StrictModel):
    """List query parameters."""


JSON_MAX_DEPTH = 32


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"must not be nested deeper than {JSON_MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must not contain NaN or Infinity")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must not contain lone surrogate escapes") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    _check_json(value)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_plain_json)]
"""A free-form JSON object that every backend stores and gives back unchanged."""


class EntityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    version: int
    created_at: datetime
    updated_at: datetime


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int


CreateT = TypeVar("CreateT", bound=InputModel)


def patch_model(create: type[CreateT], name: str) -> type[InputModel]:
    """The PATCH body of an entity: every field of its create body, optional.

    Constraints are kept and an explicit null is still rejected for non-nullable fields; only
    the fields the client sent are applied (`sent_fields`).
    """
    fields: dict[str, Any] = {}
    for field_name, info in create.model_fields.items():
        optional = copy(info)
        optional.default = None
        optional.default_factory = None
        fields[field_name] = (info.annotation, optional)
    return create_model(name, __base__=InputModel, **fields)


def sent_fields(body: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body sent, each whole: a nested object sent without its optional
    members gets their defaults, as on create (`exclude_unset` would drop them, and what was
    stored could not be read back)."""
    return body.model_dump(include=body.model_fields_set)
