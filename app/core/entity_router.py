"""The CRUD routes every entity exposes, built once from an entity's declaration.

Routers only see the repository interface (get/list/add/update/delete returning JSON
documents); whether a cache sits behind it is decided by the injected dependency.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel

from app.core.documents import Doc, Operation
from app.core.errors import NotFound
from app.core.http import expected_version, if_none_match_hits, unit_of_work
from app.core.repository import Filters

JSON = "application/json"


class EntityRepository(Protocol):
    """What routers need; SQLAlchemy repositories and cached repositories both provide it."""

    async def get(self, entity_id: UUID) -> Doc | None: ...
    async def list(self, filters: Any, limit: int, offset: int) -> bytes: ...
    async def add(self, data: BaseModel) -> Doc: ...
    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: Operation = "update",
    ) -> Doc: ...
    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None: ...


@dataclass(frozen=True)
class EntityRoutes:
    prefix: str  # "/api/v1/heroes"
    entity: str  # "hero"
    tag: str
    create_schema: type[BaseModel]
    patch_schema: type[BaseModel]
    read_schema: type[BaseModel]
    page_schema: type[BaseModel]
    list_query: type[BaseModel]  # filters + limit + offset, validated by FastAPI
    filters: type[Filters]
    repository: Any  # `Depends(...)` giving an EntityRepository


def doc_response(doc: Doc, status_code: int = 200, headers: dict[str, str] | None = None):
    return Response(
        doc.body,
        status_code=status_code,
        media_type=JSON,
        headers={"ETag": doc.etag, **(headers or {})},
    )


def repository_dependency(entity: str) -> Any:
    """`Depends` giving the entity's repository on this request's unit of work.

    The factories on `app.state.repositories` are built once in the lifespan and decide
    whether the SQLAlchemy repository is wrapped by the cache. One generator dependency (not
    two nested ones) keeps the cache-hit path short; function scope commits before the
    response is sent.
    """

    async def dependency(request: Request) -> AsyncIterator[Any]:
        async with unit_of_work(request) as uow:
            yield request.app.state.repositories[entity](uow)

    dependency.__name__ = f"{entity}_repository"
    return Depends(dependency, scope="function")


def not_found(routes: EntityRoutes, entity_id: UUID) -> NotFound:
    return NotFound(f"{routes.entity} {entity_id} not found")


IfMatch = Annotated[str | None, Header(description="ETag from a previous response")]
IfNoneMatch = Annotated[str | None, Header()]


def entity_router(routes: EntityRoutes) -> APIRouter:
    router = APIRouter(prefix=routes.prefix, tags=[routes.tag])
    Repo = Annotated[EntityRepository, routes.repository]
    Create = routes.create_schema
    Patch = routes.patch_schema
    ListQuery = routes.list_query
    errors = {
        404: {"description": "Not found"},
        412: {"description": "If-Match failed"},
        409: {"description": "Concurrent change"},
    }

    @router.post(
        "",
        status_code=201,
        response_model=routes.read_schema,
    )
    async def create(body: Create, repo: Repo, request: Request) -> Response:  # type: ignore[valid-type]
        doc = await repo.add(body)
        location = str(request.url_for(f"get_{routes.entity}", entity_id=doc.id))
        return doc_response(doc, 201, {"Location": location})

    @router.get(
        "/{entity_id}",
        name=f"get_{routes.entity}",
        response_model=routes.read_schema,
        responses={304: {"description": "Not modified"}, 404: errors[404]},
    )
    async def get(entity_id: UUID, repo: Repo, if_none_match: IfNoneMatch = None) -> Response:
        doc = await repo.get(entity_id)
        if doc is None:
            raise not_found(routes, entity_id)
        if if_none_match_hits(if_none_match, doc.etag):
            return Response(status_code=304, headers={"ETag": doc.etag})
        return doc_response(doc)

    @router.get("", response_model=routes.page_schema)
    async def list_(query: Annotated[ListQuery, Query()], repo: Repo) -> Response:  # type: ignore[valid-type]
        params = query.model_dump()
        limit, offset = params.pop("limit"), params.pop("offset")
        body = await repo.list(routes.filters(**params), limit, offset)
        return Response(body, media_type=JSON)

    @router.put("/{entity_id}", response_model=routes.read_schema, responses=errors)
    async def replace(
        entity_id: UUID,
        body: Create,
        repo: Repo,  # type: ignore[valid-type]
        if_match: IfMatch = None,
    ) -> Response:
        doc = await repo.update(entity_id, body.model_dump(), expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.patch("/{entity_id}", response_model=routes.read_schema, responses=errors)
    async def patch(
        entity_id: UUID,
        body: Patch,
        repo: Repo,  # type: ignore[valid-type]
        if_match: IfMatch = None,
    ) -> Response:
        changes = body.model_dump(exclude_unset=True)
        doc = await repo.update(entity_id, changes, expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.delete("/{entity_id}", status_code=204, responses=errors)
    async def delete(entity_id: UUID, repo: Repo, if_match: IfMatch = None) -> Response:
        await repo.delete(entity_id, expected_version(if_match, entity_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
