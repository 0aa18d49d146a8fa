"""Fixtures of the near-cache tests: cached instances with a near cache, sharing the run's
PostgreSQL database and a Redis of the test's own (some of them through a fault proxy)."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI

from app.cache.near.bus import InvalidationBus
from app.entities import ENTITIES
from tests.conftest import AppAndClient, AppFactory
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer

HEROES = "/api/v1/heroes"
HERO = {"name": "Luna", "age": 7, "gender": "female", "language": "en"}
#: L of these tests (CACHE_NEAR_LEASE_MS): short, so that the bounded waits stay short
LEASE_MS = 400
LEASE = LEASE_MS / 1000
SIGNAL_TIMEOUT = 10


class NearInstance(Protocol):
    def __call__(
        self, redis_url: str | None = None, **overrides: object
    ) -> AbstractAsyncContextManager[AppAndClient]: ...


@pytest.fixture
def proxy(own_redis: RedisServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the test's Redis."""
    with FaultProxy("127.0.0.1", own_redis.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def near_instance(cached_instance: AppFactory, own_redis: RedisServer) -> NearInstance:
    """Factory of cached instances with a near cache, on the test's Redis (or `redis_url`)."""

    def factory(
        redis_url: str | None = None, **overrides: object
    ) -> AbstractAsyncContextManager[AppAndClient]:
        settings = {"cache_near_lease_ms": LEASE_MS, **overrides}
        return cached_instance(redis_url or own_redis.url, **settings)

    return factory


def bus_of(app: FastAPI) -> InvalidationBus:
    bus = app.state.services.cache.near
    assert bus is not None
    return bus


async def create_hero(client: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    response = await client.post(HEROES, json=HERO)
    assert response.status_code == 201, response.text
    hero = response.json()
    return hero, f"{HEROES}/{hero['id']}"


async def serving(app: FastAPI) -> None:
    """Return once the instance's near cache is in step with Redis (bounded)."""
    bus = bus_of(app)
    async with asyncio.timeout(SIGNAL_TIMEOUT):
        while not bus.serving(time.monotonic()):
            await asyncio.sleep(0.01)


ENTITY_OF_PLURAL = {spec.plural: spec.name for spec in ENTITIES}


def entity_of(url: str) -> str:
    return ENTITY_OF_PLURAL[url.removeprefix("/api/v1/").split("/")[0].split("?")[0]]


async def get(app: FastAPI, client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, bool]:
    """GET `url`; whether the answer came from the near cache."""
    stats = app.state.services.cache.stats[entity_of(url)]
    before = stats.near_hits
    response = await client.get(url)
    return response, stats.near_hits == before + 1


async def near_copy(app: FastAPI, client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET until the answer comes from the near cache (the first ones fill it)."""
    await serving(app)
    for _ in range(5):
        response, near = await get(app, client, url)
        if near:
            return response
    raise AssertionError(f"{url} was never served from the near cache")
