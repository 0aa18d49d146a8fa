"""Manual invalidation by an operator (`DELETE /cache/{entity}/{id}` and
`DELETE /cache/{entity}`, admin token), the statistics of one entity, and the cost of
invalidation: O(1) Redis round trips per write, never SCAN/KEYS."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.cache.conftest import entry_key
from tests.conftest import AppAndClient, AppFactory
from tests.support.redis_server import RedisServer

HEROES = "/api/v1/heroes"
ADMIN = {"Authorization": "Bearer manual-invalidation-admin"}


@pytest.fixture
async def served(cached_instance: AppFactory) -> AsyncIterator[AppAndClient]:
    # without a near cache: its heartbeats are script calls too, and would blur the count
    # of the round trips a write makes (tests/near covers what the near cache adds)
    settings = {"admin_token": "manual-invalidation-admin", "cache_near_enabled": False}
    async with cached_instance(**settings) as app_and_client:
        yield app_and_client


async def hero_stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    stats: dict[str, Any] = response.json()["entities"]["hero"]
    return stats


async def create_hero(client: httpx.AsyncClient, name: str = "Nova") -> dict[str, Any]:
    hero = {"name": name, "age": 5, "gender": "female", "language": "en"}
    response = await client.post(HEROES, json=hero)
    assert response.status_code == 201
    return response.json()


async def test_invalidate_one_entry_makes_the_next_read_a_miss_and_keeps_its_version(
    served: AppAndClient, redis_server: RedisServer
) -> None:
    _app, client = served
    hero = await create_hero(client)
    url = f"{HEROES}/{hero['id']}"
    await client.get(url)
    misses = (await hero_stats(client))["misses"]

    response = await client.delete(f"/cache/heroes/{hero['id']}", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {"invalidated": f"hero {hero['id']}", "cache_reachable": True}
    stored = redis_server.client().get(entry_key("hero", hero["id"]))
    assert stored == b'{"state":"written","version":1}'  # the floor for fills stays
    assert (await client.get(url)).json() == hero
    assert (await hero_stats(client))["misses"] == misses + 1


async def test_invalidating_an_entry_needs_the_admin_token(served: AppAndClient) -> None:
    _app, client = served
    hero = await create_hero(client)
    assert (await client.delete(f"/cache/heroes/{hero['id']}")).status_code == 401
    wrong = {"Authorization": "Bearer not-it"}
    assert (await client.delete(f"/cache/heroes/{hero['id']}", headers=wrong)).status_code == 401


async def test_flushing_an_entity_makes_its_entries_and_lists_miss(served: AppAndClient) -> None:
    _app, client = served
    hero = await create_hero(client)
    await client.get(f"{HEROES}/{hero['id']}")
    await client.get(HEROES, params={"language": "en"})
    before = await hero_stats(client)

    assert (await client.delete("/cache/heroes", headers=ADMIN)).status_code == 200
    await client.get(f"{HEROES}/{hero['id']}")
    await client.get(HEROES, params={"language": "en"})
    after = await hero_stats(client)
    assert after["misses"] == before["misses"] + 2
    assert after["hits"] == before["hits"]


async def test_cache_stats_report_this_entity(served: AppAndClient) -> None:
    _app, client = served
    hero = await create_hero(client)
    for _ in range(3):
        await client.get(f"{HEROES}/{hero['id']}")
    stats = await hero_stats(client)
    assert (stats["hits"], stats["misses"], stats["sets"]) == (2, 1, 1)
    assert stats["hit_rate"] == round(2 / 3, 4)
    assert stats["invalidations"] > 0  # the create moved the hero lists


async def _redis_calls_of_one_update(
    client: httpx.AsyncClient, redis_server: RedisServer, pages: int
) -> dict[str, int]:
    hero = await create_hero(client, name=f"Hero with {pages} pages")
    for offset in range(pages):
        assert (await client.get(HEROES, params={"offset": offset, "limit": 1})).status_code == 200
    redis = redis_server.client()
    redis.config_resetstat()
    response = await client.patch(f"{HEROES}/{hero['id']}", json={"language": "ru"})
    assert response.status_code == 200
    stats = redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


async def test_a_write_costs_one_round_trip_however_many_pages_are_cached(
    served: AppAndClient, redis_server: RedisServer
) -> None:
    _app, client = served
    await create_hero(client, name="warm-up")  # scripts loaded into Redis once
    few = await _redis_calls_of_one_update(client, redis_server, pages=3)
    many = await _redis_calls_of_one_update(client, redis_server, pages=60)
    # commandstats also counts the commands a script runs; client round trips are the evalsha
    assert few["evalsha"] == many["evalsha"] == 1
    assert not {"scan", "keys", "unlink"} & (few.keys() | many.keys())
    # the one DEL is the lease of the one entry marked (`scripts.INVALIDATE`), not a page
    assert few["del"] == many["del"] == 1
