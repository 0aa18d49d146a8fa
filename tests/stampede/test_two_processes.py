"""Two real service processes on one Redis: a cold key is loaded from the database once in
total, however many requests both receive at the same moment (the Redis load lease)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.stampede.helpers import HERO, HEROES
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess, running_services

REQUESTS_PER_PROCESS = 100


@pytest.fixture
def two_processes(
    postgresql_database_url: str, own_redis: RedisServer, tmp_path: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    with running_services(postgresql_database_url, own_redis.url, tmp_path, 2) as (a, b):
        yield a, b


async def hero_loads(client: httpx.AsyncClient) -> int:
    response = await client.get("/cache/stats")
    assert response.status_code == 200
    return response.json()["entities"]["hero"]["database_loads"]


async def test_cold_key_is_loaded_once_across_two_processes(two_processes) -> None:
    limits = httpx.Limits(max_connections=REQUESTS_PER_PROCESS)
    clients = [
        httpx.AsyncClient(base_url=service.url, limits=limits, timeout=10.0)
        for service in two_processes
    ]
    async with clients[0], clients[1]:
        created = await clients[0].post(HEROES, json=HERO)
        assert created.status_code == 201, created.text
        url = f"{HEROES}/{created.json()['id']}"
        before = [await hero_loads(client) for client in clients]

        async def burst(client: httpx.AsyncClient) -> list[httpx.Response]:
            return await asyncio.gather(*(client.get(url) for _ in range(REQUESTS_PER_PROCESS)))

        answers = await asyncio.gather(*(burst(client) for client in clients))

        after = [await hero_loads(client) for client in clients]
    responses = answers[0] + answers[1]
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert len({r.content for r in responses}) == 1
    loads = [a - b for a, b in zip(after, before, strict=True)]
    assert all(count <= 1 for count in loads), loads
    assert sum(loads) == 1, loads
