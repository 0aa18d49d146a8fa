from typing import Annotated

from pydantic import Field

from app.core.schemas import (
    EntityRead,
    Gender,
    InputModel,
    JsonInteger,
    NoNul,
    StrList,
    patch_model,
)

Name = Annotated[str, Field(min_length=1, max_length=100), NoNul()]
Age = Annotated[int, Field(ge=1, le=17), JsonInteger()]
AgeCategory = Annotated[str, Field(pattern=r"^[0-9]{1,2}-[0-9]{1,2}$", examples=["3-5"]), NoNul()]


class ChildCreate(InputModel):
    name: Name
    age: Age
    age_category: AgeCategory | None = None
    gender: Gender
    interests: StrList = []


ChildPatch = patch_model(ChildCreate, "ChildPatch")


class ChildRead(EntityRead):
    name: str
    age: int
    age_category: str | None
    gender: Gender
    interests: list[str]
