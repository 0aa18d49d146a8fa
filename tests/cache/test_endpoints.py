"""The /cache endpoints (statistics, admin flush) and the cache part of /health/ready."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api import payloads
from tests.api.helpers import url
from tests.cache.conftest import (
    ADMIN_TOKEN,
    STAT_FIELDS,
    Api,
    cache_settings,
    entity_keys,
    entity_of_path,
    entry_key,
    serve,
)
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer

FLUSH_PATHS = ["/cache", "/cache/heroes", "/cache/children", "/cache/stories"]
PASSWORD = "s3cret-Pa55word"


# -- GET /cache/stats ----------------------------------------------------------------------
async def test_stats_count_hits_misses_and_writes_per_entity_and_in_total(api: Api) -> None:
    hero = await api.create("hero", payloads.hero())
    await api.http.get(url("hero", hero["id"]))  # miss
    await api.http.get(url("hero", hero["id"]))  # hit
    await api.http.get(url("child"))  # miss
    await api.http.get(url("child"))  # hit
    await api.http.get(url("child"))  # hit

    stats = await api.stats()

    assert stats["status"] == "up"
    assert stats["breaker"] == "closed"
    assert stats["key_prefix"] == "tales:"
    assert set(stats["entities"]) == {"hero", "child", "story"}
    for counters in [*stats["entities"].values(), stats["total"]]:
        assert set(STAT_FIELDS) <= set(counters)
    hero_stats, child_stats, story_stats = (
        stats["entities"][e] for e in ("hero", "child", "story")
    )
    assert (hero_stats["hits"], hero_stats["misses"], hero_stats["hit_rate"]) == (1, 1, 0.5)
    assert hero_stats["sets"] == 1
    assert hero_stats["invalidations"] >= 1
    assert (child_stats["hits"], child_stats["misses"], child_stats["sets"]) == (2, 1, 1)
    assert child_stats["hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert child_stats["invalidations"] == 0
    assert story_stats == {**story_stats, "hits": 0, "misses": 0, "hit_rate": 0.0, "sets": 0}
    assert all(stats["entities"][e]["errors"] == 0 for e in stats["entities"])
    total = stats["total"]
    for field in ("hits", "misses", "sets", "invalidations", "errors"):
        assert total[field] == sum(stats["entities"][e][field] for e in stats["entities"])
    assert total["hit_rate"] == 0.6


async def test_stats_say_disabled_when_redis_is_disabled(
    postgresql_database_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(postgresql_database_url, redis_server.url, redis_enabled=False)
    async with serve(settings) as api:
        hero = await api.create("hero", payloads.hero())
        assert (await api.get("hero", hero["id"])).status_code == 200
        stats = await api.stats()
    assert stats["status"] == "disabled"
    assert stats["breaker"] == "disabled"
    assert stats["total"]["hits"] == stats["total"]["misses"] == 0


@pytest.mark.parametrize("password_in", ["url", "setting"])
async def test_stats_show_the_redis_url_without_its_password(
    postgresql_database_url: str, password_in: str
) -> None:
    with RedisServer(password=PASSWORD) as server:
        plain_url = f"redis://{server.host}:{server.port}/0"
        if password_in == "url":
            settings = cache_settings(postgresql_database_url, server.url)
            assert PASSWORD in server.url
        else:
            settings = cache_settings(postgresql_database_url, plain_url, redis_password=PASSWORD)
        async with serve(settings) as api:
            hero = await api.create("hero", payloads.hero())
            await api.entry("hero", hero["id"])  # authenticated: the re-read is a hit
            response = await api.http.get("/cache/stats")

    assert response.json()["redis_url"] == plain_url
    assert response.json()["status"] == "up"
    assert PASSWORD not in response.text


# -- DELETE /cache, /cache/{entity} --------------------------------------------------------
@pytest.mark.parametrize("admin_token", [None, ""])
@pytest.mark.parametrize("path", FLUSH_PATHS)
async def test_flush_is_forbidden_when_no_admin_token_is_configured(
    postgresql_database_url: str, redis_server: RedisServer, path: str, admin_token: str | None
) -> None:
    settings = cache_settings(postgresql_database_url, redis_server.url, admin_token=admin_token)
    async with serve(settings, empty=False) as api:
        for headers in (
            {},
            {"Authorization": "Bearer "},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ):
            response = await api.http.delete(path, headers=headers)
            assert response.status_code == 403, response.text
            assert "ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("path", FLUSH_PATHS)
async def test_flush_needs_the_admin_bearer_token(api: Api, path: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": "Bearer"},
    ):
        response = await api.http.delete(path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"

    response = await api.http.delete(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    assert response.status_code == 200, response.text
    body = response.json()
    expected = ["hero", "child", "story"] if path == "/cache" else [path_entity(path)]
    assert body["flushed"] == expected
    assert body["cache_reachable"] is True
    lower = await api.http.delete(path, headers={"Authorization": f"bearer {ADMIN_TOKEN}"})
    assert lower.status_code == 200


def path_entity(path: str) -> str:
    return {"heroes": "hero", "children": "child", "stories": "story"}[path.split("/")[-1]]


async def test_flush_of_an_unknown_entity_is_rejected(api: Api) -> None:
    response = await api.http.delete(
        "/cache/unicorns", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code in (404, 422)


async def warm(api: Api, entity: str, entity_id: str) -> None:
    await api.entry(entity, entity_id)
    await api.page(entity)


async def assert_read_misses(api: Api, path: str) -> None:
    before = await api.counters(entity_of_path(path))
    response = await api.http.get(path)
    after = await api.counters(entity_of_path(path))
    assert response.status_code == 200
    assert (after["misses"], after["hits"]) == (before["misses"] + 1, before["hits"]), path


async def assert_read_hits(api: Api, path: str) -> None:
    before = await api.counters(entity_of_path(path))
    response = await api.http.get(path)
    after = await api.counters(entity_of_path(path))
    assert response.status_code == 200
    assert (after["misses"], after["hits"]) == (before["misses"], before["hits"] + 1), path


async def test_flushing_heroes_makes_hero_reads_miss_but_keeps_children_cached(api: Api) -> None:
    hero = await api.create("hero", payloads.hero())
    child = await api.create("child", payloads.child())
    story = await api.create("story", payloads.story_of_child(child["id"]))
    for entity, entity_id in (("hero", hero["id"]), ("child", child["id"]), ("story", story["id"])):
        await warm(api, entity, entity_id)

    body = await api.flush("heroes")

    assert body["flushed"] == ["hero"]
    assert body["deleted_keys"] == 2  # the hero's entry and the hero page
    await assert_read_misses(api, url("hero", hero["id"]))
    await assert_read_misses(api, url("hero"))
    for entity, entity_id in (("child", child["id"]), ("story", story["id"])):
        await assert_read_hits(api, url(entity, entity_id))
        await assert_read_hits(api, url(entity))
    await assert_read_hits(api, url("hero", hero["id"]))  # cached again


async def test_flush_all_keeps_keys_outside_the_prefix_and_of_other_prefixes(
    postgresql_database_url: str, redis_server: RedisServer, api: Api, redis: Any
) -> None:
    hero = await api.create("hero", payloads.hero())
    child = await api.create("child", payloads.child())
    await warm(api, "hero", hero["id"])
    await warm(api, "child", child["id"])
    redis.set("other:keep", "value", ex=500)
    redis.set("talesX:hero:keep", "value")
    guest_settings = cache_settings(
        postgresql_database_url, redis_server.url, cache_key_prefix="guest:"
    )
    async with serve(guest_settings, empty=False) as guest:
        await guest.entry("hero", hero["id"])
        assert redis.exists(entry_key("hero", hero["id"], "guest:"))

        body = await api.flush()

        assert body["flushed"] == ["hero", "child", "story"]
        assert body["deleted_keys"] == 4
        assert redis.get("other:keep") == b"value"
        assert 490 < redis.ttl("other:keep") <= 500
        assert redis.get("talesX:hero:keep") == b"value"
        await assert_read_hits(guest, url("hero", hero["id"]))
    await assert_read_misses(api, url("hero", hero["id"]))
    await assert_read_misses(api, url("child", child["id"]))
    await assert_read_misses(api, url("child"))


def cached_values(redis: Any) -> dict[str, bytes]:
    """Every string key in Redis and its value (the near cache's member set aside)."""
    return {
        key.decode(): redis.get(key)
        for key in redis.scan_iter(count=1000)
        if redis.type(key) == b"string"
    }


def is_cached_value(key: str, value: bytes, entity: str) -> bool:
    """An entry or a list page of `entity` (not a post-write marker, counter or lease)."""
    return key.startswith(f"tales:{entity}:") and value.startswith(b'{"state":"entry"')


async def test_flush_then_write_never_serves_the_pre_flush_value(api: Api, redis: Any) -> None:
    hero = await api.create("hero", payloads.hero(name="First"))
    other = await api.create("hero", payloads.hero(name="Other"))
    child = await api.create("child", payloads.child())
    for entity, entity_id in (("hero", hero["id"]), ("hero", other["id"]), ("child", child["id"])):
        await warm(api, entity, entity_id)
    redis.set("other:keep", "value")
    redis.set("talesX:hero:keep", "value")
    before = cached_values(redis)
    flushed = {key for key, value in before.items() if is_cached_value(key, value, "hero")}
    assert {entry_key("hero", hero["id"]), entry_key("hero", other["id"])} < flushed  # and a page

    body = await api.flush("heroes")

    assert body["deleted_keys"] == len(flushed)
    after = cached_values(redis)
    # the hero entries and pages are gone from Redis, not just unreachable
    assert not flushed & set(after), sorted(flushed & set(after))
    assert not [key for key, value in after.items() if is_cached_value(key, value, "hero")]
    # everything else is still there as it was: the children's entries and pages, keys
    # outside the prefix; of the heroes' bookkeeping only their epoch moved
    epochs = set(entity_keys("hero").epochs)
    kept = {key: value for key, value in before.items() if key not in flushed}
    assert {k: v for k, v in after.items() if k in kept and k not in epochs} == {
        k: v for k, v in kept.items() if k not in epochs
    }
    assert epochs <= set(after)
    assert all(after[key] != before[key] for key in epochs & set(before))
    await assert_read_hits(api, url("child", child["id"]))
    await assert_read_hits(api, url("child"))
    # the next read of a flushed hero is a miss, served from the database
    await assert_read_misses(api, url("hero", other["id"]))

    await api.patch("hero", hero["id"], {"name": "Second"})
    await assert_read_misses(api, url("hero", hero["id"]))
    await assert_read_misses(api, url("hero"))
    assert (await api.entry("hero", hero["id"]))["name"] == "Second"
    assert (await api.items("hero"))[hero["id"]]["name"] == "Second"


# -- GET /health/ready ---------------------------------------------------------------------
@pytest.fixture
async def own_redis_api(postgresql_database_url: str, own_redis: RedisServer) -> AsyncIterator[Api]:
    settings = cache_settings(postgresql_database_url, own_redis.url, breaker_cooldown_seconds=0.2)
    async with serve(settings) as api:
        yield api


async def ready(api: Api) -> tuple[int, dict[str, Any]]:
    response = await api.http.get("/health/ready")
    return response.status_code, response.json()


async def test_readiness_reports_the_cache_and_degrades_while_redis_is_down(
    own_redis_api: Api, own_redis: RedisServer
) -> None:
    api = own_redis_api
    status, body = await ready(api)
    assert (status, body["status"], body["database"]["status"]) == (200, "ok", "up")
    assert body["cache"]["status"] == "up"
    assert isinstance(body["cache"]["latency_ms"], int | float)
    assert body["cache"]["latency_ms"] >= 0

    own_redis.kill()
    status, body = await ready(api)
    assert (status, body["status"], body["database"]["status"]) == (200, "degraded", "up")
    assert body["cache"]["status"] == "down"
    assert body["cache"]["latency_ms"] is None

    own_redis.restart()
    deadline = asyncio.get_running_loop().time() + 5
    while (await ready(api))[1]["status"] != "ok":
        assert asyncio.get_running_loop().time() < deadline, "readiness did not recover"
        await asyncio.sleep(0.05)
    status, body = await ready(api)
    assert (status, body["cache"]["status"]) == (200, "up")
    assert isinstance(body["cache"]["latency_ms"], int | float)


async def test_readiness_says_disabled_when_redis_is_disabled(
    postgresql_database_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(postgresql_database_url, redis_server.url, redis_enabled=False)
    async with serve(settings, empty=False) as api:
        status, body = await ready(api)
    assert (status, body["status"]) == (200, "ok")
    assert body["cache"]["status"] == "disabled"
    assert body["cache"]["latency_ms"] is None


async def test_redis_db_setting_wins_over_the_database_in_the_url(
    postgresql_database_url: str, clean_redis: RedisServer
) -> None:
    clean_redis.client(db=3).flushdb()
    settings = cache_settings(postgresql_database_url, clean_redis.url, redis_db=3)
    assert settings.redis_url.endswith("/0")
    async with serve(settings) as api:
        hero = await api.create("hero", payloads.hero())
        await api.get("hero", hero["id"])
    assert clean_redis.client(db=3).exists(entry_key("hero", hero["id"]))
    assert not clean_redis.client(db=0).exists(entry_key("hero", hero["id"]))
