"""Fixtures for the resilience tests: redis-servers of their own (`own_redis`: paused, killed,
restarted, or behind a FaultProxy), the run's PostgreSQL database, and app instances over
httpx with short Redis timeouts.

The short timeouts (`FAST`, about the service's defaults) let the fault tests detect a hang in
50 ms; on a loaded machine they also let an ordinary reply miss its deadline now and then.
So the warm-up before a fault (`Instance.warm_hero`, `Instance.warm_list`) reads until the
value is a cache hit, for a bounded time, instead of counting on the second read being one;
and tests that fault something else than Redis use `RELAXED` timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from app.cache.outbox import Outbox
from tests.api.helpers import create, fetch, list_page
from tests.conftest import make_settings, serve_app

HEROES = "/api/v1/heroes"

T = TypeVar("T")

#: Redis timeouts and breaker used by every resilience test (seconds).
THRESHOLD = 3
#: how long reads may take to open the breaker: the near lease lapses first (500 ms)
BREAKER_OPEN_WITHIN = 10.0
BREAKER_POLL_SECONDS = 0.05
COOLDOWN = 0.5
SOCKET_TIMEOUT = 0.05
FAST: dict[str, object] = {
    "redis_socket_timeout": SOCKET_TIMEOUT,
    "redis_connect_timeout": SOCKET_TIMEOUT,
    "redis_pool_timeout": SOCKET_TIMEOUT,
    "breaker_failure_threshold": THRESHOLD,
    "breaker_cooldown_seconds": COOLDOWN,
}
#: The deadline of one cache operation under FAST: a pool wait, a connect, a request and a
#: reply, each SOCKET_TIMEOUT here (`app.cache.connection.operation_timeout`).
DEADLINE = 4 * SOCKET_TIMEOUT
#: Hits come back after a Redis outage once the cool-down has ended and the repair task's
#: next probe closed the breaker (about 0.55 s on a quiet machine). The bound leaves room for
#: one more cool-down (a probe whose reply a loaded machine delayed past 50 ms fails and
#: re-opens the breaker) and for the reads and fill that follow, each within a few
#: deadlines; a breaker that never closes, or hits that only come back when the TTL ends,
#: still fail it.
RECOVERY_WITHIN = 3 * COOLDOWN + 10 * DEADLINE
#: For tests whose fault is not in Redis: a reply that a loaded machine delays must not make
#: Redis look faulty (as the other test directories do, see `tests.conftest.make_settings`).
RELAXED: dict[str, object] = {
    "redis_socket_timeout": 1.0,
    "redis_connect_timeout": 1.0,
    "redis_pool_timeout": 1.0,
}
#: A cool-down long enough that no half-open probe happens during a test that needs the
#: breaker to stay open.
LONG_COOLDOWN = 60.0
#: How long a warm-up may take: reads that miss because a reply or a fill missed its 50 ms
#: deadline on a loaded machine are repeated (each costs at most a few deadlines, and a
#: breaker opened by such misses closes again after COOLDOWN).
WARM_UP_WITHIN = 5.0


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

    async def read_until_hit(self, read: Callable[[], Awaitable[T]], what: str) -> T:
        """Repeat `read` (one hero read: an entry or a list page) until it is served from the
        cache: the hero hits grow by one and the misses not at all. A read that misses (the
        first one, or one whose reply or fill a loaded machine delayed past the deadline) is
        repeated, for up to WARM_UP_WITHIN seconds. Returns what the hit answered."""
        stats = self.app.state.services.cache.stats["hero"]
        deadline = time.monotonic() + WARM_UP_WITHIN
        reads = 0
        while True:
            hits, misses = stats.hits, stats.misses
            result = await read()
            reads += 1
            if (stats.hits, stats.misses) == (hits + 1, misses):
                if reads > 2:
                    print(f"\nwarm-up: {what} was a cache hit at read {reads}")
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no cache hit in {reads} reads ({stats})")
            if reads >= 2:  # the fill or this read failed: the breaker may be open a while
                await asyncio.sleep(0.02)

    async def warm_hero(self, hero: dict[str, Any]) -> None:
        """Read `hero` until its entry is a cache hit; every read answers the stored hero."""

        async def read() -> None:
            assert await self.get_hero(hero["id"]) == hero

        await self.read_until_hit(read, f"hero {hero['id']}")

    async def warm_list(self, **params: Any) -> dict[str, Any]:
        """Read a hero list page until it is a cache hit; returns the page."""
        return await self.read_until_hit(
            lambda: self.list_heroes(**params), f"hero list {params or ''}"
        )

    async def until_hits_again(self, hero: dict[str, Any], within: float) -> float:
        """GET `hero` until the breaker is closed and the hero hits grew: the cache serves
        again. Every answer on the way must be `hero` (never an older version). Returns the
        seconds it took."""
        hits = await self.hero_hits()

        async def hitting_again() -> bool:
            assert await self.get_hero(hero["id"]) == hero
            stats = await self.cache_stats()
            return stats["breaker"] == "closed" and stats["entities"]["hero"]["hits"] > hits

        return await eventually(hitting_again, within)

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        response = await self.http.get("/health/ready")
        return response.status_code, response.json()

    async def until_ready_ok(self, within: float = WARM_UP_WITHIN) -> None:
        """`/health/ready` answers 200 `ok` (its PING has the 50 ms timeout too, so one PING a
        loaded machine delays is repeated, for up to `within` seconds)."""

        async def ok() -> bool:
            status, body = await self.readiness()
            return status == 200 and body["status"] == "ok"

        await eventually(ok, within)

    async def breaker(self) -> str:
        return str((await self.cache_stats())["breaker"])

    async def open_breaker(self, hero_id: str) -> dict[str, Any]:
        """GET `hero_id` until the breaker is open (Redis must be failing); each answer is
        checked against the stored row. Returns the stats at the moment it opened."""
        # A near copy may answer for up to CACHE_NEAR_LEASE_MS after the bus fell silent
        # (without asking Redis); after that every read reaches the failing Redis.
        deadline = time.monotonic() + BREAKER_OPEN_WITHIN
        while True:
            await self.get_hero(hero_id)
            stats = await self.cache_stats()
            if stats["breaker"] == "open":
                return stats
            if time.monotonic() > deadline:
                raise AssertionError(f"breaker never opened: {stats}")
            await asyncio.sleep(BREAKER_POLL_SECONDS)


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


def outbox_of(instance: Instance) -> Outbox:
    outbox = instance.app.state.services.outbox
    assert outbox is not None
    return outbox


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
