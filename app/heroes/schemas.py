from typing import Annotated

from pydantic import Field

from app.core.schemas import (
    EntityRead,
    Gender,
    InputModel,
    JsonInteger,
    Language,
    NoNul,
    StrList,
    patch_model,
)

Name = Annotated[str, Field(min_length=1, max_length=100), NoNul()]
Age = Annotated[int, Field(ge=0, le=1000), JsonInteger()]
Appearance = Annotated[str, Field(max_length=2000), NoNul()]


class HeroCreate(InputModel):
    name: Name
    age: Age
    gender: Gender
    appearance: Appearance = ""
    personality_traits: StrList = []
    interests: StrList = []
    strengths: StrList = []
    language: Language


HeroPatch = patch_model(HeroCreate, "HeroPatch")


class HeroRead(EntityRead):
    name: str
    age: int
    gender: Gender
    appearance: str
    personality_traits: list[str]
    interests: list[str]
    strengths: list[str]
    language: Language
