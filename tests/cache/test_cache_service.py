"""CacheService's generic operations against a real redis-server, and their fail-open
behaviour when Redis is not there."""

from collections.abc import AsyncIterator

import pytest

from app.cache.service import CacheService
from app.core.settings import Settings
from tests.conftest import make_settings
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

ENTITIES = ["hero", "child", "story"]


def service_settings(redis_url: str) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", redis_url, redis_enabled=True)


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[CacheService]:
    redis_server.client().flushdb()
    async with CacheService(service_settings(redis_server.url), ENTITIES) as service:
        yield service


async def test_set_get_exists_ttl_and_delete(cache: CacheService) -> None:
    assert await cache.get("tales:k") is None
    assert await cache.set("tales:k", b"v", ttl=100)
    assert await cache.get("tales:k") == b"v"
    assert await cache.exists("tales:k")
    assert 95 <= (await cache.get_ttl("tales:k") or 0) <= 100
    assert await cache.delete("tales:k") == 1
    assert not await cache.exists("tales:k")
    assert await cache.get_ttl("tales:k") is None


async def test_set_without_ttl_uses_the_default_ttl(cache: CacheService) -> None:
    await cache.set("tales:k", "v")
    ttl = await cache.get_ttl("tales:k")
    assert ttl is not None and cache.settings.cache_default_ttl - 5 <= ttl


async def test_delete_pattern_treats_glob_characters_as_literals(
    cache: CacheService, redis_server: RedisServer
) -> None:
    redis = redis_server.client()
    for key in ("tales:a*:1", "tales:a*:2", "tales:ab:1", "tales:a?:1", "other:a*:1"):
        redis.set(key, "x")
    assert await cache.delete_pattern("tales:a*:") == 2
    assert sorted(k.decode() for k in redis.keys("*")) == ["other:a*:1", "tales:a?:1", "tales:ab:1"]


async def test_delete_pattern_scans_in_batches(
    cache: CacheService, redis_server: RedisServer
) -> None:
    redis = redis_server.client()
    redis.mset({f"tales:bulk:{n}": "x" for n in range(1200)})
    assert await cache.delete_pattern("tales:bulk:") == 1200
    assert redis.dbsize() == 0


async def test_health_check_reports_latency_and_breaker(cache: CacheService) -> None:
    health = await cache.health_check()
    assert health["status"] == "up"
    assert health["latency_ms"] >= 0
    assert health["breaker"] == "closed"


async def test_every_operation_degrades_when_redis_is_absent() -> None:
    settings = service_settings(f"redis://127.0.0.1:{free_port()}/0")
    async with CacheService(settings, ENTITIES) as cache:
        assert await cache.get("tales:k") is None
        assert not await cache.set("tales:k", b"v")
        assert await cache.delete("tales:k") == 0
        assert not await cache.exists("tales:k")
        assert await cache.get_ttl("tales:k") is None
        assert await cache.delete_pattern("tales:") == 0
        assert (await cache.health_check())["status"] == "down"
        assert cache.stats.snapshot()["total"]["errors"] >= 5
        assert cache.breaker_state() == "open"


async def test_disabled_service_opens_no_connection_and_answers_misses() -> None:
    settings = service_settings(f"redis://127.0.0.1:{free_port()}/0").model_copy(
        update={"redis_enabled": False}
    )
    async with CacheService(settings, ENTITIES) as cache:
        assert cache.redis is None
        assert await cache.get("tales:k") is None
        assert (await cache.health_check())["status"] == "disabled"
        assert cache.stats.snapshot()["total"]["errors"] == 0
