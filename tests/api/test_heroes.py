"""Heroes: create, read, list with filters, replace, patch, delete, and body validation."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api import payloads
from tests.api.helpers import (
    create,
    fetch,
    list_ids,
    list_page,
    names_field,
    parse_timestamp,
    url,
)

# -- create and read -------------------------------------------------------------------------


async def test_create_returns_201_with_location_etag_and_the_hero(client: httpx.AsyncClient):
    body = payloads.hero()
    response = await client.post(url("hero"), json=body)

    assert response.status_code == 201
    hero = response.json()
    uuid.UUID(hero["id"])
    assert hero["version"] == 1
    assert {name: hero[name] for name in body} == body
    assert response.headers["Location"].endswith(url("hero", hero["id"]))
    assert response.headers["ETag"] == f'"{hero["id"]}.1"'
    fetched = await client.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == hero


async def test_created_hero_has_utc_iso8601_timestamps_ending_in_z(client: httpx.AsyncClient):
    before = datetime.now(UTC)
    hero = await create(client, "hero", payloads.hero())
    after = datetime.now(UTC)

    created_at = parse_timestamp(hero["created_at"])
    updated_at = parse_timestamp(hero["updated_at"])
    assert created_at.utcoffset() is not None
    assert before <= created_at <= after
    assert created_at <= updated_at <= after


async def test_create_fills_defaults_for_omitted_optional_fields(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.minimal_hero())

    assert hero["appearance"] == ""
    assert hero["personality_traits"] == []
    assert hero["interests"] == []
    assert hero["strengths"] == []


async def test_get_returns_the_stored_hero_with_its_etag(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero(name="Orion"))

    response = await client.get(url("hero", hero["id"]))

    assert response.status_code == 200
    assert response.json() == hero
    assert response.headers["ETag"] == f'"{hero["id"]}.1"'


async def test_get_unknown_hero_is_404_with_a_detail(client: httpx.AsyncClient):
    response = await client.get(url("hero", payloads.MISSING_ID))

    assert response.status_code == 404
    assert response.json()["detail"]


async def test_get_with_a_malformed_uuid_is_422(client: httpx.AsyncClient):
    response = await client.get(url("hero", "not-a-uuid"))

    assert response.status_code == 422
    assert names_field(response, "entity_id")


@pytest.mark.parametrize(
    "overrides",
    [
        {"age": 0},
        {"age": 1000},
        {"name": "N" * 100},
        {"appearance": "a" * 2000},
        {"interests": [f"interest {i}" for i in range(20)]},
        {"gender": "other", "language": "ru"},
    ],
    ids=["age-0", "age-1000", "name-100", "appearance-2000", "20-interests", "other-ru"],
)
async def test_create_accepts_values_at_the_limits(
    client: httpx.AsyncClient, overrides: dict[str, Any]
):
    hero = await create(client, "hero", payloads.hero(**overrides))

    assert {name: hero[name] for name in overrides} == overrides


# -- list ------------------------------------------------------------------------------------


async def test_list_is_a_page_with_default_limit_and_offset(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())

    page = await list_page(client, "hero")

    assert page == {"items": [hero], "total": 1, "limit": 20, "offset": 0}


async def test_list_of_an_empty_table_is_an_empty_page(client: httpx.AsyncClient):
    page = await list_page(client, "hero", limit=5, offset=10)

    assert page == {"items": [], "total": 0, "limit": 5, "offset": 10}


async def test_list_filters_by_language(client: httpx.AsyncClient):
    english = await create(client, "hero", payloads.hero(language="en"))
    russian = await create(client, "hero", payloads.hero(language="ru"))

    assert await list_ids(client, "hero", language="en") == [english["id"]]
    assert await list_ids(client, "hero", language="ru") == [russian["id"]]


async def test_list_name_filter_is_an_exact_case_sensitive_match(client: httpx.AsyncClient):
    luna = await create(client, "hero", payloads.hero(name="Luna"))
    for other in ("luna", "LUNA", "Luna Star", "Lun"):
        await create(client, "hero", payloads.hero(name=other))

    page = await list_page(client, "hero", name="Luna")

    assert [item["id"] for item in page["items"]] == [luna["id"]]
    assert page["total"] == 1


async def test_list_filters_combine(client: httpx.AsyncClient):
    wanted = await create(client, "hero", payloads.hero(name="Luna", language="ru"))
    await create(client, "hero", payloads.hero(name="Luna", language="en"))
    await create(client, "hero", payloads.hero(name="Orion", language="ru"))

    assert await list_ids(client, "hero", name="Luna", language="ru") == [wanted["id"]]


async def test_list_is_ordered_newest_first(client: httpx.AsyncClient):
    created = [await create(client, "hero", payloads.hero(name=f"Hero {i}")) for i in range(4)]

    assert await list_ids(client, "hero") == [hero["id"] for hero in reversed(created)]


async def test_list_limit_and_offset_slice_the_list_while_total_counts_all(
    client: httpx.AsyncClient,
):
    created = [await create(client, "hero", payloads.hero(name=f"Hero {i}")) for i in range(5)]
    newest_first = [hero["id"] for hero in reversed(created)]

    page = await list_page(client, "hero", limit=2, offset=1)

    assert [item["id"] for item in page["items"]] == newest_first[1:3]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    beyond = await list_page(client, "hero", limit=2, offset=5)
    assert beyond["items"] == []
    assert beyond["total"] == 5


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"offset": -1},
        {"language": "fr"},
        {"name": "N" * 101},
    ],
    ids=["limit-0", "limit-101", "limit-text", "offset-negative", "language-fr", "name-101"],
)
async def test_list_rejects_bad_query_parameters_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any]
):
    response = await client.get(url("hero"), params=params)

    assert response.status_code == 422
    assert names_field(response, next(iter(params)))


async def test_list_accepts_limit_bounds(client: httpx.AsyncClient):
    await create(client, "hero", payloads.hero())

    assert (await list_page(client, "hero", limit=1))["limit"] == 1
    assert (await list_page(client, "hero", limit=100))["limit"] == 100


# -- update ----------------------------------------------------------------------------------


async def test_put_replaces_the_hero_and_resets_omitted_optional_fields(
    client: httpx.AsyncClient,
):
    hero = await create(client, "hero", payloads.hero())
    replacement = payloads.minimal_hero(name="Bolt", language="ru")

    response = await client.put(url("hero", hero["id"]), json=replacement)

    assert response.status_code == 200
    replaced = response.json()
    assert {name: replaced[name] for name in replacement} == replacement
    assert replaced["appearance"] == ""
    assert replaced["personality_traits"] == []
    assert replaced["interests"] == []
    assert replaced["strengths"] == []
    assert replaced["version"] == 2
    assert replaced["created_at"] == hero["created_at"]
    assert await fetch(client, "hero", hero["id"]) == replaced


async def test_patch_changes_only_the_sent_fields(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())

    response = await client.patch(url("hero", hero["id"]), json={"age": 10, "interests": []})

    assert response.status_code == 200
    patched = response.json()
    assert patched == {
        **hero,
        "age": 10,
        "interests": [],
        "version": 2,
        "updated_at": patched["updated_at"],
    }
    assert parse_timestamp(patched["updated_at"]) >= parse_timestamp(hero["updated_at"])
    assert await fetch(client, "hero", hero["id"]) == patched


async def test_every_change_increments_the_version(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())
    hero_url = url("hero", hero["id"])

    versions = [hero["version"]]
    for name in ("A", "B", "C"):
        versions.append((await client.patch(hero_url, json={"name": name})).json()["version"])
    versions.append((await client.put(hero_url, json=payloads.hero())).json()["version"])

    assert versions == [1, 2, 3, 4, 5]
    assert (await fetch(client, "hero", hero["id"]))["version"] == 5


async def test_patch_that_changes_nothing_keeps_the_version(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())

    same_values = await client.patch(
        url("hero", hero["id"]), json={"name": hero["name"], "age": hero["age"]}
    )
    empty = await client.patch(url("hero", hero["id"]), json={})

    assert same_values.status_code == 200
    assert same_values.json()["version"] == 1
    assert empty.status_code == 200
    assert empty.json()["version"] == 1
    assert empty.headers["ETag"] == f'"{hero["id"]}.1"'
    assert (await fetch(client, "hero", hero["id"]))["version"] == 1


@pytest.mark.parametrize(
    "field",
    ["name", "age", "gender", "language", "appearance", "personality_traits", "interests"],
)
async def test_patch_with_explicit_null_for_a_non_nullable_field_is_422(
    client: httpx.AsyncClient, field: str
):
    hero = await create(client, "hero", payloads.hero())

    response = await client.patch(url("hero", hero["id"]), json={field: None})

    assert response.status_code == 422
    assert names_field(response, field)
    assert await fetch(client, "hero", hero["id"]) == hero


async def test_update_moves_hero_between_language_lists(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero(language="en"))
    assert await list_ids(client, "hero", language="en") == [hero["id"]]
    assert await list_ids(client, "hero", language="ru") == []

    response = await client.patch(url("hero", hero["id"]), json={"language": "ru"})

    assert response.status_code == 200
    assert await list_ids(client, "hero", language="en") == []
    assert await list_ids(client, "hero", language="ru") == [hero["id"]]


async def test_rename_moves_hero_between_name_lists(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero(name="Luna"))
    assert await list_ids(client, "hero", name="Luna") == [hero["id"]]

    response = await client.put(url("hero", hero["id"]), json=payloads.hero(name="Selene"))

    assert response.status_code == 200
    assert await list_ids(client, "hero", name="Luna") == []
    assert await list_ids(client, "hero", name="Selene") == [hero["id"]]
    listed = (await list_page(client, "hero"))["items"]
    assert listed == [response.json()]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_of_an_unknown_hero_is_404(client: httpx.AsyncClient, method: str):
    response = await client.request(method, url("hero", payloads.MISSING_ID), json=payloads.hero())

    assert response.status_code == 404
    assert response.json()["detail"]
    assert await list_ids(client, "hero") == []


# -- delete ----------------------------------------------------------------------------------


async def test_delete_returns_204_and_the_hero_is_gone(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())
    kept = await create(client, "hero", payloads.hero(name="Kept"))
    assert (await list_page(client, "hero"))["total"] == 2

    response = await client.delete(url("hero", hero["id"]))

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url("hero", hero["id"]))).status_code == 404
    page = await list_page(client, "hero")
    assert [item["id"] for item in page["items"]] == [kept["id"]]
    assert page["total"] == 1
    assert await list_ids(client, "hero", name="Luna") == []


async def test_delete_of_an_unknown_hero_is_404(client: httpx.AsyncClient):
    response = await client.delete(url("hero", payloads.MISSING_ID))

    assert response.status_code == 404
    assert response.json()["detail"]


async def test_delete_twice_is_404_the_second_time(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())

    assert (await client.delete(url("hero", hero["id"]))).status_code == 204
    assert (await client.delete(url("hero", hero["id"]))).status_code == 404


# -- validation ------------------------------------------------------------------------------

INVALID_HERO_FIELDS = [
    ("nickname", "Lu"),
    ("gender", "dragon"),
    ("language", "fr"),
    ("age", -1),
    ("age", 1001),
    ("age", "old"),
    ("name", ""),
    ("name", "N" * 101),
    ("appearance", "a" * 2001),
    ("interests", [f"interest {i}" for i in range(21)]),
    ("strengths", ["strong", ""]),
    ("personality_traits", "brave"),
]
INVALID_HERO_IDS = [
    "unknown-field",
    "gender",
    "language",
    "age-negative",
    "age-1001",
    "age-text",
    "name-empty",
    "name-101",
    "appearance-2001",
    "21-interests",
    "empty-strength",
    "traits-not-a-list",
]


@pytest.mark.parametrize(("field", "value"), INVALID_HERO_FIELDS, ids=INVALID_HERO_IDS)
async def test_create_rejects_an_invalid_field_naming_it(
    client: httpx.AsyncClient, field: str, value: Any
):
    response = await client.post(url("hero"), json=payloads.hero(**{field: value}))

    assert response.status_code == 422
    assert names_field(response, field)
    assert await list_ids(client, "hero") == []


@pytest.mark.parametrize("field", ["name", "age", "gender", "language"])
async def test_create_without_a_required_field_is_422_naming_it(
    client: httpx.AsyncClient, field: str
):
    body = payloads.hero()
    del body[field]

    response = await client.post(url("hero"), json=body)

    assert response.status_code == 422
    assert names_field(response, field)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(
    ("field", "value"),
    [("nickname", "Lu"), ("age", 1001), ("gender", "dragon"), ("name", "N" * 101)],
    ids=["unknown-field", "age-1001", "gender", "name-101"],
)
async def test_updates_reject_an_invalid_field_and_change_nothing(
    client: httpx.AsyncClient, method: str, field: str, value: Any
):
    hero = await create(client, "hero", payloads.hero())
    body = payloads.hero(**{field: value}) if method == "PUT" else {field: value}

    response = await client.request(method, url("hero", hero["id"]), json=body)

    assert response.status_code == 422
    assert names_field(response, field)
    assert await fetch(client, "hero", hero["id"]) == hero
