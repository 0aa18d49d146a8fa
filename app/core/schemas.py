"""Pydantic building blocks shared by the entity schemas."""

import math
from copy import copy
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"


class Language(StrEnum):
    en = "en"
    ru = "ru"


NonEmptyStr = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StrList = Annotated[list[NonEmptyStr], Field(max_length=20)]


def _reject_nul(value: Any) -> Any:
    """Text columns cannot hold NUL on PostgreSQL; refuse it on every backend alike."""
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise ValueError("must not contain NUL characters")
    return value


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
    the fields the client sent are applied (`model_dump(exclude_unset=True)`).
    """
    fields: dict[str, Any] = {}
    for field_name, info in create.model_fields.items():
        optional = copy(info)
        optional.default = None
        optional.default_factory = None
        fields[field_name] = (info.annotation, optional)
    return create_model(name, __base__=InputModel, **fields)
