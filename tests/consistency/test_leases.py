"""The load lease, on a real redis-server and PostgreSQL, two instances sharing them.

- A fill needs the lease its reader took before reading the database, and a write's
  invalidation (or a manual demotion) deletes the leases of the entries it marks: a reader
  that read the old row cannot store it even when the post-write marker is gone (evicted or
  expired; here deleted by the test, as eviction would).
- A lease holder that does not fill (no such row, a database error, a cancelled load)
  releases the lease at once: another instance's reader loads without waiting for it.
- An early refresh (XFetch) takes the lease first, and does not happen without it.

The lease is made long (`CACHE_LEASE_MS`) so that no lease disappears by expiring here: a
lease that is gone was deleted. The near cache is off, so that every read reaches Redis.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from tests.cache.conftest import entry_key
from tests.conftest import AppAndClient, AppFactory
from tests.consistency.test_stale_fill_race import (
    HERO,
    HEROES,
    Pause,
    create_hero_then_arm,
    start_paused_read,
)
from tests.support.loads import patch_loads
from tests.support.redis_server import RedisServer

LONG_LEASE_MS = 60_000
ADMIN_TOKEN = "lease-admin"
#: How long a cancelled reader's background release may take to be seen (not a timing claim:
#: the lease would otherwise stay for LONG_LEASE_MS).
RELEASE_WITHIN = 5.0


def settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "cache_lease_ms": LONG_LEASE_MS,
        "cache_near_enabled": False,
        "admin_token": ADMIN_TOKEN,
    }
    values.update(overrides)
    return values


def lease_key(hero_id: str) -> str:
    return f"tales:lease:{entry_key('hero', hero_id).removeprefix('tales:')}"


def hero_stats(app: FastAPI) -> Any:
    return app.state.services.cache.stats["hero"]


class Failing:
    """The hero loads (`get`) of one id raise a database error."""

    def __init__(self, hero_id: str) -> None:
        self.hero_id = hero_id

    def wrap(self, original: Any) -> Any:
        async def load(repository: Any, entity_id: Any) -> Any:
            if str(entity_id) == self.hero_id:
                raise OperationalError("SELECT", {}, Exception("connection lost"))
            return await original(repository, entity_id)

        return load


async def second_reader_loads_without_waiting(
    app: FastAPI, client: httpx.AsyncClient, url: str, expected_status: int
) -> None:
    stats = hero_stats(app)
    waits, loads = stats.stampede_waits, stats.database_loads
    response = await client.get(url)
    assert response.status_code == expected_status, response.text
    assert stats.database_loads == loads + 1
    assert stats.stampede_waits == waits, "the second reader waited for a lease nobody fills"


@asynccontextmanager
async def two_instances(
    cached_instance: AppFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, AppAndClient]]:
    """Two instances of these tests' settings: the first one's client, the second one's app
    and client (whose reader must not wait for a lease the first one gave up)."""
    async with (
        cached_instance(**settings()) as (_a, first),
        cached_instance(**settings()) as second,
    ):
        yield first, second


# -- a holder that does not fill releases the lease ---------------------------------------
async def test_a_reader_whose_load_finds_no_row_releases_the_lease(
    cached_instance, redis_server: RedisServer
) -> None:
    async with two_instances(cached_instance) as (first, (app_b, second)):
        missing = str(uuid.uuid4())
        url = f"{HEROES}/{missing}"
        assert (await first.get(url)).status_code == 404
        assert redis_server.client().get(lease_key(missing)) is None
        await second_reader_loads_without_waiting(app_b, second, url, 404)


async def test_a_reader_whose_load_raises_releases_the_lease(
    cached_instance, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with two_instances(cached_instance) as (first, (app_b, second)):
        hero = (await first.post(HEROES, json=HERO)).json()
        url = f"{HEROES}/{hero['id']}"
        failing = Failing(hero["id"])
        with monkeypatch.context() as patch:
            patch_loads(patch, failing.wrap, "get")
            assert (await first.get(url)).status_code == 503
        assert redis_server.client().get(lease_key(hero["id"])) is None
        await second_reader_loads_without_waiting(app_b, second, url, 200)


async def test_a_cancelled_reader_releases_the_lease(
    cached_instance, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = Pause()
    patch_loads(monkeypatch, pause.wrap, "get")
    async with two_instances(cached_instance) as (first, (app_b, second)):
        hero, url = await create_hero_then_arm(first, pause)
        reader = await start_paused_read(first, pause, url)  # holds the lease, loading
        redis = redis_server.client()
        assert redis.get(lease_key(hero["id"])) is not None
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        deadline = time.monotonic() + RELEASE_WITHIN
        while redis.get(lease_key(hero["id"])) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert redis.get(lease_key(hero["id"])) is None, "the cancelled reader kept its lease"
        await second_reader_loads_without_waiting(app_b, second, url, 200)


# -- a fill needs the lease, which invalidations take away --------------------------------
async def test_a_paused_reader_cannot_fill_after_a_write_even_if_the_marker_was_evicted(
    cached_instance, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = Pause()
    patch_loads(monkeypatch, pause.wrap, "get")
    async with cached_instance(**settings()) as (app, client):
        hero, url = await create_hero_then_arm(client, pause)
        key = entry_key("hero", hero["id"])
        reader = await start_paused_read(client, pause, url)  # read version 1, not stored

        write = await client.patch(url, json={"name": "Io Moon"})
        assert write.status_code == 200 and write.json()["version"] == 2
        redis = redis_server.client()
        assert b'"version":2' in redis.get(key)  # the post-write marker
        assert redis.get(lease_key(hero["id"])) is None  # the invalidation took the lease
        assert redis.delete(key) == 1  # the marker evicted, as a memory policy may do

        sets = hero_stats(app).sets
        pause.resume.set()
        assert (await reader).json()["version"] == 1  # it began before the write
        assert hero_stats(app).sets == sets, "the fill of the old row was stored"
        assert redis.get(key) is None
        for _ in range(2):
            assert (await client.get(url)).json()["version"] == 2


async def test_a_paused_reader_cannot_fill_after_a_manual_demotion_and_eviction(
    cached_instance, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix made in SQL, then `DELETE /cache/heroes/{id}`: the reader that read the row
    before the fix loses its lease too."""
    pause = Pause()
    patch_loads(monkeypatch, pause.wrap, "get")
    async with cached_instance(**settings()) as (app, client):
        hero, url = await create_hero_then_arm(client, pause)
        pause.armed = False
        assert (await client.get(url)).status_code == 200  # cached: something to demote
        pause.armed = True
        redis = redis_server.client()
        key = entry_key("hero", hero["id"])
        redis.delete(key)  # a miss again, so that the next reader loads (and pauses)
        reader = await start_paused_read(client, pause, url)
        assert redis.get(lease_key(hero["id"])) is not None

        demoted = await client.delete(
            f"/cache/heroes/{hero['id']}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert demoted.status_code < 300, demoted.text
        assert redis.get(lease_key(hero["id"])) is None
        redis.delete(key)  # whatever the demotion left, evicted

        sets = hero_stats(app).sets
        pause.resume.set()
        await reader
        assert hero_stats(app).sets == sets
        assert redis.get(key) is None


async def test_an_early_refresh_happens_only_under_the_lease(
    cached_instance, redis_server: RedisServer
) -> None:
    """With a huge XFetch beta every hit is due for a refresh; while another process holds
    the entry's lease, the entry is served as it is and not reloaded."""
    async with cached_instance(**settings(cache_early_refresh_beta=1e15)) as (app, client):
        hero = (await client.post(HEROES, json=HERO)).json()
        url = f"{HEROES}/{hero['id']}"
        assert (await client.get(url)).status_code == 200  # miss, fill
        stats = hero_stats(app)
        redis = redis_server.client()

        redis.set(lease_key(hero["id"]), "another-process", px=LONG_LEASE_MS)
        loads, hits = stats.database_loads, stats.hits
        assert (await client.get(url)).status_code == 200
        assert (stats.database_loads, stats.hits) == (loads, hits + 1)
        assert redis.get(lease_key(hero["id"])) == b"another-process"

        redis.delete(lease_key(hero["id"]))
        assert (await client.get(url)).status_code == 200
        assert stats.database_loads == loads + 1  # refreshed, under its own lease
        assert redis.get(lease_key(hero["id"])) is None  # which the fill gave back
