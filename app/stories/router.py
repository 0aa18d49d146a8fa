from typing import Annotated
from uuid import UUID

from fastapi import Response
from pydantic import Field

from app.core.entity_router import (
    EntityRepository,
    EntityRoutes,
    IfMatch,
    doc_response,
    entity_router,
    repository_dependency,
)
from app.core.http import expected_version
from app.core.schemas import Language, Page, QueryModel
from app.stories.repository import StoryFilters
from app.stories.schemas import RatingUpdate, StoryCreate, StoryPatch, StoryRead


class StoryListQuery(QueryModel):
    child_id: UUID | None = None
    child_name: Annotated[str | None, Field(max_length=100, description="exact match")] = None
    language: Language | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


story_repository = repository_dependency("story")

router = entity_router(
    EntityRoutes(
        prefix="/api/v1/stories",
        entity="story",
        tag="stories",
        create_schema=StoryCreate,
        patch_schema=StoryPatch,
        read_schema=StoryRead,
        page_schema=Page[StoryRead],
        list_query=StoryListQuery,
        filters=StoryFilters,
        repository=story_repository,
    )
)


@router.put(
    "/{entity_id}/rating",
    response_model=StoryRead,
    responses={
        404: {"description": "Not found"},
        412: {"description": "If-Match failed"},
    },
)
async def rate_story(
    entity_id: UUID,
    body: RatingUpdate,
    repo: Annotated[EntityRepository, story_repository],
    if_match: IfMatch = None,
) -> Response:
    doc = await repo.update(
        entity_id,
        {"rating": body.rating},
        expected_version(if_match, entity_id),
        op="rate",
    )
    return doc_response(doc)
