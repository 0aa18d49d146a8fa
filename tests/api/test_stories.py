"""Stories: the child snapshot, references to children and heroes, rating, filters, validation."""

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

SNAPSHOT = ("child_name", "age_category", "child_gender", "child_interests")


def snapshot_of(story: dict[str, Any]) -> dict[str, Any]:
    return {name: story[name] for name in SNAPSHOT}


def expected_snapshot(child: dict[str, Any]) -> dict[str, Any]:
    return {
        "child_name": child["name"],
        "age_category": child["age_category"],
        "child_gender": child["gender"],
        "child_interests": child["interests"],
    }


# -- create and read -------------------------------------------------------------------------


async def test_create_returns_201_with_location_etag_and_the_story(client: httpx.AsyncClient):
    body = payloads.story()

    response = await client.post(url("story"), json=body)

    assert response.status_code == 201
    story = response.json()
    assert {name: story[name] for name in body} == body
    assert story["version"] == 1
    assert story["child_id"] is None
    assert story["hero_id"] is None
    assert story["rating"] is None
    assert story["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(url("story", story["id"]))
    assert response.headers["ETag"] == f'"{story["id"]}.1"'
    assert await fetch(client, "story", story["id"]) == story


async def test_create_stores_audio_file_and_generation_details(client: httpx.AsyncClient):
    extras = {
        "audio_file": {"url": "https://audio.example/1.mp3", "provider": "tts", "metadata": {}},
        "model_used": "storyteller-1",
        "full_response": {"choices": [{"text": "..."}]},
        "generation_info": {"tokens": 321},
        "rating": 8,
    }

    story = await create(client, "story", payloads.story(**extras))

    assert {name: story[name] for name in extras} == extras
    assert await fetch(client, "story", story["id"]) == story


async def test_get_unknown_story_is_404_and_malformed_id_is_422(client: httpx.AsyncClient):
    missing = await client.get(url("story", payloads.MISSING_ID))
    malformed = await client.get(url("story", "story-1"))

    assert missing.status_code == 404
    assert missing.json()["detail"]
    assert malformed.status_code == 422


# -- the child snapshot ----------------------------------------------------------------------


async def test_story_with_child_id_copies_the_childs_fields(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())

    story = await create(client, "story", payloads.story_of_child(child["id"]))

    assert story["child_id"] == child["id"]
    assert snapshot_of(story) == expected_snapshot(child)
    assert snapshot_of(await fetch(client, "story", story["id"])) == expected_snapshot(child)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("child_name", "Someone"),
        ("age_category", "3-5"),
        ("child_gender", "male"),
        ("child_interests", ["cars"]),
    ],
)
async def test_sending_child_fields_together_with_child_id_is_422(
    client: httpx.AsyncClient, field: str, value: Any
):
    child = await create(client, "child", payloads.child())

    response = await client.post(
        url("story"), json=payloads.story_of_child(child["id"], **{field: value})
    )

    assert response.status_code == 422
    assert names_field(response, field)
    assert await list_ids(client, "story") == []


async def test_put_with_child_id_and_child_fields_is_422(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child())
    story = await create(client, "story", payloads.story())

    response = await client.put(
        url("story", story["id"]), json=payloads.story(child_id=child["id"])
    )

    assert response.status_code == 422
    assert names_field(response, "child_name")
    assert await fetch(client, "story", story["id"]) == story


async def test_patching_child_fields_of_a_story_that_has_a_child_is_422(
    client: httpx.AsyncClient,
):
    child = await create(client, "child", payloads.child())
    story = await create(client, "story", payloads.story_of_child(child["id"]))

    response = await client.patch(url("story", story["id"]), json={"child_name": "Someone"})

    assert response.status_code == 422
    assert names_field(response, "child_name")
    assert await fetch(client, "story", story["id"]) == story


async def test_story_with_an_unknown_child_is_422_naming_child_id(client: httpx.AsyncClient):
    response = await client.post(url("story"), json=payloads.story_of_child(payloads.MISSING_ID))

    assert response.status_code == 422
    assert names_field(response, "child_id")
    assert await list_ids(client, "story") == []


async def test_story_with_an_unknown_hero_is_422_naming_hero_id(client: httpx.AsyncClient):
    response = await client.post(url("story"), json=payloads.story(hero_id=payloads.MISSING_ID))

    assert response.status_code == 422
    assert names_field(response, "hero_id")
    assert await list_ids(client, "story") == []


async def test_patch_to_an_unknown_child_or_hero_is_422_and_changes_nothing(
    client: httpx.AsyncClient,
):
    story = await create(client, "story", payloads.story())
    story_url = url("story", story["id"])

    to_child = await client.patch(story_url, json={"child_id": payloads.MISSING_ID})
    to_hero = await client.patch(story_url, json={"hero_id": payloads.MISSING_ID})

    assert to_child.status_code == 422
    assert names_field(to_child, "child_id")
    assert to_hero.status_code == 422
    assert names_field(to_hero, "hero_id")
    assert await fetch(client, "story", story["id"]) == story


async def test_story_with_a_hero_keeps_the_hero_id(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())

    story = await create(client, "story", payloads.story(hero_id=hero["id"]))

    assert story["hero_id"] == hero["id"]


@pytest.mark.parametrize(
    ("change", "snapshot_field"),
    [
        ({"name": "Milena"}, "child_name"),
        ({"gender": "other"}, "child_gender"),
        ({"age_category": "6-8"}, "age_category"),
        ({"interests": ["volcanoes"]}, "child_interests"),
    ],
    ids=["name", "gender", "age_category", "interests"],
)
async def test_updating_a_child_updates_its_stories_and_bumps_their_version(
    client: httpx.AsyncClient, change: dict[str, Any], snapshot_field: str
):
    child = await create(client, "child", payloads.child())
    stories = [
        await create(client, "story", payloads.story_of_child(child["id"], title=f"Part {i}"))
        for i in range(2)
    ]
    unrelated = await create(client, "story", payloads.story())

    response = await client.patch(url("child", child["id"]), json=change)

    assert response.status_code == 200
    updated_child = response.json()
    for story in stories:
        current = await fetch(client, "story", story["id"])
        assert snapshot_of(current) == expected_snapshot(updated_child)
        assert current[snapshot_field] == next(iter(change.values()))
        assert current["version"] == story["version"] + 1
        assert parse_timestamp(current["updated_at"]) >= parse_timestamp(story["updated_at"])
    assert await fetch(client, "story", unrelated["id"]) == unrelated
    listed = {item["id"]: item for item in (await list_page(client, "story"))["items"]}
    for story in stories:
        assert snapshot_of(listed[story["id"]]) == expected_snapshot(updated_child)


async def test_renaming_a_child_moves_its_stories_between_child_name_lists(
    client: httpx.AsyncClient,
):
    child = await create(client, "child", payloads.child(name="Mila"))
    story = await create(client, "story", payloads.story_of_child(child["id"]))
    assert await list_ids(client, "story", child_name="Mila") == [story["id"]]

    response = await client.put(url("child", child["id"]), json=payloads.child(name="Milena"))

    assert response.status_code == 200
    assert await list_ids(client, "story", child_name="Mila") == []
    assert await list_ids(client, "story", child_name="Milena") == [story["id"]]


async def test_updating_a_childs_age_leaves_its_stories_untouched(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(age=5))
    story = await create(client, "story", payloads.story_of_child(child["id"]))

    response = await client.patch(url("child", child["id"]), json={"age": 6})

    assert response.status_code == 200
    assert await fetch(client, "story", story["id"]) == story


async def test_patch_moving_a_story_to_another_child_copies_that_childs_fields(
    client: httpx.AsyncClient,
):
    first = await create(client, "child", payloads.child(name="Mila"))
    second = await create(
        client, "child", payloads.child(name="Max", gender="male", age_category="9-12")
    )
    story = await create(client, "story", payloads.story_of_child(first["id"]))

    response = await client.patch(url("story", story["id"]), json={"child_id": second["id"]})

    assert response.status_code == 200
    moved = response.json()
    assert moved["child_id"] == second["id"]
    assert snapshot_of(moved) == expected_snapshot(second)
    assert moved["version"] == 2
    assert await list_ids(client, "story", child_id=first["id"]) == []
    assert await list_ids(client, "story", child_id=second["id"]) == [story["id"]]
    assert await list_ids(client, "story", child_name="Max") == [story["id"]]


async def test_deleting_a_child_deletes_its_stories(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(name="Mila"))
    doomed = [
        await create(client, "story", payloads.story_of_child(child["id"], title=f"Part {i}"))
        for i in range(2)
    ]
    survivor = await create(client, "story", payloads.story(child_name="Mila"))
    assert len(await list_ids(client, "story", child_id=child["id"])) == 2

    response = await client.delete(url("child", child["id"]))

    assert response.status_code == 204
    for story in doomed:
        assert (await client.get(url("story", story["id"]))).status_code == 404
    page = await list_page(client, "story")
    assert [item["id"] for item in page["items"]] == [survivor["id"]]
    assert page["total"] == 1
    assert await list_ids(client, "story", child_id=child["id"]) == []
    assert await list_ids(client, "story", child_name="Mila") == [survivor["id"]]
    assert await list_ids(client, "story", language="en") == [survivor["id"]]


async def test_deleting_a_hero_sets_hero_id_of_its_stories_to_null(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())
    story = await create(client, "story", payloads.story(hero_id=hero["id"]))

    response = await client.delete(url("hero", hero["id"]))

    assert response.status_code == 204
    current = await fetch(client, "story", story["id"])
    assert current["hero_id"] is None
    assert current["version"] == story["version"] + 1
    assert {**current, "hero_id": hero["id"]} == {
        **story,
        "version": current["version"],
        "updated_at": current["updated_at"],
    }
    assert (await list_page(client, "story"))["items"] == [current]


# -- rating ----------------------------------------------------------------------------------


async def test_rating_a_story_sets_the_rating_and_bumps_the_version(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())

    response = await client.put(f"{url('story', story['id'])}/rating", json=payloads.rating(7))

    assert response.status_code == 200
    rated = response.json()
    assert rated["rating"] == 7
    assert rated["version"] == 2
    assert response.headers["ETag"] == f'"{story["id"]}.2"'
    assert await fetch(client, "story", story["id"]) == rated


@pytest.mark.parametrize("value", [1, 10])
async def test_rating_accepts_the_bounds(client: httpx.AsyncClient, value: int):
    story = await create(client, "story", payloads.story())

    response = await client.put(f"{url('story', story['id'])}/rating", json=payloads.rating(value))

    assert response.status_code == 200
    assert response.json()["rating"] == value


@pytest.mark.parametrize(
    "body",
    [payloads.rating(0), payloads.rating(11), payloads.rating("good"), payloads.rating(None), {}],
    ids=["zero", "eleven", "text", "null", "missing"],
)
async def test_rating_out_of_range_or_missing_is_422(
    client: httpx.AsyncClient, body: dict[str, Any]
):
    story = await create(client, "story", payloads.story())

    response = await client.put(f"{url('story', story['id'])}/rating", json=body)

    assert response.status_code == 422
    assert names_field(response, "rating")
    assert await fetch(client, "story", story["id"]) == story


async def test_rating_rejects_unknown_fields(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())

    response = await client.put(
        f"{url('story', story['id'])}/rating", json={**payloads.rating(5), "stars": 5}
    )

    assert response.status_code == 422
    assert names_field(response, "stars")


async def test_rating_an_unknown_story_is_404(client: httpx.AsyncClient):
    response = await client.put(f"{url('story', payloads.MISSING_ID)}/rating", json={"rating": 5})

    assert response.status_code == 404


# -- list filters ----------------------------------------------------------------------------


async def test_list_filters_by_child_id(client: httpx.AsyncClient):
    mila = await create(client, "child", payloads.child(name="Mila"))
    max_ = await create(client, "child", payloads.child(name="Max"))
    of_mila = await create(client, "story", payloads.story_of_child(mila["id"]))
    of_max = await create(client, "story", payloads.story_of_child(max_["id"]))

    assert await list_ids(client, "story", child_id=mila["id"]) == [of_mila["id"]]
    assert await list_ids(client, "story", child_id=max_["id"]) == [of_max["id"]]
    assert await list_ids(client, "story", child_id=payloads.MISSING_ID) == []


async def test_list_child_name_filter_is_exact_and_covers_stories_without_a_child(
    client: httpx.AsyncClient,
):
    child = await create(client, "child", payloads.child(name="Ivan"))
    stored = await create(client, "story", payloads.story_of_child(child["id"]))
    free = await create(client, "story", payloads.story(child_name="Ivan"))
    await create(client, "story", payloads.story(child_name="ivan"))
    await create(client, "story", payloads.story(child_name="Ivana"))

    assert set(await list_ids(client, "story", child_name="Ivan")) == {stored["id"], free["id"]}


async def test_list_filters_by_language(client: httpx.AsyncClient):
    english = await create(client, "story", payloads.story(language="en"))
    russian = await create(client, "story", payloads.story(language="ru"))

    assert await list_ids(client, "story", language="en") == [english["id"]]
    assert await list_ids(client, "story", language="ru") == [russian["id"]]


async def test_list_filters_combine(client: httpx.AsyncClient):
    child = await create(client, "child", payloads.child(name="Ivan"))
    wanted = await create(client, "story", payloads.story_of_child(child["id"], language="ru"))
    await create(client, "story", payloads.story_of_child(child["id"], language="en"))
    await create(client, "story", payloads.story(child_name="Ivan", language="ru"))

    assert await list_ids(
        client, "story", child_id=child["id"], child_name="Ivan", language="ru"
    ) == [wanted["id"]]
    assert len(await list_ids(client, "story", child_name="Ivan", language="ru")) == 2
    assert await list_ids(client, "story", child_id=child["id"], child_name="Other") == []


async def test_update_moves_story_between_language_lists(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story(language="en"))
    assert await list_ids(client, "story", language="en") == [story["id"]]

    response = await client.patch(url("story", story["id"]), json={"language": "ru"})

    assert response.status_code == 200
    assert await list_ids(client, "story", language="en") == []
    assert await list_ids(client, "story", language="ru") == [story["id"]]


@pytest.mark.parametrize(
    "params",
    [{"child_id": "nobody"}, {"language": "de"}, {"limit": 0}, {"offset": -5}],
    ids=["child-id-not-uuid", "language", "limit-0", "offset-negative"],
)
async def test_list_rejects_bad_query_parameters_naming_them(
    client: httpx.AsyncClient, params: dict[str, Any]
):
    response = await client.get(url("story"), params=params)

    assert response.status_code == 422
    assert names_field(response, next(iter(params)))


# -- update ----------------------------------------------------------------------------------


async def test_put_replaces_the_story_and_resets_omitted_optional_fields(
    client: httpx.AsyncClient,
):
    hero = await create(client, "hero", payloads.hero())
    story = await create(client, "story", payloads.story(hero_id=hero["id"], rating=9))

    response = await client.put(
        url("story", story["id"]),
        json={"title": "New", "content": "Shorter.", "language": "ru"},
    )

    assert response.status_code == 200
    replaced = response.json()
    assert (replaced["title"], replaced["content"], replaced["language"]) == (
        "New",
        "Shorter.",
        "ru",
    )
    assert replaced["moral"] == ""
    for name in ("hero_id", "story_length", "rating", *SNAPSHOT):
        assert replaced[name] is None, name
    assert replaced["version"] == 2
    assert await fetch(client, "story", story["id"]) == replaced


async def test_patch_changes_only_the_sent_fields(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())

    response = await client.patch(url("story", story["id"]), json={"title": "Another night"})

    assert response.status_code == 200
    patched = response.json()
    assert patched == {
        **story,
        "title": "Another night",
        "version": 2,
        "updated_at": patched["updated_at"],
    }


async def test_patch_can_null_a_nullable_field(client: httpx.AsyncClient):
    hero = await create(client, "hero", payloads.hero())
    story = await create(client, "story", payloads.story(hero_id=hero["id"]))

    response = await client.patch(url("story", story["id"]), json={"hero_id": None})

    assert response.status_code == 200
    assert response.json()["hero_id"] is None


@pytest.mark.parametrize("field", ["title", "content", "moral", "language"])
async def test_patch_with_explicit_null_for_a_non_nullable_field_is_422(
    client: httpx.AsyncClient, field: str
):
    story = await create(client, "story", payloads.story())

    response = await client.patch(url("story", story["id"]), json={field: None})

    assert response.status_code == 422
    assert names_field(response, field)
    assert await fetch(client, "story", story["id"]) == story


async def test_delete_returns_204_and_the_story_is_gone(client: httpx.AsyncClient):
    story = await create(client, "story", payloads.story())

    response = await client.delete(url("story", story["id"]))

    assert response.status_code == 204
    assert (await client.get(url("story", story["id"]))).status_code == 404
    assert await list_ids(client, "story") == []
    assert (await client.delete(url("story", story["id"]))).status_code == 404


# -- validation ------------------------------------------------------------------------------

INVALID_STORY_FIELDS = [
    ("author", "me"),
    ("language", "es"),
    ("child_gender", "unknown"),
    ("title", ""),
    ("title", "T" * 301),
    ("content", "c" * 100_001),
    ("story_length", 0),
    ("story_length", 61),
    ("rating", 0),
    ("rating", 11),
    ("child_interests", [f"interest {i}" for i in range(21)]),
    ("child_interests", ["space", ""]),
    ("child_id", "not-a-uuid"),
]
INVALID_STORY_IDS = [
    "unknown-field",
    "language",
    "child-gender",
    "title-empty",
    "title-301",
    "content-100001",
    "length-0",
    "length-61",
    "rating-0",
    "rating-11",
    "21-interests",
    "empty-interest",
    "child-id-not-uuid",
]


@pytest.mark.parametrize(("field", "value"), INVALID_STORY_FIELDS, ids=INVALID_STORY_IDS)
async def test_create_rejects_an_invalid_field_naming_it(
    client: httpx.AsyncClient, field: str, value: Any
):
    response = await client.post(url("story"), json=payloads.story(**{field: value}))

    assert response.status_code == 422
    assert names_field(response, field)
    assert await list_ids(client, "story") == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": "T" * 300},
        {"content": "c" * 100_000},
        {"story_length": 1},
        {"story_length": 60},
        {"child_interests": [f"interest {i}" for i in range(20)]},
    ],
    ids=["title-300", "content-100000", "length-1", "length-60", "20-interests"],
)
async def test_create_accepts_values_at_the_limits(
    client: httpx.AsyncClient, overrides: dict[str, Any]
):
    story = await create(client, "story", payloads.story(**overrides))

    assert {name: story[name] for name in overrides} == overrides
