from typing import Annotated

from pydantic import Field

from app.children.repository import ChildFilters
from app.children.schemas import ChildCreate, ChildPatch, ChildRead
from app.core.entity_router import EntityRoutes, entity_router, repository_dependency
from app.core.schemas import Gender, Page, QueryModel


class ChildListQuery(QueryModel):
    name: Annotated[str | None, Field(max_length=100, description="exact match")] = None
    age: Annotated[int | None, Field(ge=1, le=17)] = None
    gender: Gender | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


router = entity_router(
    EntityRoutes(
        prefix="/api/v1/children",
        entity="child",
        tag="children",
        create_schema=ChildCreate,
        patch_schema=ChildPatch,
        read_schema=ChildRead,
        page_schema=Page[ChildRead],
        list_query=ChildListQuery,
        filters=ChildFilters,
        repository=repository_dependency("child"),
    )
)
