"""What the service enforces, over HTTP, and what its OpenAPI document states about it:
strict numbers in bodies and query strings, 405 with the path's whole `Allow` on every
route, the precondition headers' format (near hits included), every status code of each
route, NUL exclusion and ranges stated in the schemas, readable operation ids."""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.http import ETAG_LIST_PATTERN
from app.entities import ENTITIES
from app.main import create_app
from tests.api import payloads
from tests.api.helpers import create, fetch, list_page, url
from tests.conftest import make_settings

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
NOT_INTEGERS = [True, "7", 7.5, None, [7]]
QUERY_NOT_INTEGERS = ["true", "1.0", " 1", "1 ", "+1", "1_0", "0x1", "", "１"]


def located(response: httpx.Response, *loc: str) -> bool:
    """A 422 whose body names `loc` (e.g. ("body", "age"))."""
    assert response.status_code == 422, response.text
    return any(tuple(error["loc"]) == loc for error in response.json()["detail"])


# -- strict numbers ---------------------------------------------------------------------------

INTEGER_FIELDS = [("hero", "age"), ("child", "age"), ("story", "story_length"), ("story", "rating")]


@pytest.mark.parametrize(("entity", "field"), INTEGER_FIELDS)
async def test_a_body_integer_takes_no_boolean_string_or_fraction(
    client: httpx.AsyncClient, entity: str, field: str
):
    nullable = ENTITIES[entity].create.model_fields[field].default is None
    for value in NOT_INTEGERS:
        if value is None and nullable:
            continue  # null is a value of this field
        response = await client.post(url(entity), json=payloads.of(entity, **{field: value}))
        assert located(response, "body", field), value
    assert (await list_page(client, entity))["total"] == 0


async def test_a_body_integer_written_with_a_zero_fraction_is_that_integer(
    client: httpx.AsyncClient,
):
    """JSON Schema's integers include 7.0; it is stored as 7."""
    hero = await create(client, "hero", payloads.hero(age=7.0))
    assert (await fetch(client, "hero", hero["id"]))["age"] == 7


async def test_the_rating_action_takes_no_boolean_or_string(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())
    for value in (True, "5", 5.5):
        response = await client.put(f"{url('story', story['id'])}/rating", json={"rating": value})
        assert located(response, "body", "rating")
    assert (await fetch(client, "story", story["id"]))["version"] == 1


@pytest.mark.parametrize(
    ("entity", "param"), [("child", "age"), ("hero", "limit"), ("story", "offset")]
)
@pytest.mark.parametrize("value", QUERY_NOT_INTEGERS, ids=repr)
async def test_a_query_integer_is_plain_decimal_digits(
    client: httpx.AsyncClient, entity: str, param: str, value: str
):
    response = await client.get(url(entity), params={param: value})

    assert located(response, "query", param)


async def test_query_integers_in_decimal_digits_are_taken(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(age=5))
    page = await list_page(client, "child", age="5", limit="07", offset="0")
    assert [item["id"] for item in page["items"]] == [child["id"]]
    assert page["limit"] == 7


# -- 405 and Allow ----------------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{entity_id}", payloads.MISSING_ID).replace("{entity}", "heroes")


def _served(app: FastAPI) -> dict[str, set[str]]:
    return {
        path: {method.upper() for method in operations}
        for path, operations in app.openapi()["paths"].items()
    }


async def test_every_method_a_route_does_not_serve_is_405_with_the_paths_methods(
    app: FastAPI, client: httpx.AsyncClient
):
    served = _served(app)
    assert len(served) >= 10
    for path, methods in served.items():
        allow = {method.strip() for method in ", ".join(sorted(methods)).split(",")}
        for method in METHODS:
            if method in methods:
                continue
            response = await client.request(method, _concrete(path))
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["Allow"].split(", ")) == allow, (method, path)
            if method != "HEAD":
                assert response.json() == {"detail": "Method Not Allowed"}


async def test_options_on_a_collection_and_an_item_lists_all_their_methods(
    client: httpx.AsyncClient,
):
    collection = await client.options(url("hero"))
    item = await client.options(url("hero", payloads.MISSING_ID))
    rating = await client.options(f"{url('story', payloads.MISSING_ID)}/rating")

    assert (collection.status_code, collection.headers["Allow"]) == (405, "GET, POST")
    assert (item.status_code, item.headers["Allow"]) == (405, "GET, PUT, PATCH, DELETE")
    assert (rating.status_code, rating.headers["Allow"]) == (405, "PUT")


async def test_a_literal_path_is_not_taken_by_a_parametrized_one(client: httpx.AsyncClient):
    """`DELETE /cache/stats` is not `DELETE /cache/{entity}` with entity "stats"."""
    response = await client.delete("/cache/stats")

    assert (response.status_code, response.headers["Allow"]) == (405, "GET")


async def test_an_unknown_path_is_still_404(client: httpx.AsyncClient):
    assert (await client.post("/api/v1/villains")).status_code == 404


# -- precondition headers ---------------------------------------------------------------------


MALFORMED_ETAG_LISTS = ["abc", "", '"unterminated', '"a" "b"', "W/abc", '"a",,"b"', '"a"b"']


async def test_a_malformed_if_none_match_is_422(client: httpx.AsyncClient):
    """(The same on a near hit: tests/near/test_near_contract.py.)"""
    hero = await create(client, "hero", payloads.hero())
    for _ in range(3):  # read through the cache first, when it is on
        await fetch(client, "hero", hero["id"])

    for value in MALFORMED_ETAG_LISTS:
        response = await client.get(url("hero", hero["id"]), headers={"If-None-Match": value})
        assert located(response, "header", "if-none-match"), value


async def test_a_well_formed_if_none_match_list_is_read(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())
    current = f'"{hero["id"]}.1"'
    for _ in range(3):
        await fetch(client, "hero", hero["id"])
    for header in (current, f"W/{current}", f'"x.1", {current}', "*"):
        response = await client.get(url("hero", hero["id"]), headers={"If-None-Match": header})
        assert response.status_code == 304, header


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_malformed_if_match_is_422_and_changes_nothing(
    client: httpx.AsyncClient, method: str
):
    hero = await create(client, "hero", payloads.hero())
    body = payloads.hero() if method == "PUT" else payloads.small_change("hero")
    response = await client.request(
        method,
        url("hero", hero["id"]),
        headers={"If-Match": "version-1"},
        json=None if method == "DELETE" else body,
    )

    assert located(response, "header", "if-match")
    assert (await fetch(client, "hero", hero["id"]))["version"] == 1


# -- the OpenAPI document ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document the app serves (built without starting it: no database needed)."""
    settings = make_settings("sqlite+aiosqlite://", "redis://127.0.0.1:9/0", redis_enabled=False)
    return create_app(settings).openapi()


STATUSES = {
    "create": {"201", "409", "413", "422", "503"},
    "get": {"200", "304", "404", "422", "503"},
    "list": {"200", "422", "503"},
    "replace": {"200", "404", "409", "412", "413", "422", "503"},
    "update": {"200", "404", "409", "412", "413", "422", "503"},
    "delete": {"204", "404", "409", "412", "422", "503"},
    "rate": {"200", "404", "409", "412", "413", "422", "503"},
}


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }


def test_each_entity_route_documents_every_status_it_can_answer(document: dict[str, Any]):
    operations = _operations(document)
    for spec in ENTITIES:
        for kind, statuses in STATUSES.items():
            if kind == "rate" and spec.name != "story":
                continue
            name = f"list_{spec.plural}" if kind == "list" else f"{kind}_{spec.name}"
            assert set(operations[name]["responses"]) == statuses, name
            assert operations[name]["tags"] == [spec.plural], name


def test_operation_ids_are_the_route_names(document: dict[str, Any]):
    ids = [operation["operationId"] for operation in _operations(document).values()]
    assert len(ids) == len(set(ids))
    assert {"list_heroes", "get_hero", "create_child", "update_story", "rate_story"} <= set(ids)
    assert all(re.fullmatch(r"[a-z_]+", name) for name in ids), ids


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _leaves(document: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> list[dict]:
    """Every leaf schema (strings, integers) reachable from `schema`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return _leaves(document, _resolve(document, schema), seen)
    leaves: list[dict] = []
    for branch in schema.get("anyOf", []):
        leaves += _leaves(document, branch, seen)
    for member in schema.get("properties", {}).values():
        leaves += _leaves(document, member, seen)
    if isinstance(schema.get("items"), dict):
        leaves += _leaves(document, schema["items"], seen)
    if schema.get("type") in ("string", "integer"):
        leaves.append(schema)
    return leaves


def _inputs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The leaf schemas of every request body and parameter (`Authorization` aside: the
    admin token is opaque)."""
    leaves: list[dict[str, Any]] = []
    for operation in _operations(document).values():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            leaves += _leaves(document, body["schema"], set())
        for parameter in operation.get("parameters", []):
            if parameter["name"].lower() != "authorization":
                leaves += _leaves(document, parameter["schema"], set())
    return leaves


def test_every_text_input_states_that_it_excludes_nul(document: dict[str, Any]):
    texts = [
        leaf
        for leaf in _inputs(document)
        if leaf.get("type") == "string" and "enum" not in leaf and "format" not in leaf
    ]
    assert len(texts) > 20
    for leaf in texts:
        assert "pattern" in leaf, leaf
        assert re.search(leaf["pattern"], "a\x00b") is None, leaf


def test_every_integer_input_states_its_range(document: dict[str, Any]):
    integers = [leaf for leaf in _inputs(document) if leaf.get("type") == "integer"]
    assert len(integers) >= 8
    for leaf in integers:
        assert {"minimum", "maximum"} <= set(leaf), leaf
        assert not {"ge", "le"} & set(leaf), leaf


def test_precondition_headers_state_their_format_and_are_never_null(document: dict[str, Any]):
    headers = [
        parameter
        for operation in _operations(document).values()
        for parameter in operation.get("parameters", [])
        if parameter["name"] in ("if-match", "if-none-match")
    ]
    assert len(headers) == 3 * 4 + 1  # get (If-None-Match), put, patch, delete; rating
    for header in headers:
        assert header["schema"]["pattern"] == ETAG_LIST_PATTERN
        assert header["schema"]["type"] == "string"
        assert "anyOf" not in header["schema"]
