"""Cache-aside reads: what a hit serves, what is stored in Redis, for how long, under which
keys - and that keys neither leak children's names nor break on glob characters."""

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.heroes.models import Hero
from tests.api import payloads
from tests.api.helpers import url
from tests.cache.conftest import Api, all_keys, cache_settings, entry_key, serve
from tests.support.redis_server import RedisServer

TTLS = {"hero": 900, "child": 700, "story": 400}


@pytest.fixture
async def ttl_api(postgresql_database_url: str, clean_redis: RedisServer) -> AsyncIterator[Api]:
    """A cached app with a distinct TTL per entity."""
    settings = cache_settings(
        postgresql_database_url,
        clean_redis.url,
        cache_hero_ttl=TTLS["hero"],
        cache_child_ttl=TTLS["child"],
        cache_story_ttl=TTLS["story"],
    )
    async with serve(settings) as api:
        yield api


async def three_entities(api: Api) -> dict[str, dict[str, Any]]:
    hero = await api.create("hero", payloads.hero())
    child = await api.create("child", payloads.child())
    story = await api.create("story", payloads.story_of_child(child["id"], hero_id=hero["id"]))
    return {"hero": hero, "child": child, "story": story}


@pytest.mark.parametrize("entity", ["hero", "child", "story"])
async def test_hit_serves_the_same_bytes_and_etag_as_the_miss(api: Api, entity: str) -> None:
    created = (await three_entities(api))[entity]
    path = url(entity, created["id"])
    before = await api.counters(entity)

    miss = await api.http.get(path)
    hit = await api.http.get(path)

    after = await api.counters(entity)
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 1)
    assert miss.status_code == hit.status_code == 200
    assert hit.content == miss.content
    assert hit.headers["etag"] == miss.headers["etag"] == f'"{created["id"]}.1"'
    assert hit.headers["content-type"] == miss.headers["content-type"] == "application/json"
    assert hit.json() == created

    revalidated = await api.http.get(path, headers={"If-None-Match": hit.headers["etag"]})
    assert revalidated.status_code == 304
    assert (await api.counters(entity))["hits"] == after["hits"] + 1


async def test_list_hit_serves_the_same_bytes_as_the_miss(api: Api) -> None:
    await three_entities(api)
    for entity in ("hero", "child", "story"):
        miss = await api.http.get(url(entity))
        hit = await api.cached_read(url(entity))
        assert hit.content == miss.content
        assert hit.json()["total"] == 1


async def test_cached_entry_is_readable_json_with_metadata(ttl_api: Api, redis: Any) -> None:
    created = await three_entities(ttl_api)
    for entity, body in created.items():
        served = await ttl_api.entry(entity, body["id"])

        stored = json.loads(redis.get(entry_key(entity, body["id"])))

        assert stored["entity"] == served == body
        assert stored["version"] == body["version"] == 1
        assert stored["ttl"] == TTLS[entity]
        cached_at = datetime.fromisoformat(stored["cached_at"].replace("Z", "+00:00"))
        assert abs(datetime.now(UTC) - cached_at) < timedelta(seconds=30)
        assert stored["state"] == "entry"


async def test_entries_and_pages_expire_after_their_entity_ttl(ttl_api: Api, redis: Any) -> None:
    created = await three_entities(ttl_api)
    for entity, body in created.items():
        await ttl_api.entry(entity, body["id"])
        await ttl_api.page(entity)
        await ttl_api.page(entity, limit=5, offset=1)

        keys = [key for key in all_keys(redis) if key.startswith(f"tales:{entity}:")]
        assert entry_key(entity, body["id"]) in keys
        assert len(keys) == 3, keys
        for key in keys:
            ttl = redis.ttl(key)
            assert TTLS[entity] - 5 < ttl <= TTLS[entity], (key, ttl)


async def test_default_ttls_come_from_the_settings(api: Api, redis: Any) -> None:
    created = await three_entities(api)
    for entity, body in created.items():
        await api.entry(entity, body["id"])
        configured = getattr(api.settings, f"cache_{entity}_ttl")
        ttl = redis.ttl(entry_key(entity, body["id"]))
        assert configured - 5 < ttl <= configured


async def test_pages_with_different_limit_and_offset_are_cached_separately(api: Api) -> None:
    names = ["Ada", "Bo", "Cy", "Di", "Ed"]
    heroes = [await api.create("hero", payloads.hero(name=name)) for name in names]
    newest_first = [hero["id"] for hero in reversed(heroes)]
    pages = [
        ({"limit": 2, "offset": 0}, newest_first[0:2]),
        ({"limit": 2, "offset": 2}, newest_first[2:4]),
        ({"limit": 2, "offset": 4}, newest_first[4:]),
        ({"limit": 3, "offset": 0}, newest_first[0:3]),
        ({"limit": 20, "offset": 0}, newest_first),
    ]

    for params, expected in pages:
        before = await api.counters("hero")
        page = await api.page("hero", **params)  # first read: a miss, then a hit
        after = await api.counters("hero")
        assert after["misses"] == before["misses"] + 1, f"{params} was served from another page"
        assert [item["id"] for item in page["items"]] == expected
        assert (page["limit"], page["offset"], page["total"]) == (
            params["limit"],
            params["offset"],
            5,
        )
    for params, expected in pages:
        assert await api.ids("hero", **params) == expected


async def test_exact_child_query_has_its_own_exact_key(api: Api, redis: Any) -> None:
    child = await api.create("child", payloads.child(name="Mila", age=5, gender="female"))

    ids = await api.ids("child", name="Mila", age=5, gender="female")

    assert ids == [child["id"]]
    exact = [key for key in all_keys(redis) if key.startswith("tales:child:{child.pages}:exact:")]
    assert len(exact) == 1, all_keys(redis)
    assert await api.ids("child", name="Mila", age=5, gender="male") == []
    exact = [key for key in all_keys(redis) if key.startswith("tales:child:{child.pages}:exact:")]
    assert len(exact) == 2


async def test_children_names_never_appear_in_redis_keys_or_cache_logs(
    postgresql_database_url: str,
    clean_redis: RedisServer,
    redis: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="app.cache")  # before start-up: hit/fill logs too
    settings = cache_settings(postgresql_database_url, clean_redis.url)
    async with serve(settings) as api:
        child = await api.create(
            "child", payloads.child(name="Zoë Secretname", age=7, gender="other")
        )
        story = await api.create("story", payloads.story_of_child(child["id"]))
        free = await api.create("story", payloads.story(child_name="Zoë Secretname", language="ru"))

        await api.entry("child", child["id"])
        await api.entry("story", story["id"])
        assert await api.ids("child", name="Zoë Secretname") == [child["id"]]
        exact = {"name": "Zoë Secretname", "age": 7, "gender": "other"}
        assert await api.ids("child", **exact) == [child["id"]]
        assert await api.ids("child", name="Zoë Secretname", age=7) == [child["id"]]
        assert set(await api.ids("story", child_name="Zoë Secretname")) == {
            story["id"],
            free["id"],
        }
        assert await api.ids("story", child_name="Zoë Secretname", language="ru") == [free["id"]]
        await api.patch("child", child["id"], {"name": "Zoë Othersecret"})
        assert await api.ids("story", child_name="Zoë Othersecret") == [story["id"]]
        await api.delete("child", child["id"])

    keys = all_keys(redis)
    assert any(key.startswith("tales:story:{story.pages}:child_name:") for key in keys)
    for key in keys:
        lowered = key.lower()
        assert "secret" not in lowered, key
        assert "zo%c3%ab" not in lowered and "zoë" not in lowered, key
    cache_logs = [r.getMessage() for r in caplog.records if r.name.startswith("app.cache")]
    hit = "cache hit tales:story:{story.pages}:child_name:"
    assert any(hit in m for m in cache_logs), cache_logs
    assert not [message for message in cache_logs if "secret" in message.lower()]


GLOB_NAMES = ["*", "star*", "q?", "[ab]", "a", "b", "a:b", "a%3Ab", "a%b", "back\\slash", "x y"]


async def test_glob_characters_and_colons_in_names_filter_exactly(api: Api, redis: Any) -> None:
    heroes = {name: await api.create("hero", payloads.hero(name=name)) for name in GLOB_NAMES}

    for name, hero in heroes.items():
        assert await api.ids("hero", name=name) == [hero["id"]], name
        assert await api.ids("hero", name=name, language="en") == [hero["id"]], name
    assert await api.ids("hero", name="*b") == []
    assert len(await api.ids("hero")) == len(GLOB_NAMES)

    for key in all_keys(redis):
        rest = key.removeprefix("tales:")
        assert not set(rest) & set("*?[]\\ "), key


async def test_glob_characters_do_not_break_invalidation(api: Api) -> None:
    heroes = {name: await api.create("hero", payloads.hero(name=name)) for name in GLOB_NAMES}
    colon, encoded, star = heroes["a:b"], heroes["a%3Ab"], heroes["*"]
    assert await api.ids("hero", name="a:b") == [colon["id"]]
    assert await api.ids("hero", name="a%3Ab") == [encoded["id"]]
    assert await api.ids("hero", name="*") == [star["id"]]
    assert await api.ids("hero", name="a:b:c") == []

    await api.patch("hero", colon["id"], {"name": "a:b:c"})
    await api.patch("hero", star["id"], {"name": "[*]"})

    assert await api.ids("hero", name="a:b") == []
    assert await api.ids("hero", name="a:b:c") == [colon["id"]]
    assert await api.ids("hero", name="*") == []
    assert await api.ids("hero", name="[*]") == [star["id"]]
    assert (await api.entry("hero", colon["id"]))["name"] == "a:b:c"
    # a scope the writes did not touch is still cached, and still only its own hero
    before = await api.counters("hero")
    page = await api.list("hero", name="a%3Ab")
    assert (await api.counters("hero"))["hits"] == before["hits"] + 1
    assert [item["id"] for item in page["items"]] == [encoded["id"]]

    await api.flush("heroes")
    for name in ("a%3Ab", "star*", "q?", "[ab]", "back\\slash"):
        assert await api.ids("hero", name=name) == [heroes[name]["id"]]


async def test_an_empty_list_is_cached_and_served_as_a_hit(api: Api) -> None:
    for entity, params in (
        ("hero", {"name": "Nobody"}),
        ("child", {"name": "Nobody", "age": 3, "gender": "male"}),
        ("story", {"language": "ru"}),
        ("story", {}),
    ):
        page = await api.page(entity, **params)
        assert page == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_a_missing_entity_is_not_cached_and_is_found_once_created(
    api: Api, redis: Any
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    before = await api.counters("hero")
    assert (await api.get("hero", missing)).status_code == 404
    assert (await api.get("hero", missing)).status_code == 404
    after = await api.counters("hero")
    # both 404s went to the database: no absence was remembered, in Redis or in the process
    assert after["hits"] == before["hits"], (before, after)
    assert after["misses"] - before["misses"] == 2, (before, after)
    assert after["database_loads"] - before["database_loads"] == 2, (before, after)
    assert after["sets"] == before["sets"], (before, after)
    assert redis.get(entry_key("hero", str(missing))) is None

    # The row appears with that very id. The API picks ids itself, so it is inserted behind
    # the cache's back, as a migration or another service would: no invalidation tells the
    # cache, and a cached absence would keep answering 404.
    async with AsyncSession(api.app.state.services.engine) as session:
        session.add(Hero(id=UUID(missing), **payloads.hero(name="Late")))
        await session.commit()

    found = await api.get("hero", missing)
    assert found.status_code == 200, found.text
    assert (found.json()["id"], found.json()["name"], found.json()["version"]) == (
        missing,
        "Late",
        1,
    )
    assert await api.entry("hero", missing) == found.json()  # and it is cached now
    assert redis.get(entry_key("hero", str(missing))).startswith(b'{"state":"entry"')


async def test_due_entries_are_refreshed_early_from_the_database(
    postgresql_database_url: str, clean_redis: RedisServer
) -> None:
    """XFetch: with a huge beta every read finds its entry due for an early refresh, so it must
    reload it from the database (here changed behind the cache's back) and store it again."""
    settings = cache_settings(
        postgresql_database_url, clean_redis.url, cache_early_refresh_beta=1e15
    )
    async with serve(settings) as api:
        hero = await api.create("hero", payloads.hero(name="Before"))
        assert (await api.get("hero", hero["id"])).json()["name"] == "Before"
        assert (await api.list("hero"))["items"][0]["name"] == "Before"
        async with api.app.state.services.engine.begin() as connection:
            await connection.execute(text("UPDATE heroes SET name = 'Behind'"))
        loads = (await api.counters("hero"))["database_loads"]

        entry = (await api.get("hero", hero["id"])).json()
        page = await api.list("hero")

        assert (await api.counters("hero"))["database_loads"] == loads + 2
        assert entry["name"] == "Behind"
        assert page["items"][0]["name"] == "Behind"
