from dataclasses import dataclass

from app.children.models import Child
from app.children.schemas import ChildRead
from app.core.documents import RelatedChange
from app.core.repository import Filters, Finders, SQLAlchemyRepository
from app.stories.repository import (
    SNAPSHOT_SOURCE_FIELDS,
    delete_stories_of_child,
    refresh_child_snapshot,
)


@dataclass(frozen=True, slots=True)
class ChildFilters(Filters):
    name: str | None = None
    age: int | None = None
    gender: str | None = None


class ChildFinders(Finders):
    async def find_by_name(self, name: str, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(ChildFilters(name=name), limit, offset)

    async def find_exact(
        self, name: str, age: int, gender: str, limit: int = 20, offset: int = 0
    ) -> bytes:
        return await self.list(ChildFilters(name=name, age=age, gender=gender), limit, offset)


class ChildRepository(ChildFinders, SQLAlchemyRepository[Child, ChildFilters]):
    finders = ChildFinders
    entity = "child"
    model = Child
    read_schema = ChildRead
    indexed_attributes = ("name", "age", "gender")

    async def _propagate(self, obj: Child, changed: set[str]) -> list[RelatedChange]:
        if changed.isdisjoint(SNAPSHOT_SOURCE_FIELDS):
            return []
        return await refresh_child_snapshot(self.session, obj)

    async def _detach_dependents(self, obj: Child) -> list[RelatedChange]:
        return await delete_stories_of_child(self.session, obj.id)
