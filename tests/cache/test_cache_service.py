"""CacheService's admin and health operations against a real redis-server, and their
fail-open behaviour when Redis is not there."""

from collections.abc import AsyncIterator

import pytest

from app.cache import format
from app.cache.service import CacheService, Marker
from app.core.settings import Settings
from app.entities import ENTITIES
from tests.cache.conftest import entity_keys, entry_key
from tests.conftest import make_settings
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer


def service_settings(redis_url: str) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", redis_url, redis_enabled=True)


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[CacheService]:
    redis_server.client().flushdb()
    async with CacheService(service_settings(redis_server.url), ENTITIES) as service:
        yield service


async def test_delete_entries_scans_in_batches_and_keeps_markers_counters_and_other_entities(
    cache: CacheService, redis_server: RedisServer
) -> None:
    redis = redis_server.client()
    await cache.health_check()  # its connection recognized the dataset first (identity.py)
    made = {key.decode() for key in redis.keys("*")}  # the identity and the epochs it set
    entry = format.entry(b"1", 1, 60, 1, b"{}")
    redis.mset({f"tales:hero:{n}": entry for n in range(1200)})
    kept = {
        "tales:hero:written": format.marker(3),
        "tales:hero:deleted": format.marker(format.DELETED_VERSION),
        "tales:gen:{hero.pages}:all": b"7",
        "tales:epoch:{hero.pages}": b"9",
        "tales:child:1": entry,
    }
    redis.mset(kept)

    assert await cache.delete_entries("hero") == 1200
    assert sorted(k.decode() for k in redis.keys("*")) == sorted(set(kept) | made)


async def test_health_check_reports_latency_and_breaker(cache: CacheService) -> None:
    health = await cache.health_check()
    assert health["status"] == "up"
    assert health["latency_ms"] >= 0
    assert health["breaker"] == "closed"


async def test_every_operation_degrades_when_redis_is_absent() -> None:
    settings = service_settings(f"redis://127.0.0.1:{free_port()}/0")
    async with CacheService(settings, ENTITIES) as cache:
        key = entry_key("hero", "00000000-0000-0000-0000-000000000001")
        assert await cache.peek_entry("hero", key) is None
        assert await cache.read_entry("hero", key, "tales:lease:x", "token") is None
        assert not await cache.invalidate("hero", [], ["tales:gen:{hero.pages}:all"], {"hero"})
        assert not await cache.demote("hero", [key])
        assert not await cache.move_epoch(["hero"])
        assert await cache.delete_entries("hero") == 0
        assert (await cache.health_check())["status"] == "down"
        assert cache.stats.snapshot()["total"]["errors"] >= 1
        assert cache.breaker_state() == "open"


async def test_disabled_service_opens_no_connection_and_answers_misses() -> None:
    settings = service_settings(f"redis://127.0.0.1:{free_port()}/0").model_copy(
        update={"redis_enabled": False}
    )
    async with CacheService(settings, ENTITIES) as cache:
        assert cache.redis is None
        key = entry_key("hero", "00000000-0000-0000-0000-000000000001")
        assert await cache.peek_entry("hero", key) is None
        assert (await cache.health_check())["status"] == "disabled"
        assert cache.stats.snapshot()["total"]["errors"] == 0


async def test_a_fill_holding_its_lease_never_stores_a_version_older_than_the_marker(
    cache: CacheService, redis_server: RedisServer
) -> None:
    """The version check alone, apart from the lease: a reader that holds the load lease
    (taken after the write's marker) still cannot store a version below that marker."""
    key = entry_key("hero", "00000000-0000-0000-0000-000000000003")
    lease = entity_keys("hero").lease(key)
    assert await cache.invalidate("hero", [Marker(key, 3, 60)], [], {"hero"})
    read = await cache.read_entry("hero", key, lease, "token-of-this-reader")
    assert read is not None and read.lease and read.floor == 3
    assert redis_server.client().get(lease) == b"token-of-this-reader"
    older = format.entry(read.at, 2, 60, 1, b"{}")
    assert not await cache.fill_entry("hero", key, lease, read, 2, older, "token-of-this-reader")
    assert redis_server.client().get(key) == format.marker(3)


async def test_a_late_marker_of_an_older_write_does_not_replace_a_newer_one(
    cache: CacheService, redis_server: RedisServer
) -> None:
    """Invalidations of two writes arriving out of order: the newer marker stays, and a fill
    of the version in between is refused."""
    key = entry_key("hero", "00000000-0000-0000-0000-000000000002")
    lease = entity_keys("hero").lease(key)
    assert await cache.invalidate("hero", [Marker(key, 3, 60)], [], {"hero"})
    assert await cache.invalidate("hero", [Marker(key, 2, 60)], [], {"hero"})  # the late one
    assert redis_server.client().get(key) == format.marker(3)
    read = await cache.read_entry("hero", key, lease, "")
    assert read is not None and read.floor == 3
    payload = format.entry(read.at, 2, 60, 1, b"{}")
    assert not await cache.fill_entry("hero", key, lease, read, 2, payload, "")
