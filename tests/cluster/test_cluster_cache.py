"""The service on a Redis Cluster (three primaries, three replicas): it caches, an entity's
entries are spread over every primary, answers match the cache off, and invalidation (entries
and lists, a write's cascades, the admin flush) works across slots."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import url
from tests.cache.conftest import Api
from tests.cluster.conftest import (
    HERO,
    cluster_app,
    create_heroes,
    keys_by_primary,
    uncached_app,
)
from tests.near.conftest import get, near_copy
from tests.support.redis_cluster import RedisClusterServers

HEROES = 60  # over 16 tags, >= 3 on each primary: p(a primary holds none) < (13/16)**60 ~ 4e-6


async def test_entries_are_cached_and_spread_over_every_primary(
    cluster_api: Api, clean_cluster: RedisClusterServers
) -> None:
    heroes = await create_heroes(cluster_api, HEROES)
    for hero in heroes:
        await cluster_api.cached_read(url("hero", hero["id"]))  # the second read is a hit
    await cluster_api.cached_read(url("hero"), {"language": "en"})
    assert (await cluster_api.counters("hero"))["hits"] >= HEROES + 1

    entries = keys_by_primary(clean_cluster, "tales:hero:{hero.[0-9]*}:*")
    assert len(entries) == 3
    assert all(entries.values()), f"a primary holds no hero entry: {entries}"
    assert sum(len(keys) for keys in entries.values()) == HEROES
    pages = keys_by_primary(clean_cluster, "tales:hero:{hero.pages}:*")
    assert sum(bool(keys) for keys in pages.values()) == 1  # an entity's pages: one slot


async def test_answers_match_the_cache_off(cluster_api: Api, postgresql_database_url: str) -> None:
    heroes = await create_heroes(cluster_api, 12)
    child = await cluster_api.create(
        "child",
        {"name": "Ann", "age": 5, "age_category": "3-5", "gender": "female", "interests": ["cats"]},
    )
    story = await cluster_api.create(
        "story",
        {
            "title": "Moon",
            "content": "Once",
            "language": "en",
            "child_id": child["id"],
            "hero_id": heroes[0]["id"],
        },
    )
    paths: list[tuple[str, dict[str, Any] | None]] = [
        *((url("hero", hero["id"]), None) for hero in heroes),
        (url("child", child["id"]), None),
        (url("story", story["id"]), None),
        (url("hero"), {"language": "en", "limit": 5, "offset": 5}),
        (url("hero"), None),
        (url("story"), {"child_id": child["id"]}),
        (url("child"), {"name": "Ann"}),
    ]
    cached = [await cluster_api.cached_read(path, params) for path, params in paths]
    async with uncached_app(postgresql_database_url) as plain:
        for (path, params), response in zip(paths, cached, strict=True):
            direct = await plain.http.get(path, params=params)
            assert (direct.status_code, direct.content) == (response.status_code, response.content)


async def test_no_stale_entry_or_list_after_patch_and_delete(cluster_api: Api) -> None:
    heroes = await create_heroes(cluster_api, 8)
    for hero in heroes:
        await cluster_api.entry("hero", hero["id"])
    await cluster_api.cached_read(url("hero"), {"language": "en"})
    await cluster_api.cached_read(url("hero"), {"name": "Hero 3"})

    for hero in heroes[:4]:
        await cluster_api.patch("hero", hero["id"], {"name": f"Renamed {hero['id']}"})
    await cluster_api.patch("hero", heroes[3]["id"], {"language": "ru"})
    await cluster_api.delete("hero", heroes[7]["id"])

    for hero in heroes[:3]:
        assert (await cluster_api.entry("hero", hero["id"]))["name"] == f"Renamed {hero['id']}"
    assert (await cluster_api.get("hero", heroes[7]["id"])).status_code == 404
    english = await cluster_api.ids("hero", language="en")
    assert heroes[3]["id"] not in english and heroes[7]["id"] not in english
    assert heroes[3]["id"] in await cluster_api.ids("hero", language="ru")
    assert await cluster_api.ids("hero", name="Hero 3") == []


async def test_cascades_mark_entries_of_other_slots(cluster_api: Api) -> None:
    """A child's rename marks its stories (other tags, other primaries) and their lists."""
    child = await cluster_api.create(
        "child",
        {"name": "Kim", "age": 5, "age_category": "3-5", "gender": "female", "interests": []},
    )
    stories = [
        await cluster_api.create(
            "story", {"title": f"T{i}", "content": "c", "language": "en", "child_id": child["id"]}
        )
        for i in range(10)
    ]
    for story in stories:
        await cluster_api.entry("story", story["id"])
    await cluster_api.cached_read(url("story"), {"child_id": child["id"]})
    await cluster_api.patch("child", child["id"], {"name": "Lee"})
    for story in stories:
        assert (await cluster_api.entry("story", story["id"]))["child_name"] == "Lee"
    page = await cluster_api.list("story", child_id=child["id"])
    assert {item["child_name"] for item in page["items"]} == {"Lee"}


async def test_admin_flush_reaches_every_primary(
    cluster_api: Api, clean_cluster: RedisClusterServers
) -> None:
    heroes = await create_heroes(cluster_api, HEROES)
    for hero in heroes:
        await cluster_api.entry("hero", hero["id"])
    flushed = await cluster_api.flush("heroes")
    assert flushed["deleted_keys"] >= HEROES and flushed["cache_reachable"]
    entries = keys_by_primary(clean_cluster, "tales:hero:{hero.[0-9]*}:*")
    assert not any(entries.values())
    before = await cluster_api.counters("hero")
    response = await cluster_api.get("hero", heroes[0]["id"])
    assert response.status_code == 200
    assert (await cluster_api.counters("hero"))["misses"] == before["misses"] + 1


async def test_the_near_cache_follows_writes_of_another_instance(
    cluster_api: Api, postgresql_database_url: str, clean_cluster: RedisClusterServers
) -> None:
    """Two instances on the cluster: B's near copy goes when A writes (the bus subscribes on
    the node that owns its slot; PUBLISH reaches it from the scripts there)."""
    hero = await cluster_api.create("hero", {**HERO, "name": "Before"})
    path = url("hero", hero["id"])
    async with cluster_app(postgresql_database_url, clean_cluster, empty=False) as other:
        assert (await near_copy(other.app, other.http, path)).json()["name"] == "Before"
        await cluster_api.patch("hero", hero["id"], {"name": "After"})
        response, near = await get(other.app, other.http, path)
        assert response.json()["name"] == "After" and not near


async def test_an_unreachable_cluster_degrades_to_the_database(
    postgresql_database_url: str,
) -> None:
    """No node answers: redis-py's RedisClusterException (not a RedisError) must be a cache
    failure like any other — the service answers from the database, never a 500."""
    nowhere = RedisClusterServers()  # ports chosen, nothing started
    try:
        async with cluster_app(postgresql_database_url, nowhere) as api:
            hero = await api.create("hero", {**HERO, "name": "Alone"})
            for _ in range(3):
                response = await api.get("hero", hero["id"])
                assert response.status_code == 200, response.text
            page = await api.list("hero")
            assert [item["id"] for item in page["items"]] == [hero["id"]]
            assert (await api.http.get("/health/ready")).json()["status"] == "degraded"
            assert (await api.stats())["total"]["errors"] > 0
    finally:
        nowhere.close()
