"""The routes of every entity, built from its declaration: CRUD, the list with its filters,
and its actions (e.g. `PUT /stories/{id}/rating`).

Routes only see the repository interface (get/list/add/update/delete returning JSON
documents); whether a cache sits behind it is decided when the app starts.
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response, status

from app.api.dependencies import repository_dependency
from app.core.documents import Doc
from app.core.errors import NotFound
from app.core.http import expected_version, if_none_match_hits
from app.core.registry import Action, EntitySpec
from app.core.repository import EntityRepository

JSON = "application/json"

IfMatch = Annotated[str | None, Header(description="ETag from a previous response")]
IfNoneMatch = Annotated[str | None, Header()]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found"}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    412: {"description": "If-Match failed"},
    409: {"description": "Concurrent change"},
}


def doc_response(
    doc: Doc, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        doc.body,
        status_code=status_code,
        media_type=JSON,
        headers={"ETag": doc.etag, **(headers or {})},
    )


def entity_router(spec: EntitySpec) -> APIRouter:
    router = APIRouter(prefix=spec.path, tags=[spec.plural])
    Repo = Annotated[EntityRepository, repository_dependency(spec)]
    Create: Any = spec.create
    Patch: Any = spec.patch
    ListQuery: Any = spec.list_query
    filter_names = spec.indexed
    get_route = f"get_{spec.name}"

    @router.post("", status_code=201, response_model=spec.read)
    async def create(body: Create, repo: Repo, request: Request) -> Response:
        doc = await repo.add(body)
        location = str(request.url_for(get_route, entity_id=doc.id))
        return doc_response(doc, 201, {"Location": location})

    @router.get(
        "/{entity_id}",
        name=get_route,
        response_model=spec.read,
        responses={304: {"description": "Not modified"}, **NOT_FOUND},
    )
    async def get(entity_id: UUID, repo: Repo, if_none_match: IfNoneMatch = None) -> Response:
        doc = await repo.get(entity_id)
        if doc is None:
            raise NotFound.of(spec.name, entity_id)
        if if_none_match_hits(if_none_match, doc.etag):
            return Response(status_code=304, headers={"ETag": doc.etag})
        return doc_response(doc)

    @router.get("", response_model=spec.page_schema)
    async def list_(query: Annotated[ListQuery, Query()], repo: Repo) -> Response:
        filters = {
            name: value for name in filter_names if (value := getattr(query, name)) is not None
        }
        body = await repo.list(filters, query.limit, query.offset)
        return Response(body, media_type=JSON)

    @router.put("/{entity_id}", response_model=spec.read, responses=WRITE_ERRORS)
    async def replace(
        entity_id: UUID, body: Create, repo: Repo, if_match: IfMatch = None
    ) -> Response:
        doc = await repo.update(entity_id, body.model_dump(), expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.patch("/{entity_id}", response_model=spec.read, responses=WRITE_ERRORS)
    async def patch(entity_id: UUID, body: Patch, repo: Repo, if_match: IfMatch = None) -> Response:
        changes = body.model_dump(exclude_unset=True)
        doc = await repo.update(entity_id, changes, expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.delete("/{entity_id}", status_code=204, responses=WRITE_ERRORS)
    async def delete(entity_id: UUID, repo: Repo, if_match: IfMatch = None) -> Response:
        await repo.delete(entity_id, expected_version(if_match, entity_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    for action in spec.actions:
        _add_action(router, spec, action, Repo)
    return router


def _add_action(router: APIRouter, spec: EntitySpec, action: Action, Repo: Any) -> None:
    Body: Any = action.body

    async def act(entity_id: UUID, body: Body, repo: Repo, if_match: IfMatch = None) -> Response:
        expected = expected_version(if_match, entity_id)
        doc = await repo.update(entity_id, body.model_dump(), expected, op=action.op)
        return doc_response(doc)

    router.add_api_route(
        f"/{{entity_id}}/{action.path}",
        act,
        methods=["PUT"],
        name=f"{action.op}_{spec.name}",
        summary=action.summary,
        response_model=spec.read,
        responses={**NOT_FOUND, 412: WRITE_ERRORS[412]},
    )
