"""The stories' domain rules: a story keeps a snapshot of its child's details, refers only
to heroes and children that exist, and follows writes to them (the cascades declared in
`entity.py`). The seed applies the same snapshot rule."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.models import Child
from app.core.database import utcnow
from app.core.documents import RelatedChange
from app.core.errors import Unprocessable
from app.heroes.models import Hero
from app.stories.models import Story
from app.stories.schemas import SNAPSHOT_FIELDS

#: The child's columns the snapshot copies: a change to one of them reaches the stories.
SNAPSHOT_SOURCE_FIELDS = frozenset({"name", "age_category", "gender", "interests"})


def child_snapshot(
    name: str, age_category: str | None, gender: str, interests: Sequence[str]
) -> dict[str, Any]:
    """The story columns copied from its child."""
    return {
        "child_name": name,
        "age_category": age_category,
        "child_gender": gender,
        "child_interests": list(interests),
    }


def _snapshot_of(child: Child) -> dict[str, Any]:
    return child_snapshot(child.name, child.age_category, child.gender, child.interests)


async def prepare_story(
    session: AsyncSession, values: dict[str, Any], current: Story | None
) -> dict[str, Any]:
    """Check the hero and child a story refers to; copy the child's snapshot."""
    hero_id = values.get("hero_id")
    if hero_id is not None and await session.get(Hero, hero_id) is None:
        raise Unprocessable(f"hero {hero_id} does not exist", field="hero_id")
    child_id = values["child_id"] if "child_id" in values else getattr(current, "child_id", None)
    if child_id is None:
        return values
    sent = [name for name in SNAPSHOT_FIELDS if values.get(name) is not None]
    if sent:
        raise Unprocessable(
            f"{', '.join(sent)} are copied from the child when child_id is given", field=sent[0]
        )
    # FOR SHARE: a concurrent child update waits for this story, then propagates to it.
    child = (
        await session.execute(select(Child).where(Child.id == child_id).with_for_update(read=True))
    ).scalar_one_or_none()
    if child is None:
        raise Unprocessable(f"child {child_id} does not exist", field="child_id")
    return {**values, **_snapshot_of(child)}


async def _touch_stories(
    session: AsyncSession, where: ColumnElement[bool], **values: Any
) -> list[RelatedChange]:
    rows = await session.execute(
        update(Story)
        .where(where)
        .values(version=Story.version + 1, updated_at=utcnow(), **values)
        .returning(Story.id, Story.version)
        .execution_options(synchronize_session=False)
    )
    return [RelatedChange("story", story_id, version) for story_id, version in rows]


async def refresh_child_snapshot(session: AsyncSession, child: Child) -> list[RelatedChange]:
    """Child update → its stories' snapshot follows, in the same transaction."""
    return await _touch_stories(session, Story.child_id == child.id, **_snapshot_of(child))


async def detach_hero_from_stories(session: AsyncSession, hero: Hero) -> list[RelatedChange]:
    """Hero delete → hero_id of its stories becomes null (explicitly, so versions move)."""
    return await _touch_stories(session, Story.hero_id == hero.id, hero_id=None)


async def delete_stories_of_child(session: AsyncSession, child: Child) -> list[RelatedChange]:
    """Child delete → its stories are deleted too (children's data is personal data)."""
    rows = await session.execute(
        delete(Story)
        .where(Story.child_id == child.id)
        .returning(Story.id)
        .execution_options(synchronize_session=False)
    )
    return [RelatedChange("story", story_id, None) for (story_id,) in rows]
