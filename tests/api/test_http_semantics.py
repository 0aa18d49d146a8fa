"""HTTP semantics shared by every entity: ETags, conditional requests (304/412), concurrent
writes, body size limit (413), malformed JSON, and stable pagination."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.children.models import Child
from app.heroes.models import Hero
from app.stories.models import Story
from tests.api import payloads
from tests.api.helpers import create, fetch, list_page, url
from tests.support.redis_server import RedisServer

ENTITIES = ["hero", "child", "story"]
MODELS = {"hero": Hero, "child": Child, "story": Story}
MAX_BODY = 1024 * 1024
JSON = {"Content-Type": "application/json"}


def etag(entity: dict[str, Any]) -> str:
    return f'"{entity["id"]}.{entity["version"]}"'


async def create_entity(client: httpx.AsyncClient, entity: str) -> dict[str, Any]:
    return await create(client, entity, payloads.of(entity))


async def post_raw(client: httpx.AsyncClient, entity: str, content: Any) -> httpx.Response:
    """POST `content` (bytes, or an async iterator of them) as it is, declared as JSON."""
    return await client.post(url(entity), content=content, headers=JSON)


async def assert_refused_and_nothing_created(
    client: httpx.AsyncClient, response: httpx.Response, entity: str, status: int = 422
) -> None:
    """The create was refused with `status` and a JSON `detail`, and nothing was stored."""
    assert response.status_code == status
    assert response.json()["detail"]
    assert (await list_page(client, entity))["total"] == 0


# -- ETag ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
async def test_etag_is_the_strong_id_dot_version_and_follows_changes(
    client: httpx.AsyncClient, entity: str
):
    created = await client.post(url(entity), json=payloads.of(entity))
    body = created.json()
    entity_url = url(entity, body["id"])

    fetched = await client.get(entity_url)
    patched = await client.patch(entity_url, json=payloads.small_change(entity))
    refetched = await client.get(entity_url)

    assert created.headers["ETag"] == f'"{body["id"]}.1"'
    assert not created.headers["ETag"].startswith("W/")
    assert fetched.headers["ETag"] == created.headers["ETag"]
    assert patched.headers["ETag"] == f'"{body["id"]}.2"'
    assert refetched.headers["ETag"] == patched.headers["ETag"]
    assert refetched.json()["version"] == 2


@pytest.mark.parametrize("entity", ENTITIES)
async def test_location_header_is_the_url_of_the_created_entity(
    client: httpx.AsyncClient, entity: str
):
    response = await client.post(url(entity), json=payloads.of(entity))

    location = httpx.URL(response.headers["Location"])
    assert location.path == url(entity, response.json()["id"])
    fetched = await client.get(location)
    assert fetched.status_code == 200
    assert fetched.json() == response.json()


# -- If-None-Match ---------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
async def test_get_with_matching_if_none_match_is_304_without_body(
    client: httpx.AsyncClient, entity: str
):
    stored = await create_entity(client, entity)

    response = await client.get(url(entity, stored["id"]), headers={"If-None-Match": etag(stored)})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag(stored)


@pytest.mark.parametrize(
    "header",
    ["{etag}", "W/{etag}", '"other", {etag}', "*"],
    ids=["exact", "weak", "in-a-list", "star"],
)
async def test_if_none_match_forms_that_match_give_304(client: httpx.AsyncClient, header: str):
    hero = await create_entity(client, "hero")

    response = await client.get(
        url("hero", hero["id"]), headers={"If-None-Match": header.format(etag=etag(hero))}
    )

    assert response.status_code == 304
    assert response.content == b""


async def test_get_with_a_stale_if_none_match_returns_the_current_entity(
    client: httpx.AsyncClient,
):
    hero = await create_entity(client, "hero")
    patched = (await client.patch(url("hero", hero["id"]), json={"age": 10})).json()

    response = await client.get(url("hero", hero["id"]), headers={"If-None-Match": etag(hero)})

    assert response.status_code == 200
    assert response.json() == patched
    assert response.headers["ETag"] == etag(patched)


async def test_if_none_match_of_another_entity_does_not_give_304(client: httpx.AsyncClient):
    first = await create_entity(client, "hero")
    second = await create_entity(client, "hero")

    response = await client.get(url("hero", first["id"]), headers={"If-None-Match": etag(second)})

    assert response.status_code == 200
    assert response.json() == first


async def test_if_none_match_on_an_unknown_entity_is_still_404(client: httpx.AsyncClient):
    response = await client.get(url("hero", payloads.MISSING_ID), headers={"If-None-Match": "*"})

    assert response.status_code == 404


# -- If-Match --------------------------------------------------------------------------------


def conditional_write(entity: str, method: str, entity_id: str) -> tuple[str, dict[str, Any]]:
    """The (url, request kwargs) of a write of `method` on the entity."""
    if method == "PUT":
        return url(entity, entity_id), {
            "json": payloads.of(entity, **payloads.small_change(entity))
        }
    if method == "PATCH":
        return url(entity, entity_id), {"json": payloads.small_change(entity)}
    if method == "RATE":
        return f"{url(entity, entity_id)}/rating", {"json": payloads.rating(4)}
    return url(entity, entity_id), {}


WRITES = [
    *[(entity, method) for entity in ENTITIES for method in ("PUT", "PATCH", "DELETE")],
    ("story", "RATE"),
]


def http_method(method: str) -> str:
    return "PUT" if method == "RATE" else method


@pytest.mark.parametrize(("entity", "method"), WRITES)
async def test_write_with_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, entity: str, method: str
):
    stored = await create_entity(client, entity)
    current = (
        await client.patch(url(entity, stored["id"]), json=payloads.small_change(entity, "v2"))
    ).json()
    target, kwargs = conditional_write(entity, method, stored["id"])

    response = await client.request(
        http_method(method), target, headers={"If-Match": etag(stored)}, **kwargs
    )

    assert response.status_code == 412
    assert response.json()["detail"]
    assert await fetch(client, entity, stored["id"]) == current


@pytest.mark.parametrize(("entity", "method"), WRITES)
async def test_write_with_the_current_if_match_succeeds(
    client: httpx.AsyncClient, entity: str, method: str
):
    stored = await create_entity(client, entity)
    target, kwargs = conditional_write(entity, method, stored["id"])

    response = await client.request(
        http_method(method), target, headers={"If-Match": etag(stored)}, **kwargs
    )

    if method == "DELETE":
        assert response.status_code == 204
        assert (await client.get(url(entity, stored["id"]))).status_code == 404
    else:
        assert response.status_code == 200
        assert response.json()["version"] == 2
        assert response.headers["ETag"] == f'"{stored["id"]}.2"'


@pytest.mark.parametrize(
    "header",
    ["*", '"other", {etag}'],
    ids=["star", "in-a-list"],
)
async def test_if_match_star_or_a_list_containing_the_etag_succeeds(
    client: httpx.AsyncClient, header: str
):
    hero = await create_entity(client, "hero")

    response = await client.patch(
        url("hero", hero["id"]),
        json={"age": 11},
        headers={"If-Match": header.format(etag=etag(hero))},
    )

    assert response.status_code == 200
    assert response.json()["age"] == 11


@pytest.mark.parametrize(
    "header",
    ["W/{etag}", "{other}", '"{id}.x"'],
    ids=["weak", "other-entity", "non-numeric-version"],
)
async def test_if_match_that_is_not_a_strong_match_is_412(client: httpx.AsyncClient, header: str):
    hero = await create_entity(client, "hero")
    other = await create_entity(client, "hero")

    response = await client.patch(
        url("hero", hero["id"]),
        json={"age": 11},
        headers={"If-Match": header.format(etag=etag(hero), other=etag(other), id=hero["id"])},
    )

    assert response.status_code == 412
    assert await fetch(client, "hero", hero["id"]) == hero


async def test_if_match_that_is_no_etag_list_is_422_naming_the_header(client: httpx.AsyncClient):
    """Its format is stated in the OpenAPI document (tests/contract covers every route)."""
    hero = await create_entity(client, "hero")

    response = await client.patch(
        url("hero", hero["id"]), json={"age": 11}, headers={"If-Match": "garbage"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "if-match"]
    assert await fetch(client, "hero", hero["id"]) == hero


async def test_concurrent_patches_with_the_same_if_match_let_exactly_one_win(
    client: httpx.AsyncClient,
):
    hero = await create_entity(client, "hero")
    names = ["First", "Second"]

    responses = await asyncio.gather(
        *(
            client.patch(
                url("hero", hero["id"]), json={"name": name}, headers={"If-Match": etag(hero)}
            )
            for name in names
        )
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200
    assert statuses[1] in (409, 412)
    winner = next(response for response in responses if response.status_code == 200).json()
    assert winner["version"] == 2
    assert await fetch(client, "hero", hero["id"]) == winner
    assert winner["name"] in names


CHANGES = [{"age": 20}, {"interests": ["maps"]}]


async def test_concurrent_unconditional_patches_never_lose_an_acknowledged_change(
    client: httpx.AsyncClient,
):
    hero = await create_entity(client, "hero")

    responses = await asyncio.gather(
        *(client.patch(url("hero", hero["id"]), json=change) for change in CHANGES)
    )

    statuses = [response.status_code for response in responses]
    assert 200 in statuses
    assert set(statuses) <= {200, 409}
    current = await fetch(client, "hero", hero["id"])
    assert current["version"] == 1 + statuses.count(200)
    applied = [change for change, status in zip(CHANGES, statuses, strict=True) if status == 200]
    for change in applied:
        assert {name: current[name] for name in change} == change


# -- body size -------------------------------------------------------------------------------


def oversized_hero() -> bytes:
    return httpx.Request("POST", "/", json=payloads.hero(appearance="a" * MAX_BODY)).content


async def test_body_over_one_mebibyte_is_413_with_a_json_body(client: httpx.AsyncClient):
    body = oversized_hero()
    assert len(body) > MAX_BODY

    response = await post_raw(client, "hero", body)

    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert (await list_page(client, "hero"))["total"] == 0


async def test_streamed_body_over_one_mebibyte_is_413_with_a_json_body(
    client: httpx.AsyncClient,
):
    body = oversized_hero()

    async def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await post_raw(client, "hero", chunks())

    assert "Content-Length" not in response.request.headers
    await assert_refused_and_nothing_created(client, response, "hero", status=413)


async def test_oversized_update_is_413_and_changes_nothing(client: httpx.AsyncClient):
    hero = await create_entity(client, "hero")

    response = await client.put(
        url("hero", hero["id"]),
        content=oversized_hero(),
        headers=JSON,
    )

    assert response.status_code == 413
    assert await fetch(client, "hero", hero["id"]) == hero


async def test_body_of_exactly_one_mebibyte_is_not_refused_for_its_size(
    client: httpx.AsyncClient,
):
    body = httpx.Request("POST", "/", json=payloads.story()).content
    padded = body[:-1] + b" " * (MAX_BODY - len(body)) + b"}"
    assert len(padded) == MAX_BODY

    response = await post_raw(client, "story", padded)

    assert response.status_code == 201
    assert response.json()["title"] == payloads.story()["title"]


# -- malformed bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
async def test_malformed_json_is_422(client: httpx.AsyncClient, entity: str):
    response = await post_raw(client, entity, b'{"name": "Luna",')

    await assert_refused_and_nothing_created(client, response, entity)


@pytest.mark.parametrize(
    "raw",
    [b"{'name': 'Luna'}", b"not json", b'{"a": 1} trailing', b'{"name": "Luna"'],
    ids=["single-quotes", "not-json", "trailing-garbage", "unclosed"],
)
async def test_every_kind_of_malformed_json_is_422(client: httpx.AsyncClient, raw: bytes):
    response = await post_raw(client, "hero", raw)

    await assert_refused_and_nothing_created(client, response, "hero")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_malformed_json_on_update_is_422_and_changes_nothing(
    client: httpx.AsyncClient, method: str
):
    hero = await create_entity(client, "hero")

    response = await client.request(
        method,
        url("hero", hero["id"]),
        content=b'{"age": }',
        headers=JSON,
    )

    assert response.status_code == 422
    assert await fetch(client, "hero", hero["id"]) == hero


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'"Luna"', b"42", b"null", b""],
    ids=["array", "string", "number", "null", "empty"],
)
async def test_a_body_that_is_not_a_json_object_is_422(client: httpx.AsyncClient, raw: bytes):
    response = await post_raw(client, "hero", raw)

    assert response.status_code == 422
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\xff\xfe", "age": 3, "gender": "male", "language": "en"}',
        b'{"name": "\\ud800", "age": 3, "gender": "male", "language": "en"}',
        b'{"name": "Luna", "age": NaN, "gender": "male", "language": "en"}',
        b'{"name": "Luna", "age": Infinity, "gender": "male", "language": "en"}',
    ],
    ids=["invalid-utf8", "lone-surrogate", "nan", "infinity"],
)
async def test_undecodable_or_non_finite_input_is_422(client: httpx.AsyncClient, raw: bytes):
    response = await post_raw(client, "hero", raw)

    await assert_refused_and_nothing_created(client, response, "hero")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "T", "content": "c", "language": "en", "full_response": {"a": NaN}}',
        b'{"title": "T", "content": "c", "language": "en", "generation_info": {"\\udc00": 1}}',
        b'{"title": "T", "content": "c", "language": "en", "full_response": '
        + b'{"a": [' * 200
        + b"1"
        + b"]}" * 200
        + b"}",
    ],
    ids=["nan-inside", "lone-surrogate-key", "nested-too-deep"],
)
async def test_free_form_json_fields_must_be_plain_json(client: httpx.AsyncClient, raw: bytes):
    response = await post_raw(client, "story", raw)

    await assert_refused_and_nothing_created(client, response, "story")


@pytest.mark.parametrize(
    ("entity", "field"),
    [("hero", "name"), ("hero", "appearance"), ("child", "name"), ("story", "content")],
)
async def test_nul_character_in_text_is_422_on_every_database(
    client: httpx.AsyncClient, entity: str, field: str
):
    response = await client.post(url(entity), json=payloads.of(entity, **{field: "a\x00b"}))

    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert (await list_page(client, entity))["total"] == 0


@pytest.mark.parametrize(
    ("entity", "param"), [("hero", "name"), ("child", "name"), ("story", "child_name")]
)
async def test_nul_character_in_a_filter_is_422_on_every_database(
    client: httpx.AsyncClient, entity: str, param: str
):
    response = await client.get(url(entity), params={param: "a\x00b"})

    assert response.status_code == 422
    assert any(param in error["loc"] for error in response.json()["detail"])


# -- pagination ------------------------------------------------------------------------------


async def walk_pages(client: httpx.AsyncClient, entity: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    offset = 0
    while True:
        page = await list_page(client, entity, limit=limit, offset=offset)
        assert (page["limit"], page["offset"]) == (limit, offset)
        ids = [item["id"] for item in page["items"]]
        if not ids:
            return pages
        assert len(ids) <= limit
        pages.append(ids)
        offset += limit


@pytest.mark.parametrize("entity", ENTITIES)
async def test_walking_pages_yields_every_entity_once_in_list_order(
    client: httpx.AsyncClient, entity: str
):
    created = [await create_entity(client, entity) for _ in range(8)]
    full = await list_page(client, entity, limit=100)

    pages = await walk_pages(client, entity, limit=3)

    walked = [entity_id for page in pages for entity_id in page]
    assert [len(page) for page in pages] == [3, 3, 2]
    assert len(walked) == len(set(walked))
    assert set(walked) == {item["id"] for item in created}
    assert walked == [item["id"] for item in full["items"]]
    assert full["total"] == 8


@pytest.mark.parametrize("entity", ENTITIES)
async def test_entities_created_at_the_same_instant_are_ordered_by_id_descending(
    client: httpx.AsyncClient, app: FastAPI, redis_server: RedisServer, entity: str
):
    created = [await create_entity(client, entity) for _ in range(7)]
    model = MODELS[entity]
    async with app.state.services.engine.begin() as connection:
        await connection.execute(update(model).values(created_at=datetime(2030, 1, 1, tzinfo=UTC)))
    redis_server.client().flushdb()  # the rows changed behind the service's back

    pages = await walk_pages(client, entity, limit=3)

    walked = [entity_id for page in pages for entity_id in page]
    assert walked == sorted((item["id"] for item in created), reverse=True)
    assert [len(page) for page in pages] == [3, 3, 1]


async def test_list_order_is_newest_first_then_id_descending(client: httpx.AsyncClient):
    for _ in range(5):
        await create_entity(client, "story")

    items = (await list_page(client, "story"))["items"]

    keys = [
        (datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")), item["id"])
        for item in items
    ]
    assert keys == sorted(keys, reverse=True)
    assert len(items) == 5
