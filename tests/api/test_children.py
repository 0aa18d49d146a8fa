"""Children: create, read, exact-match list filters, replace, patch, delete, validation."""

import uuid
from typing import Any

import httpx
import pytest

from tests.api import payloads
from tests.api.helpers import create, fetch, list_ids, list_page, names_field, url


async def test_create_returns_201_with_location_etag_and_the_child(client: httpx.AsyncClient):
    body = payloads.child()

    response = await client.post(url("child"), json=body)

    assert response.status_code == 201
    child = response.json()
    uuid.UUID(child["id"])
    assert child["version"] == 1
    assert {name: child[name] for name in body} == body
    assert child["created_at"].endswith("Z")
    assert child["updated_at"].endswith("Z")
    assert response.headers["Location"].endswith(url("child", child["id"]))
    assert response.headers["ETag"] == f'"{child["id"]}.1"'
    assert (await client.get(response.headers["Location"])).json() == child


async def test_create_without_optional_fields_gives_null_category_and_no_interests(
    client: httpx.AsyncClient,
):
    body = payloads.child()
    del body["age_category"], body["interests"]

    child = await create(client, "child", body)

    assert child["age_category"] is None
    assert child["interests"] == []


async def test_get_unknown_child_is_404_and_malformed_id_is_422(client: httpx.AsyncClient):
    missing = await client.get(url("child", payloads.MISSING_ID))
    malformed = await client.get(url("child", "42"))

    assert missing.status_code == 404
    assert missing.json()["detail"]
    assert malformed.status_code == 422


async def test_list_filters_by_name_exactly_and_case_sensitively(client: httpx.AsyncClient):
    mila = await create(client, "child", payloads.child(name="Mila"))
    for other in ("mila", "Milana", "Mil"):
        await create(client, "child", payloads.child(name=other))

    page = await list_page(client, "child", name="Mila")

    assert [item["id"] for item in page["items"]] == [mila["id"]]
    assert page["total"] == 1


async def test_list_filters_by_exact_age(client: httpx.AsyncClient):
    five = await create(client, "child", payloads.child(age=5))
    await create(client, "child", payloads.child(age=6))
    await create(client, "child", payloads.child(age=15))

    assert await list_ids(client, "child", age=5) == [five["id"]]
    assert await list_ids(client, "child", age=1) == []


async def test_list_filters_by_gender(client: httpx.AsyncClient):
    girl = await create(client, "child", payloads.child(gender="female"))
    boy = await create(client, "child", payloads.child(gender="male"))

    assert await list_ids(client, "child", gender="female") == [girl["id"]]
    assert await list_ids(client, "child", gender="male") == [boy["id"]]
    assert await list_ids(client, "child", gender="other") == []


async def test_list_filters_name_age_and_gender_combine(client: httpx.AsyncClient):
    wanted = await create(client, "child", payloads.child(name="Sam", age=7, gender="other"))
    await create(client, "child", payloads.child(name="Sam", age=7, gender="male"))
    await create(client, "child", payloads.child(name="Sam", age=8, gender="other"))
    await create(client, "child", payloads.child(name="Sasha", age=7, gender="other"))

    assert await list_ids(client, "child", name="Sam", age=7, gender="other") == [wanted["id"]]
    assert len(await list_ids(client, "child", name="Sam")) == 3
    assert len(await list_ids(client, "child", age=7)) == 3


async def test_list_is_ordered_newest_first(client: httpx.AsyncClient):
    created = [await create(client, "child", payloads.child(age=age)) for age in (3, 4, 5)]

    assert await list_ids(client, "child") == [child["id"] for child in reversed(created)]


@pytest.mark.parametrize(
    "params",
    [{"age": 0}, {"age": 18}, {"gender": "boy"}, {"limit": 101}, {"offset": -1}],
    ids=["age-0", "age-18", "gender", "limit-101", "offset-negative"],
)
async def test_list_rejects_bad_query_parameters_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any]
):
    response = await client.get(url("child"), params=params)

    assert response.status_code == 422
    assert names_field(response, next(iter(params)))


async def test_put_replaces_the_child_and_resets_omitted_optional_fields(
    client: httpx.AsyncClient,
):
    child = await create(client, "child", payloads.child())

    response = await client.put(
        url("child", child["id"]), json={"name": "Mila", "age": 6, "gender": "female"}
    )

    assert response.status_code == 200
    replaced = response.json()
    assert replaced["age"] == 6
    assert replaced["age_category"] is None
    assert replaced["interests"] == []
    assert replaced["version"] == 2
    assert await fetch(client, "child", child["id"]) == replaced


async def test_patch_changes_only_the_sent_fields(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())

    response = await client.patch(url("child", child["id"]), json={"age_category": "5-7"})

    assert response.status_code == 200
    patched = response.json()
    assert patched == {
        **child,
        "age_category": "5-7",
        "version": 2,
        "updated_at": patched["updated_at"],
    }


async def test_patch_can_null_the_nullable_age_category(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())

    response = await client.patch(url("child", child["id"]), json={"age_category": None})

    assert response.status_code == 200
    assert response.json()["age_category"] is None
    assert response.json()["version"] == 2


@pytest.mark.parametrize("field", ["name", "age", "gender", "interests"])
async def test_patch_with_explicit_null_for_a_non_nullable_field_is_422(
    client: httpx.AsyncClient, field: str
):
    child = await create(client, "child", payloads.child())

    response = await client.patch(url("child", child["id"]), json={field: None})

    assert response.status_code == 422
    assert names_field(response, field)
    assert await fetch(client, "child", child["id"]) == child


async def test_patch_that_changes_nothing_keeps_the_version(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())

    response = await client.patch(url("child", child["id"]), json=payloads.child())

    assert response.status_code == 200
    assert response.json() == child


async def test_update_moves_child_between_age_lists(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(age=5))
    assert await list_ids(client, "child", age=5) == [child["id"]]

    response = await client.patch(url("child", child["id"]), json={"age": 6})

    assert response.status_code == 200
    assert await list_ids(client, "child", age=5) == []
    assert await list_ids(client, "child", age=6) == [child["id"]]
    assert await list_ids(client, "child", name="Mila", age=6, gender="female") == [child["id"]]


async def test_update_moves_child_between_gender_and_name_lists(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(name="Mila", gender="female"))
    assert await list_ids(client, "child", gender="female") == [child["id"]]

    response = await client.patch(url("child", child["id"]), json={"name": "Max", "gender": "male"})

    assert response.status_code == 200
    assert await list_ids(client, "child", gender="female") == []
    assert await list_ids(client, "child", name="Mila") == []
    assert await list_ids(client, "child", gender="male") == [child["id"]]
    assert await list_ids(client, "child", name="Max") == [child["id"]]


async def test_delete_returns_204_and_the_child_is_gone(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())

    response = await client.delete(url("child", child["id"]))

    assert response.status_code == 204
    assert (await client.get(url("child", child["id"]))).status_code == 404
    assert await list_ids(client, "child") == []
    assert await list_ids(client, "child", name="Mila") == []
    assert (await client.delete(url("child", child["id"]))).status_code == 404


INVALID_CHILD_FIELDS = [
    ("school", "No. 5"),
    ("age", 0),
    ("age", 18),
    ("gender", "girl"),
    ("name", ""),
    ("name", "M" * 101),
    ("age_category", "toddler"),
    ("interests", [f"interest {i}" for i in range(21)]),
    ("interests", [""]),
]
INVALID_CHILD_IDS = [
    "unknown-field",
    "age-0",
    "age-18",
    "gender",
    "name-empty",
    "name-101",
    "age-category-pattern",
    "21-interests",
    "empty-interest",
]


@pytest.mark.parametrize(("field", "value"), INVALID_CHILD_FIELDS, ids=INVALID_CHILD_IDS)
async def test_create_rejects_an_invalid_field_naming_it(
    client: httpx.AsyncClient, field: str, value: Any
):
    response = await client.post(url("child"), json=payloads.child(**{field: value}))

    assert response.status_code == 422
    assert names_field(response, field)
    assert await list_ids(client, "child") == []


@pytest.mark.parametrize("age", [1, 17])
async def test_create_accepts_the_age_bounds(client: httpx.AsyncClient, age: int):
    child = await create(client, "child", payloads.child(age=age))

    assert child["age"] == age
    assert await list_ids(client, "child", age=age) == [child["id"]]
