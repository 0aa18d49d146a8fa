"""Stories: told to a child (whose details they keep a snapshot of), about a hero."""

from uuid import UUID

from pydantic import Field

from app.core.registry import Action, Cascade, EntitySpec, Filter
from app.core.schemas import Language
from app.stories.models import Story
from app.stories.rules import (
    SNAPSHOT_SOURCE_FIELDS,
    delete_stories_of_child,
    detach_hero_from_stories,
    prepare_story,
    refresh_child_snapshot,
)
from app.stories.schemas import RatingUpdate, StoryCreate, StoryRead

STORIES = EntitySpec(
    name="story",
    plural="stories",
    model=Story,
    create=StoryCreate,
    read=StoryRead,
    filters=(
        Filter("child_id", UUID, scope="child"),
        Filter(
            "child_name",
            str,
            Field(max_length=100, description="exact match"),
            scope="child_name",
            personal=True,
        ),
        Filter("language", Language, scope="lang"),
    ),
    ttl=600,
    prepare=prepare_story,
    cascades=(
        Cascade("child", "update", refresh_child_snapshot, when_changed=SNAPSHOT_SOURCE_FIELDS),
        Cascade("child", "delete", delete_stories_of_child),
        Cascade("hero", "delete", detach_hero_from_stories),
    ),
    actions=(Action("rating", RatingUpdate, op="rate", summary="Rate a story"),),
)
