"""Faults of the cache mechanism, against a real redis-server: a cancelled half-open probe,
DEMOTE of the largest version, the lease release script, and the key salt generated once and
shared through Redis when `CACHE_KEY_SALT` is empty."""

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.cache import format
from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.guard import FAILED, RedisGuard
from app.cache.keys import DIGEST_BYTES, SaltUnknown
from app.cache.service import CacheService
from app.cache.stats import CacheStats
from app.core.settings import Settings
from app.entities import ENTITIES
from tests.conftest import make_settings
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

COOLDOWN = 2.0
CHILD_NAME = "Zoë Secretname"


def service_settings(redis_url: str, **overrides: object) -> Settings:
    return make_settings(
        "sqlite+aiosqlite:///unused.db", redis_url, redis_enabled=True, **overrides
    )


@pytest.fixture
async def cache(clean_redis: RedisServer) -> AsyncIterator[CacheService]:
    async with CacheService(service_settings(clean_redis.url), ENTITIES) as service:
        yield service


# -- the breaker never stays half-open -----------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def no_epoch_moves(_redis: Redis, _epochs: list[str]) -> None:
    return None


async def test_a_cancelled_probe_through_the_guard_reopens_the_breaker(
    clean_redis: RedisServer,
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_seconds=COOLDOWN, clock=clock)
    redis = Redis.from_url(clean_redis.url)
    guard = RedisGuard(
        redis,
        timeout=5.0,
        breaker=breaker,
        stats=CacheStats(["hero"]),
        epoch_keys={},
        move_epochs=no_epoch_moves,
        secrets=(),
    )
    try:
        breaker.record_failure()  # an outage opened it
        assert await guard.run("hero", lambda r: r.ping()) is FAILED  # cooling down
        clock.now += COOLDOWN

        started, never = asyncio.Event(), asyncio.Event()

        async def hanging_probe(_redis: Redis) -> None:
            started.set()
            await never.wait()

        probe = asyncio.create_task(guard.run("hero", hanging_probe))
        await asyncio.wait_for(started.wait(), 5)
        assert breaker.state is BreakerState.half_open
        probe.cancel()  # e.g. the client went away
        with pytest.raises(asyncio.CancelledError):
            await probe

        assert breaker.state is BreakerState.open  # not half-open with nobody probing
        assert await guard.run("hero", lambda r: r.ping()) is FAILED  # a fresh cool-down
        clock.now += COOLDOWN
        assert await guard.run("hero", lambda r: r.ping()) is True  # probed again
        assert breaker.state is BreakerState.closed
    finally:
        await guard.close()
        await redis.aclose()


# -- DEMOTE keeps the version's digits -----------------------------------------------------
@pytest.mark.parametrize("stored", ["delete marker", "entry"])
async def test_demote_keeps_the_largest_version_exactly(
    cache: CacheService, clean_redis: RedisServer, stored: str
) -> None:
    key = cache.keys["hero"].entry(uuid.UUID(int=7))
    value = (
        format.marker(format.DELETED_VERSION)
        if stored == "delete marker"
        else format.entry(b"1", format.DELETED_VERSION, 60, 1, b"{}")
    )
    redis = clean_redis.client()
    redis.set(key, value)

    assert await cache.demote("hero", [key])

    demoted = redis.get(key)
    assert format.version_of(demoted) == format.DELETED_VERSION, demoted
    assert b"e+" not in demoted
    read = await cache.peek_entry("hero", key)
    assert read is not None and read.value is None and read.deleted


# -- releasing a lease ---------------------------------------------------------------------
async def test_a_lease_is_released_only_by_its_holder(
    cache: CacheService, clean_redis: RedisServer
) -> None:
    redis = clean_redis.client()
    redis.set("tales:lease:hero:x", "mine", px=60_000)
    await cache.release_lease("hero", "tales:lease:hero:x", "someone else's")
    assert redis.get("tales:lease:hero:x") == b"mine"
    await cache.release_lease("hero", "tales:lease:hero:x", "mine")
    assert redis.get("tales:lease:hero:x") is None


# -- the key salt --------------------------------------------------------------------------
def unkeyed(name: str) -> str:
    return "#" + hashlib.blake2b(name.encode(), digest_size=DIGEST_BYTES).hexdigest()


async def test_without_a_configured_salt_processes_share_one_generated_in_redis(
    clean_redis: RedisServer,
) -> None:
    settings = service_settings(clean_redis.url)
    assert settings.cache_key_salt.get_secret_value() == ""
    async with (
        CacheService(settings, ENTITIES) as first,
        CacheService(settings, ENTITIES) as second,
    ):
        assert not first.keys_ready
        await first.warm_up()
        await second.warm_up()
        salt = clean_redis.client().get(format.key_salt("tales:"))
        assert salt is not None and len(salt) >= 32
        assert clean_redis.client().ttl(format.key_salt("tales:")) == -1  # never expires
        pages = [
            service.keys["child"].page({"name": CHILD_NAME}, 20, 0).base
            for service in (first, second)
        ]
        assert pages[0] == pages[1]
        scope = first.keys["child"].scope_of("name", CHILD_NAME)
        assert unkeyed(CHILD_NAME) not in pages[0] and unkeyed(CHILD_NAME) not in scope
        assert "Zo" not in pages[0]

    other = service_settings(clean_redis.url, cache_key_prefix="other:")
    async with CacheService(other, ENTITIES) as third:  # another prefix: its own salt
        await third.warm_up()
        assert third.keys["child"].page({"name": CHILD_NAME}, 20, 0).base.removeprefix(
            "other:"
        ) != pages[0].removeprefix("tales:")


async def test_a_configured_salt_is_used_and_nothing_is_stored(clean_redis: RedisServer) -> None:
    settings = service_settings(clean_redis.url, cache_key_salt="configured")
    async with CacheService(settings, ENTITIES) as cache:
        assert cache.keys_ready
        await cache.warm_up()
        assert clean_redis.client().get(format.key_salt("tales:")) is None


async def test_without_redis_personal_values_are_not_named_in_keys() -> None:
    settings = service_settings(f"redis://127.0.0.1:{free_port()}/0")
    async with CacheService(settings, ENTITIES) as cache:
        await cache.warm_up()
        assert not await cache.load_key_salt()
        with pytest.raises(SaltUnknown):
            cache.keys["child"].page({"name": CHILD_NAME}, 20, 0)
        assert cache.keys["hero"].page({"name": CHILD_NAME}, 20, 0)  # not personal


async def eventually(condition, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_generated_salt_lost_by_redis_is_offered_again_or_replaced(
    clean_redis: RedisServer,
) -> None:
    """After an epoch move (an outage, a Redis that lost its data) the process offers its
    salt again; if another process's salt is there, it takes that one and moves its epochs
    (its invalidations meanwhile named other keys than that process's pages)."""
    redis = clean_redis.client()
    salt_key = format.key_salt("tales:")
    async with CacheService(service_settings(clean_redis.url), ENTITIES) as cache:
        await cache.warm_up()
        ours = redis.get(salt_key)
        page = cache.keys["child"].page({"name": CHILD_NAME}, 20, 0).base

        redis.delete(salt_key)  # Redis restarted empty
        cache.guard.epochs_moved()
        await eventually(lambda: redis.get(salt_key) == ours)
        assert cache.keys["child"].page({"name": CHILD_NAME}, 20, 0).base == page

        redis.set(salt_key, b"0123456789abcdef" * 4)  # another process got there first
        hero_key = cache.keys["hero"].entry(uuid.UUID(int=1))
        epoch_key = cache.keys["hero"].epoch_of(hero_key)
        epoch = redis.get(epoch_key)
        cache.guard.epochs_moved()
        await eventually(lambda: cache.encoder.salt == b"0123456789abcdef" * 4)
        assert cache.keys["child"].page({"name": CHILD_NAME}, 20, 0).base != page
        await cache.peek_entry("hero", hero_key)
        assert redis.get(epoch_key) != epoch  # moved before this read
