from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from app.core.schemas import (
    EntityRead,
    Gender,
    InputModel,
    JsonInteger,
    JsonObject,
    Language,
    NoNul,
    StrList,
    patch_model,
)

Title = Annotated[str, Field(min_length=1, max_length=300), NoNul()]
Content = Annotated[str, Field(max_length=100_000), NoNul()]
Moral = Annotated[str, Field(max_length=5000), NoNul()]
ChildName = Annotated[str, Field(min_length=1, max_length=100), NoNul()]
AgeCategory = Annotated[str, Field(pattern=r"^[0-9]{1,2}-[0-9]{1,2}$"), NoNul()]
StoryLength = Annotated[int, Field(ge=1, le=60, description="minutes"), JsonInteger()]
Rating = Annotated[int, Field(ge=1, le=10), JsonInteger()]
ModelName = Annotated[str, Field(min_length=1, max_length=100), NoNul()]
# http(s), then no whitespace and no NUL
AudioUrl = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"^https?://[^\s\x00]+$"), NoNul()
]
SNAPSHOT_FIELDS = ("child_name", "age_category", "child_gender", "child_interests")


class AudioFile(InputModel):
    url: AudioUrl
    provider: Annotated[str, Field(min_length=1, max_length=100), NoNul()]
    metadata: JsonObject = {}


#: The snapshot rule as JSON Schema states it: with a child_id, the snapshot fields are null
#: or absent. (A PATCH also depends on the stored story's child: its description says so.)
SNAPSHOT_RULE: JsonDict = {
    "if": {"properties": {"child_id": {"type": "string"}}, "required": ["child_id"]},
    "then": {"properties": {name: {"type": "null"} for name in SNAPSHOT_FIELDS}},
}


class StoryCreate(InputModel):
    model_config = ConfigDict(json_schema_extra=SNAPSHOT_RULE)

    title: Title
    content: Content
    moral: Moral = ""
    language: Language
    child_id: UUID | None = Field(
        None,
        description="When given, child_name, age_category, child_gender and "
        "child_interests are copied from that child and must not be sent.",
    )
    hero_id: UUID | None = None
    child_name: ChildName | None = None
    age_category: AgeCategory | None = None
    child_gender: Gender | None = None
    child_interests: StrList | None = None
    story_length: StoryLength | None = None
    rating: Rating | None = None
    audio_file: AudioFile | None = None
    model_used: ModelName | None = None
    full_response: JsonObject | None = None
    generation_info: JsonObject | None = None

    @field_validator(*SNAPSHOT_FIELDS)
    @classmethod
    def _snapshot_comes_from_child(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("child_id") is not None:
            raise ValueError(f"{info.field_name} is copied from the child when child_id is given")
        return value


StoryPatch = patch_model(StoryCreate, "StoryPatch")


class RatingUpdate(InputModel):
    rating: Rating


class AudioFileRead(InputModel):
    """As written; `metadata` defaults as on a write (rows stored without it read back)."""

    url: str
    provider: str
    metadata: dict[str, Any] = {}


class StoryRead(EntityRead):
    title: str
    content: str
    moral: str
    language: Language
    child_id: UUID | None
    hero_id: UUID | None
    child_name: str | None
    age_category: str | None
    child_gender: Gender | None
    child_interests: list[str] | None
    story_length: int | None
    rating: int | None
    audio_file: AudioFileRead | None
    model_used: str | None
    full_response: dict[str, Any] | None
    generation_info: dict[str, Any] | None
