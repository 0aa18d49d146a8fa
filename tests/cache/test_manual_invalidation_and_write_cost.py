"""The cached repository's management interface (`invalidate_cache`, `get_cache_stats`) and
the cost of invalidation: O(1) Redis round trips per write, never SCAN/KEYS."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.database import UnitOfWork
from tests.conftest import AppAndClient, AppFactory
from tests.support.redis_server import RedisServer

HEROES = "/api/v1/heroes"


@pytest.fixture
async def served(cached_instance: AppFactory) -> AsyncIterator[AppAndClient]:
    async with cached_instance() as app_and_client:
        yield app_and_client


def hero_repository(app: FastAPI) -> Any:
    return app.state.repositories["hero"](UnitOfWork(app.state.session_factory))


async def create_hero(client: httpx.AsyncClient, name: str = "Nova") -> dict[str, Any]:
    hero = {"name": name, "age": 5, "gender": "female", "language": "en"}
    response = await client.post(HEROES, json=hero)
    assert response.status_code == 201
    return response.json()


async def test_invalidate_one_entry_makes_the_next_read_a_miss_and_keeps_its_version(
    served, redis_server: RedisServer
) -> None:
    app, client = served
    hero = await create_hero(client)
    url = f"{HEROES}/{hero['id']}"
    await client.get(url)
    repo = hero_repository(app)
    misses = repo.get_cache_stats()["misses"]

    assert await repo.invalidate_cache(uuid.UUID(hero["id"]))
    stored = redis_server.client().get(f"tales:hero:{hero['id']}")
    assert stored == b'{"state":"written","version":1}'  # the floor for fills stays
    assert (await client.get(url)).json() == hero
    assert repo.get_cache_stats()["misses"] == misses + 1


async def test_invalidate_everything_of_an_entity_makes_entries_and_lists_miss(served) -> None:
    app, client = served
    hero = await create_hero(client)
    await client.get(f"{HEROES}/{hero['id']}")
    await client.get(HEROES, params={"language": "en"})
    repo = hero_repository(app)
    before = repo.get_cache_stats()

    assert await repo.invalidate_cache()
    await client.get(f"{HEROES}/{hero['id']}")
    await client.get(HEROES, params={"language": "en"})
    after = repo.get_cache_stats()
    assert after["misses"] == before["misses"] + 2
    assert after["hits"] == before["hits"]


async def test_get_cache_stats_reports_this_entity(served) -> None:
    app, client = served
    hero = await create_hero(client)
    for _ in range(3):
        await client.get(f"{HEROES}/{hero['id']}")
    stats = hero_repository(app).get_cache_stats()
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
    served, redis_server: RedisServer
) -> None:
    _app, client = served
    await create_hero(client, name="warm-up")  # scripts loaded into Redis once
    few = await _redis_calls_of_one_update(client, redis_server, pages=3)
    many = await _redis_calls_of_one_update(client, redis_server, pages=60)
    # commandstats also counts the commands a script runs; client round trips are the evalsha
    assert few["evalsha"] == many["evalsha"] == 1
    assert not {"scan", "keys", "del", "unlink"} & (few.keys() | many.keys())
