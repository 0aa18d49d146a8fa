"""Fixtures for the resilience tests: redis-servers of their own (`own_redis`: paused, killed,
restarted, or behind a FaultProxy), the run's PostgreSQL database, and app instances over
httpx with short Redis timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import create, fetch, list_page
from tests.conftest import make_settings, serve_app

HEROES = "/api/v1/heroes"

#: Redis timeouts and breaker used by every resilience test (seconds).
THRESHOLD = 3
COOLDOWN = 0.5
FAST: dict[str, object] = {
    "redis_socket_timeout": 0.05,
    "redis_connect_timeout": 0.05,
    "redis_pool_timeout": 0.05,
    "breaker_failure_threshold": THRESHOLD,
    "breaker_cooldown_seconds": COOLDOWN,
}


@dataclass
class Instance:
    """One app instance (as one process of the service would be) and its HTTP client."""

    app: FastAPI
    http: httpx.AsyncClient

    async def create_hero(self, body: dict[str, Any]) -> dict[str, Any]:
        return await create(self.http, "hero", body)

    async def get_hero(self, hero_id: str) -> dict[str, Any]:
        return await fetch(self.http, "hero", hero_id)

    async def patch_hero(self, hero_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.patch(f"{HEROES}/{hero_id}", json=changes)
        assert response.status_code == 200, response.text
        return response.json()

    async def list_heroes(self, **params: Any) -> dict[str, Any]:
        return await list_page(self.http, "hero", **params)

    async def cache_stats(self) -> dict[str, Any]:
        response = await self.http.get("/cache/stats")
        assert response.status_code == 200, response.text
        return response.json()

    async def hero_hits(self) -> int:
        return int((await self.cache_stats())["entities"]["hero"]["hits"])

    async def breaker(self) -> str:
        return str((await self.cache_stats())["breaker"])

    async def open_breaker(self, hero_id: str) -> dict[str, Any]:
        """GET `hero_id` until the breaker is open (Redis must be failing); each answer is
        checked against the stored row. Returns the stats at the moment it opened."""
        for _ in range(2 * THRESHOLD):
            await self.get_hero(hero_id)
            stats = await self.cache_stats()
            if stats["breaker"] == "open":
                return stats
        raise AssertionError(f"breaker never opened: {stats}")


Serve = Callable[..., AbstractAsyncContextManager[Instance]]


@pytest.fixture
def serve(postgresql_database_url: str, clean_database: None) -> Serve:
    """Factory: an app instance on the run's PostgreSQL database (emptied for the test) or on
    `database_url`, and the given Redis, with the resilience tests' short timeouts unless
    overridden."""

    @asynccontextmanager
    async def factory(
        redis_url: str, *, database_url: str | None = None, **overrides: object
    ) -> AsyncIterator[Instance]:
        settings = make_settings(
            database_url or postgresql_database_url, redis_url, **{**FAST, **overrides}
        )
        async with serve_app(settings, empty=False) as (app, http):
            yield Instance(app, http)

    return factory


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, interval: float = 0.02
) -> float:
    """Await `check` until it is true; returns the seconds it took, fails after `within`."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(interval)
