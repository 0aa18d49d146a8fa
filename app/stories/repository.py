from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.models import Child
from app.core.database import utcnow
from app.core.documents import RelatedChange
from app.core.errors import Unprocessable
from app.core.repository import Filters, Finders, SQLAlchemyRepository
from app.heroes.models import Hero
from app.stories.models import Story
from app.stories.schemas import SNAPSHOT_FIELDS, StoryRead


@dataclass(frozen=True, slots=True)
class StoryFilters(Filters):
    child_id: UUID | None = None
    child_name: str | None = None
    language: str | None = None


SNAPSHOT_SOURCE_FIELDS = frozenset({"name", "age_category", "gender", "interests"})


def _snapshot(child: Child) -> dict[str, Any]:
    return {
        "child_name": child.name,
        "age_category": child.age_category,
        "child_gender": child.gender,
        "child_interests": list(child.interests),
    }


class StoryFinders(Finders):
    async def find_by_child_id(self, child_id: UUID, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(StoryFilters(child_id=child_id), limit, offset)

    async def find_by_child_name(self, name: str, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(StoryFilters(child_name=name), limit, offset)

    async def find_by_language(self, language: str, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(StoryFilters(language=language), limit, offset)


class StoryRepository(StoryFinders, SQLAlchemyRepository[Story, StoryFilters]):
    finders = StoryFinders
    entity = "story"
    model = Story
    read_schema = StoryRead
    indexed_attributes = ("child_id", "child_name", "language")

    async def _prepare(self, values: dict[str, Any], current: Story | None) -> dict[str, Any]:
        hero_id = values.get("hero_id")
        if hero_id is not None and await self.session.get(Hero, hero_id) is None:
            raise Unprocessable(f"hero {values['hero_id']} does not exist", field="hero_id")
        child_id = (
            values["child_id"] if "child_id" in values else getattr(current, "child_id", None)
        )
        if child_id is None:
            return values
        sent = [name for name in SNAPSHOT_FIELDS if values.get(name) is not None]
        if sent:
            raise Unprocessable(
                f"{', '.join(sent)} are copied from the child when child_id is given",
                field=sent[0],
            )
        # FOR SHARE: a concurrent child update waits for this story, then propagates to it.
        child = (
            await self.session.execute(
                select(Child).where(Child.id == child_id).with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if child is None:
            raise Unprocessable(f"child {child_id} does not exist", field="child_id")
        return {**values, **_snapshot(child)}


async def _touch_stories(session: AsyncSession, where: Any, **values: Any) -> list[RelatedChange]:
    rows = await session.execute(
        update(Story)
        .where(where)
        .values(version=Story.version + 1, updated_at=utcnow(), **values)
        .returning(Story.id, Story.version)
        .execution_options(synchronize_session=False)
    )
    return [RelatedChange("story", story_id, version) for story_id, version in rows]


async def refresh_child_snapshot(session: AsyncSession, child: Child) -> list[RelatedChange]:
    """Child update → its stories' child_* snapshot follows, in the same transaction."""
    return await _touch_stories(session, Story.child_id == child.id, **_snapshot(child))


async def detach_hero_from_stories(session: AsyncSession, hero_id: UUID) -> list[RelatedChange]:
    """Hero delete → hero_id of its stories becomes null (explicitly, so versions move)."""
    return await _touch_stories(session, Story.hero_id == hero_id, hero_id=None)


async def delete_stories_of_child(session: AsyncSession, child_id: UUID) -> list[RelatedChange]:
    """Child delete → its stories are deleted too (children's data is personal data)."""
    rows = await session.execute(
        delete(Story)
        .where(Story.child_id == child_id)
        .returning(Story.id)
        .execution_options(synchronize_session=False)
    )
    return [RelatedChange("story", story_id, None) for (story_id,) in rows]
