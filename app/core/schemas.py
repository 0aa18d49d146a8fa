"""Pydantic building blocks shared by the entity schemas."""

from copy import copy
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"


class Language(StrEnum):
    en = "en"
    ru = "ru"


NonEmptyStr = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StrList = Annotated[list[NonEmptyStr], Field(max_length=20)]


class InputModel(BaseModel):
    """Request bodies: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


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
