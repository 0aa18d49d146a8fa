from dataclasses import dataclass

from app.core.documents import RelatedChange
from app.core.repository import Filters, Finders, SQLAlchemyRepository
from app.heroes.models import Hero
from app.heroes.schemas import HeroRead
from app.stories.repository import detach_hero_from_stories


@dataclass(frozen=True, slots=True)
class HeroFilters(Filters):
    language: str | None = None
    name: str | None = None


class HeroFinders(Finders):
    async def find_by_language(self, language: str, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(HeroFilters(language=language), limit, offset)

    async def find_by_name(self, name: str, limit: int = 20, offset: int = 0) -> bytes:
        return await self.list(HeroFilters(name=name), limit, offset)


class HeroRepository(HeroFinders, SQLAlchemyRepository[Hero, HeroFilters]):
    finders = HeroFinders
    entity = "hero"
    model = Hero
    read_schema = HeroRead
    indexed_attributes = ("language", "name")

    async def _detach_dependents(self, obj: Hero) -> list[RelatedChange]:
        return await detach_hero_from_stories(self.session, obj.id)
