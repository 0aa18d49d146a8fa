from dataclasses import dataclass

from app.core.repository import Filters, SQLAlchemyRepository
from app.heroes.models import Hero
from app.heroes.schemas import HeroRead


@dataclass(frozen=True, slots=True)
class HeroFilters(Filters):
    language: str | None = None
    name: str | None = None


class HeroRepository(SQLAlchemyRepository[Hero, HeroFilters]):
    entity = "hero"
    model = Hero
    read_schema = HeroRead
    indexed_attributes = ("language", "name")

    async def _detach_dependents(self, obj: Hero):  # type: ignore[override]
        from app.stories.repository import detach_hero_from_stories

        return await detach_hero_from_stories(self.session, obj.id)
