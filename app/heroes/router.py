from typing import Annotated

from pydantic import Field

from app.core.entity_router import EntityRoutes, entity_router, repository_dependency
from app.core.schemas import Language, Page, QueryModel
from app.heroes.repository import HeroFilters
from app.heroes.schemas import HeroCreate, HeroPatch, HeroRead


class HeroListQuery(QueryModel):
    language: Language | None = None
    name: Annotated[str | None, Field(max_length=100, description="exact match")] = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


router = entity_router(
    EntityRoutes(
        prefix="/api/v1/heroes",
        entity="hero",
        tag="heroes",
        create_schema=HeroCreate,
        patch_schema=HeroPatch,
        read_schema=HeroRead,
        page_schema=Page[HeroRead],
        list_query=HeroListQuery,
        filters=HeroFilters,
        repository=repository_dependency("hero"),
    )
)
