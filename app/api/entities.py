"""The routes of every entity, built from its declaration: CRUD, the list with its filters,
and its actions (e.g. `PUT /stories/{id}/rating`).

Routes only see the repository interface (get/list/add/update/delete returning JSON
documents); whether a cache sits behind it is decided when the app starts.
"""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from app.api import contract
from app.api.contract import IfMatch, IfNoneMatch
from app.api.dependencies import repository_dependency
from app.core.documents import Doc
from app.core.errors import NotFound
from app.core.http import expected_version, if_none_match_hits
from app.core.registry import Action, EntitySpec
from app.core.repository import EntityRepository
from app.core.schemas import sent_fields

JSON = "application/json"


def doc_response(
    doc: Doc, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        doc.body,
        status_code=status_code,
        media_type=JSON,
        headers={"ETag": doc.etag, **(headers or {})},
    )


def operation_names(spec: EntitySpec) -> dict[str, str]:
    """The names (and operation ids) of an entity's routes: `get_hero`, `list_heroes`..."""
    names = {
        "create": f"create_{spec.name}",
        "get": f"get_{spec.name}",
        "list": f"list_{spec.plural}",
        "replace": f"replace_{spec.name}",
        "update": f"update_{spec.name}",
        "delete": f"delete_{spec.name}",
    }
    names.update({action.op: f"{action.op}_{spec.name}" for action in spec.actions})
    return names


def _links(spec: EntitySpec) -> dict[str, Any]:
    """OpenAPI links from a response carrying an entity to the routes taking its id (what a
    stateful client, or schemathesis's stateful phase, follows)."""
    by_id = {"entity_id": "$response.body#/id"}
    names = operation_names(spec)
    return {
        name: {"operationId": name, "parameters": by_id}
        for key, name in names.items()
        if key not in ("create", "list")
    }


def entity_router(spec: EntitySpec) -> APIRouter:
    router = APIRouter(prefix=spec.path, tags=[spec.plural])
    Repo = Annotated[EntityRepository, repository_dependency(spec)]
    Create: Any = spec.create
    Patch: Any = spec.patch
    ListQuery: Any = spec.list_query
    filter_names = spec.indexed
    names = operation_names(spec)
    links = _links(spec)

    def one(description: str, **more: Any) -> dict[str, Any]:
        return {**contract.with_etag(description, **more), "links": links}

    @router.post(
        "",
        name=names["create"],
        summary=f"Create a {spec.name}",
        status_code=201,
        response_model=spec.read,
        responses={201: one("Created", location=True), **contract.CREATE},
    )
    async def create(body: Create, repo: Repo, request: Request) -> Response:
        doc = await repo.add(body)
        location = str(request.url_for(names["get"], entity_id=doc.id))
        return doc_response(doc, 201, {"Location": location})

    @router.get(
        "/{entity_id}",
        name=names["get"],
        summary=f"Get a {spec.name}",
        response_model=spec.read,
        responses={200: one("The entity"), **contract.READ_ONE},
    )
    async def get(entity_id: UUID, repo: Repo, if_none_match: IfNoneMatch = None) -> Response:
        doc = await repo.get(entity_id)
        if doc is None:
            raise NotFound.of(spec.name, entity_id)
        if if_none_match_hits(if_none_match, doc.etag):
            return Response(status_code=304, headers={"ETag": doc.etag})
        return doc_response(doc)

    @router.get(
        "",
        name=names["list"],
        summary=f"List {spec.plural}",
        response_model=spec.page_schema,
        responses=contract.READ_MANY,
    )
    async def list_(query: Annotated[ListQuery, Query()], repo: Repo) -> Response:
        filters = {
            name: value for name in filter_names if (value := getattr(query, name)) is not None
        }
        body = await repo.list(filters, query.limit, query.offset)
        return Response(body, media_type=JSON)

    @router.put(
        "/{entity_id}",
        name=names["replace"],
        summary=f"Replace a {spec.name}",
        response_model=spec.read,
        responses={200: one("Replaced"), **contract.WRITE},
    )
    async def replace(
        entity_id: UUID, body: Create, repo: Repo, if_match: IfMatch = None
    ) -> Response:
        doc = await repo.update(entity_id, body.model_dump(), expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.patch(
        "/{entity_id}",
        name=names["update"],
        summary=f"Update some fields of a {spec.name}",
        response_model=spec.read,
        responses={200: one("Updated"), **contract.WRITE},
    )
    async def patch(entity_id: UUID, body: Patch, repo: Repo, if_match: IfMatch = None) -> Response:
        changes = sent_fields(body)
        doc = await repo.update(entity_id, changes, expected_version(if_match, entity_id))
        return doc_response(doc)

    @router.delete(
        "/{entity_id}",
        name=names["delete"],
        summary=f"Delete a {spec.name}",
        status_code=204,
        responses=contract.DELETE,
    )
    async def delete(entity_id: UUID, repo: Repo, if_match: IfMatch = None) -> Response:
        await repo.delete(entity_id, expected_version(if_match, entity_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    for action in spec.actions:
        _add_action(router, spec, action, Repo, names[action.op], one)
    return router


def _add_action(
    router: APIRouter, spec: EntitySpec, action: Action, Repo: Any, name: str, one: Any
) -> None:
    Body: Any = action.body

    async def act(entity_id: UUID, body: Body, repo: Repo, if_match: IfMatch = None) -> Response:
        expected = expected_version(if_match, entity_id)
        doc = await repo.update(entity_id, body.model_dump(), expected, op=action.op)
        return doc_response(doc)

    router.add_api_route(
        f"/{{entity_id}}/{action.path}",
        act,
        methods=["PUT"],
        name=name,
        summary=action.summary,
        response_model=spec.read,
        responses={200: one("Updated"), **contract.WRITE},
    )
