"""Every row of the invalidation rules derived from the entity declarations, over HTTP, on
SQLite and PostgreSQL.

Each test warms the reads a write must invalidate (and checks that the re-read is a cache
hit, so the stale value really is in Redis), performs the write, and then checks that every
affected read shows the new data - and, for lists the row left, no longer contains it.
`Api.page`/`Api.entry` re-read each answer and assert the re-read is a hit again, so caching
also resumes correctly after the invalidation.
"""

from collections.abc import Callable
from typing import Any

import pytest

from app.cache.invalidation import invalidation_rules
from app.entities import ENTITIES
from tests.api import payloads
from tests.cache.conftest import Api

INVALIDATION_RULES = invalidation_rules(ENTITIES)
SNAPSHOT = ("child_name", "age_category", "child_gender", "child_interests")


def snapshot(story: dict[str, Any]) -> dict[str, Any]:
    return {name: story[name] for name in SNAPSHOT}


# -- heroes --------------------------------------------------------------------------------
async def test_hero_create_appears_in_every_hero_list(api_any_db: Api) -> None:
    api = api_any_db
    await api.create("hero", payloads.hero(name="Existing", language="en"))
    lists: list[dict[str, Any]] = [
        {},
        {"language": "en"},
        {"name": "Nova"},
        {"name": "Nova", "language": "en"},
        {"limit": 1},
    ]
    before = [await api.page("hero", **params) for params in lists]
    assert [page["total"] for page in before] == [1, 1, 0, 0, 1]

    nova = await api.create("hero", payloads.hero(name="Nova", language="en"))

    for params in lists:
        page = await api.page("hero", **params)
        assert nova["id"] in [item["id"] for item in page["items"]], params
    assert (await api.page("hero"))["total"] == 2
    assert (await api.page("hero", name="Nova"))["total"] == 1
    assert await api.ids("hero", language="ru") == []


async def test_hero_update_moves_hero_between_language_and_name_lists(api_any_db: Api) -> None:
    api = api_any_db
    hero = await api.create("hero", payloads.hero(name="Old Name", language="en"))
    hero_id = hero["id"]
    assert (await api.entry("hero", hero_id))["name"] == "Old Name"
    assert hero_id in await api.ids("hero")
    assert hero_id in await api.ids("hero", language="en")
    assert hero_id not in await api.ids("hero", language="ru")
    assert hero_id in await api.ids("hero", name="Old Name")
    assert hero_id not in await api.ids("hero", name="New Name")
    assert hero_id in await api.ids("hero", name="Old Name", language="en")

    updated = await api.patch("hero", hero_id, {"name": "New Name", "language": "ru"})
    assert updated["version"] == hero["version"] + 1

    fresh = await api.entry("hero", hero_id)
    assert (fresh["name"], fresh["language"], fresh["version"]) == ("New Name", "ru", 2)
    assert (await api.items("hero"))[hero_id]["name"] == "New Name"
    assert hero_id not in await api.ids("hero", language="en")
    assert (await api.items("hero", language="ru"))[hero_id]["name"] == "New Name"
    assert hero_id not in await api.ids("hero", name="Old Name")
    assert hero_id not in await api.ids("hero", name="Old Name", language="en")
    assert await api.ids("hero", name="New Name") == [hero_id]


async def test_hero_delete_removes_it_and_detaches_it_from_stories(api_any_db: Api) -> None:
    api = api_any_db
    hero = await api.create("hero", payloads.hero(name="Gone", language="ru"))
    child = await api.create("child", payloads.child())
    told = await api.create("story", payloads.story(hero_id=hero["id"], language="ru"))
    childs = await api.create("story", payloads.story_of_child(child["id"], hero_id=hero["id"]))
    stories = (told["id"], childs["id"])

    assert (await api.entry("hero", hero["id"]))["name"] == "Gone"
    for params in ({}, {"language": "ru"}, {"name": "Gone"}):
        assert hero["id"] in await api.ids("hero", **params)
    for story_id in stories:
        assert (await api.entry("story", story_id))["hero_id"] == hero["id"]
    story_lists: list[dict[str, Any]] = [
        {},
        {"language": "ru"},
        {"language": "en"},
        {"child_id": child["id"]},
        {"child_name": child["name"]},
    ]
    for params in story_lists:
        assert all(
            s["hero_id"] == hero["id"] for s in (await api.items("story", **params)).values()
        )

    await api.delete("hero", hero["id"])

    assert await api.entry_status("hero", hero["id"]) == 404
    for params in ({}, {"language": "ru"}, {"name": "Gone"}):
        assert hero["id"] not in await api.ids("hero", **params)
    for story_id in stories:
        assert (await api.entry("story", story_id))["hero_id"] is None
    listed: dict[str, dict[str, Any]] = {}
    for params in story_lists:
        items = await api.items("story", **params)
        assert items, params
        listed.update(items)
        assert all(s["hero_id"] is None for s in items.values()), params
    assert set(listed) == set(stories)


# -- children ------------------------------------------------------------------------------
async def test_child_create_appears_in_name_exact_and_unfiltered_lists(api_any_db: Api) -> None:
    api = api_any_db
    await api.create("child", payloads.child(name="Other"))
    lists: list[dict[str, Any]] = [
        {},
        {"name": "Zed"},
        {"name": "Zed", "age": 6, "gender": "male"},
        {"name": "Zed", "age": 6},
        {"age": 6},
        {"gender": "male"},
    ]
    before = [await api.page("child", **params) for params in lists]
    assert [page["total"] for page in before] == [1, 0, 0, 0, 0, 0]

    zed = await api.create("child", payloads.child(name="Zed", age=6, gender="male"))

    for params in lists:
        assert zed["id"] in await api.ids("child", **params), params
    assert await api.ids("child", name="Zed", age=6, gender="female") == []


async def test_child_update_follows_into_child_lists_and_its_stories(api_any_db: Api) -> None:
    api = api_any_db
    child = await api.create("child", payloads.child(name="Alice", age=5, gender="female"))
    child_id = child["id"]
    en = await api.create("story", payloads.story_of_child(child_id, language="en"))
    ru = await api.create("story", payloads.story_of_child(child_id, language="ru"))
    other = await api.create("story", payloads.story(child_name="Somebody", language="en"))
    stories = (en["id"], ru["id"])

    old_exact = {"name": "Alice", "age": 5, "gender": "female"}
    new_exact = {"name": "Bella", "age": 6, "gender": "female"}
    assert (await api.entry("child", child_id))["name"] == "Alice"
    assert child_id in await api.ids("child")
    assert child_id in await api.ids("child", name="Alice")
    assert child_id not in await api.ids("child", name="Bella")
    assert child_id in await api.ids("child", **old_exact)
    assert child_id not in await api.ids("child", **new_exact)
    assert child_id in await api.ids("child", age=5)
    for story_id in stories:
        assert (await api.entry("story", story_id))["child_name"] == "Alice"
    story_lists: list[dict[str, Any]] = [
        {},
        {"child_id": child_id},
        {"child_name": "Alice"},
        {"child_name": "Bella"},
        {"language": "en"},
        {"language": "ru"},
        {"child_name": "Alice", "language": "ru"},
    ]
    for params in story_lists:
        await api.page("story", **params)

    await api.patch(
        "child",
        child_id,
        {"name": "Bella", "age": 6, "age_category": "6-8", "interests": ["dragons"]},
    )
    expected = {
        "child_name": "Bella",
        "age_category": "6-8",
        "child_gender": "female",
        "child_interests": ["dragons"],
    }

    fresh = await api.entry("child", child_id)
    assert (fresh["name"], fresh["age"], fresh["interests"]) == ("Bella", 6, ["dragons"])
    assert (await api.items("child"))[child_id]["name"] == "Bella"
    assert child_id not in await api.ids("child", name="Alice")
    assert child_id in await api.ids("child", name="Bella")
    assert child_id not in await api.ids("child", **old_exact)
    assert await api.ids("child", **new_exact) == [child_id]
    assert child_id not in await api.ids("child", age=5)
    assert child_id in await api.ids("child", age=6)

    for story_id in stories:
        assert snapshot(await api.entry("story", story_id)) == expected
    assert set(await api.ids("story", child_id=child_id)) == set(stories)
    assert await api.ids("story", child_name="Alice") == []
    assert await api.ids("story", child_name="Alice", language="ru") == []
    assert set(await api.ids("story", child_name="Bella")) == set(stories)
    for params in story_lists:
        for story_id, story in (await api.items("story", **params)).items():
            if story_id in stories:
                assert snapshot(story) == expected, params
    assert en["id"] in await api.ids("story", language="en")
    assert ru["id"] in await api.ids("story", language="ru")
    assert (await api.entry("story", other["id"]))["child_name"] == "Somebody"


async def test_child_delete_deletes_its_stories_everywhere(api_any_db: Api) -> None:
    api = api_any_db
    child = await api.create("child", payloads.child(name="Alice"))
    keeper = await api.create("child", payloads.child(name="Keeper"))
    child_id = child["id"]
    mine = [
        (await api.create("story", payloads.story_of_child(child_id, language=lang)))["id"]
        for lang in ("en", "ru")
    ]
    kept = (await api.create("story", payloads.story_of_child(keeper["id"], language="en")))["id"]

    assert (await api.entry("child", child_id))["name"] == "Alice"
    for params in ({}, {"name": "Alice"}, {"name": "Alice", "age": 5, "gender": "female"}):
        assert child_id in await api.ids("child", **params)
    for story_id in mine:
        assert (await api.entry("story", story_id))["child_id"] == child_id
    story_lists: list[dict[str, Any]] = [
        {},
        {"child_id": child_id},
        {"child_name": "Alice"},
        {"language": "en"},
        {"language": "ru"},
    ]
    for params in story_lists:
        assert set(mine) & set(await api.ids("story", **params)), params

    await api.delete("child", child_id)

    assert await api.entry_status("child", child_id) == 404
    for params in ({}, {"name": "Alice"}, {"name": "Alice", "age": 5, "gender": "female"}):
        assert child_id not in await api.ids("child", **params)
    for story_id in mine:
        assert await api.entry_status("story", story_id) == 404
    for params in story_lists:
        assert not set(mine) & set(await api.ids("story", **params)), params
    assert await api.ids("story") == [kept]
    assert await api.ids("story", language="en") == [kept]
    assert (await api.entry("story", kept))["child_name"] == "Keeper"
    assert await api.ids("child") == [keeper["id"]]


# -- stories -------------------------------------------------------------------------------
async def test_story_create_appears_in_the_lists_of_its_child_and_language(
    api_any_db: Api,
) -> None:
    api = api_any_db
    child = await api.create("child", payloads.child(name="Alice"))
    await api.create("story", payloads.story(language="ru", child_name="Boris"))
    lists: list[dict[str, Any]] = [
        {},
        {"child_id": child["id"]},
        {"child_name": "Alice"},
        {"language": "en"},
        {"child_name": "Alice", "language": "en"},
    ]
    before = [await api.page("story", **params) for params in lists]
    assert [page["total"] for page in before] == [1, 0, 0, 0, 0]

    story = await api.create("story", payloads.story_of_child(child["id"], language="en"))

    for params in lists:
        items = await api.items("story", **params)
        assert story["id"] in items, params
        assert items[story["id"]]["child_name"] == "Alice"
    assert story["id"] not in await api.ids("story", language="ru")


async def test_story_update_moves_it_between_child_and_language_lists(api_any_db: Api) -> None:
    api = api_any_db
    alice = await api.create("child", payloads.child(name="Alice"))
    dan = await api.create("child", payloads.child(name="Dan", gender="male"))
    story = await api.create("story", payloads.story_of_child(alice["id"], language="en"))
    story_id = story["id"]

    assert (await api.entry("story", story_id))["title"] == "The Moon Lantern"
    old_lists: list[dict[str, Any]] = [
        {"child_id": alice["id"]},
        {"child_name": "Alice"},
        {"language": "en"},
        {"child_name": "Alice", "language": "en"},
    ]
    new_lists: list[dict[str, Any]] = [
        {"child_id": dan["id"]},
        {"child_name": "Dan"},
        {"language": "ru"},
        {"child_name": "Dan", "language": "ru"},
    ]
    for params in old_lists:
        assert story_id in await api.ids("story", **params)
    for params in new_lists:
        assert story_id not in await api.ids("story", **params)
    assert story_id in await api.ids("story")

    await api.patch(
        "story", story_id, {"child_id": dan["id"], "language": "ru", "title": "The Sun Kite"}
    )

    fresh = await api.entry("story", story_id)
    assert (fresh["title"], fresh["language"], fresh["child_id"], fresh["child_name"]) == (
        "The Sun Kite",
        "ru",
        dan["id"],
        "Dan",
    )
    for params in old_lists:
        assert story_id not in await api.ids("story", **params), params
    for params in new_lists:
        items = await api.items("story", **params)
        assert items[story_id]["title"] == "The Sun Kite", params
    assert (await api.items("story"))[story_id]["title"] == "The Sun Kite"


async def test_story_rating_shows_in_the_story_and_its_lists(api_any_db: Api) -> None:
    api = api_any_db
    child = await api.create("child", payloads.child(name="Alice"))
    story = await api.create("story", payloads.story_of_child(child["id"], language="ru"))
    story_id = story["id"]
    lists: list[dict[str, Any]] = [
        {},
        {"child_id": child["id"]},
        {"child_name": "Alice"},
        {"language": "ru"},
    ]
    assert (await api.entry("story", story_id))["rating"] is None
    for params in lists:
        assert (await api.items("story", **params))[story_id]["rating"] is None

    rated = await api.rate(story_id, 7)
    assert rated["rating"] == 7

    fresh = await api.entry("story", story_id)
    assert (fresh["rating"], fresh["version"]) == (7, story["version"] + 1)
    for params in lists:
        assert (await api.items("story", **params))[story_id]["rating"] == 7, params


async def test_story_delete_removes_it_from_its_entry_and_lists(api_any_db: Api) -> None:
    api = api_any_db
    child = await api.create("child", payloads.child(name="Alice"))
    story = await api.create("story", payloads.story_of_child(child["id"], language="en"))
    sibling = await api.create("story", payloads.story_of_child(child["id"], language="en"))
    lists: list[dict[str, Any]] = [
        {},
        {"child_id": child["id"]},
        {"child_name": "Alice"},
        {"language": "en"},
    ]
    assert (await api.entry("story", story["id"]))["id"] == story["id"]
    for params in lists:
        assert story["id"] in await api.ids("story", **params)

    await api.delete("story", story["id"])

    assert await api.entry_status("story", story["id"]) == 404
    for params in lists:
        assert await api.ids("story", **params) == [sibling["id"]], params
        assert (await api.page("story", **params))["total"] == 1
    assert (await api.entry("child", child["id"]))["name"] == "Alice"


# -- every row of the rules table has its test ---------------------------------------------
RULE_TESTS: dict[tuple[str, str], Callable[..., Any]] = {
    ("hero", "create"): test_hero_create_appears_in_every_hero_list,
    ("hero", "update"): test_hero_update_moves_hero_between_language_and_name_lists,
    ("hero", "delete"): test_hero_delete_removes_it_and_detaches_it_from_stories,
    ("child", "create"): test_child_create_appears_in_name_exact_and_unfiltered_lists,
    ("child", "update"): test_child_update_follows_into_child_lists_and_its_stories,
    ("child", "delete"): test_child_delete_deletes_its_stories_everywhere,
    ("story", "create"): test_story_create_appears_in_the_lists_of_its_child_and_language,
    ("story", "update"): test_story_update_moves_it_between_child_and_language_lists,
    ("story", "rate"): test_story_rating_shows_in_the_story_and_its_lists,
    ("story", "delete"): test_story_delete_removes_it_from_its_entry_and_lists,
}


@pytest.mark.parametrize("rule", sorted(INVALIDATION_RULES), ids="-".join)
def test_every_invalidation_rule_has_an_http_test(rule: tuple[str, str]) -> None:
    assert rule in RULE_TESTS, f"INVALIDATION_RULES row {rule} has no HTTP test in RULE_TESTS"
    test = RULE_TESTS[rule]
    assert test.__name__.startswith("test_") and globals()[test.__name__] is test


def test_rule_tests_name_exactly_the_rows_of_the_rules_table() -> None:
    assert set(RULE_TESTS) == set(INVALIDATION_RULES)
    assert len(set(RULE_TESTS.values())) == len(RULE_TESTS)
