"""Redis faults against a warmed cache: the service keeps answering correctly, the circuit
breaker opens after THRESHOLD failures and keeps reads about as fast as without a cache,
and cache hits resume within the cool-down once Redis is back.

Faults: the server SIGSTOPped (hangs: the kernel still accepts and buffers), SIGKILLed
(connection refused), and through a FaultProxy: 200 ms latency (4x the socket timeout),
blackhole (bytes swallowed, nothing answers) and reset (TCP RST).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.core.settings import Settings
from tests.api import payloads
from tests.resilience.conftest import (
    LONG_COOLDOWN,
    RECOVERY_WITHIN,
    SOCKET_TIMEOUT,
    THRESHOLD,
    Instance,
    Serve,
    eventually,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer

PROXY_LATENCY = 0.2  # seconds, well over the 50 ms socket timeout
READS = 30  # timed reads per instance


@dataclass
class Fault:
    name: str
    redis_url: str  # what the app connects to
    inject: Callable[[], None]
    recover: Callable[[], None]


FAULTS = ["sigstop-hang", "sigkill-refused", "proxy-latency", "proxy-blackhole", "proxy-reset"]


@pytest.fixture(params=FAULTS)
def fault(request: pytest.FixtureRequest, own_redis: RedisServer) -> Iterator[Fault]:
    name: str = request.param
    if name == "sigstop-hang":
        yield Fault(name, own_redis.url, own_redis.pause, own_redis.resume)
        return
    if name == "sigkill-refused":
        yield Fault(name, own_redis.url, own_redis.kill, own_redis.restart)
        return
    mode = name.removeprefix("proxy-")
    with FaultProxy(own_redis.host, own_redis.port) as proxy:
        yield Fault(
            name,
            proxy.url(),
            lambda: proxy.set_mode(mode, latency=PROXY_LATENCY),  # type: ignore[arg-type]
            lambda: proxy.set_mode("pass"),
        )


async def warm(cached: Instance, count: int = 3) -> list[dict[str, Any]]:
    """Create `count` heroes and read them (and the first list page) until they are hits."""
    heroes = [await cached.create_hero(payloads.hero(name=f"Hero {i}")) for i in range(count)]
    for hero in heroes:
        await cached.warm_hero(hero)
    page = await cached.warm_list()
    assert {item["id"] for item in page["items"]} == {hero["id"] for hero in heroes}
    return heroes


async def timed(call: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


@pytest.fixture
async def cached_and_uncached(
    fault: Fault, serve: Serve
) -> AsyncIterator[tuple[Instance, Instance]]:
    """An instance on the Redis that will fail, and one with the cache disabled: the truth
    to compare answers with."""
    async with (
        serve(fault.redis_url) as cached,
        serve(fault.redis_url, redis_enabled=False) as uncached,
    ):
        yield cached, uncached


async def test_every_request_answers_with_correct_data_while_redis_fails(
    fault: Fault, cached_and_uncached: tuple[Instance, Instance]
) -> None:
    cached, truth = cached_and_uncached
    heroes = await warm(cached)
    fault.inject()
    # round 0: the breaker is closed, then opens; round 1: once the cool-down has ended and a
    # half-open probe has failed again (the breaker opened again)
    for round_ in range(2):
        if round_:
            await failed_probe(cached)
        for hero in heroes:
            assert await cached.get_hero(hero["id"]) == await truth.get_hero(hero["id"])
        assert await cached.list_heroes() == await truth.list_heroes()

        created = await cached.create_hero(payloads.hero(name=f"New {round_}"))
        heroes.append(created)
        assert await cached.get_hero(created["id"]) == created

        before = await truth.get_hero(heroes[0]["id"])
        patched = await cached.patch_hero(heroes[0]["id"], {"name": f"Renamed {round_}"})
        assert patched["name"] == f"Renamed {round_}"
        assert patched["version"] == before["version"] + 1
        assert await cached.get_hero(heroes[0]["id"]) == patched
        assert await truth.get_hero(heroes[0]["id"]) == patched

        page = await cached.list_heroes()
        assert page == await truth.list_heroes()
        assert page["total"] == len(heroes)
        assert patched in page["items"] and created in page["items"]
    stats = await cached.cache_stats()
    # Redis really was failing throughout: open, or half-open while the repair task's probe
    # is waiting on the faulty Redis
    assert stats["breaker"] in ("open", "half_open"), stats
    assert stats["total"]["errors"] > THRESHOLD, stats  # including the failed probe


async def failed_probe(cached: Instance) -> None:
    """Return once the open breaker's cool-down has ended and a half-open probe (the repair
    task's or a request's) has failed on the faulty Redis: while the breaker is not closed,
    only a probe can add an error."""
    stats = await cached.cache_stats()
    assert stats["breaker"] in ("open", "half_open"), stats
    errors = stats["total"]["errors"]

    async def probed() -> bool:
        return (await cached.cache_stats())["total"]["errors"] > errors

    await eventually(probed, within=RECOVERY_WITHIN)


async def test_breaker_opens_after_threshold_failures_and_readiness_reports_degraded(
    fault: Fault, serve: Serve
) -> None:
    # no half-open probe while the test looks at the open breaker; no near cache, whose
    # entries keep answering without Redis until their lease lapses (500 ms), so that each
    # read below is one Redis lookup that fails
    async with serve(
        fault.redis_url, breaker_cooldown_seconds=LONG_COOLDOWN, cache_near_enabled=False
    ) as cached:
        [hero] = await warm(cached, 1)
        await cached.until_ready_ok()
        # errors a loaded machine may have caused during the warm-up do not count
        before = (await cached.cache_stats())["total"]["errors"]

        fault.inject()
        stats: dict[str, Any] = {}
        for _ in range(2 * THRESHOLD):
            assert await cached.get_hero(hero["id"]) == hero
            stats = await cached.cache_stats()
            errors = stats["total"]["errors"] - before
            assert errors > 0, stats
            assert stats["breaker"] == ("open" if errors >= THRESHOLD else "closed"), stats
            if stats["breaker"] == "open":
                break
        assert stats["breaker"] == "open", stats
        assert stats["status"] == "down"

        # open: Redis is not called any more (no new errors), requests still answer
        for _ in range(3):
            assert await cached.get_hero(hero["id"]) == hero
        assert (await cached.cache_stats())["total"]["errors"] == stats["total"]["errors"]

        ready = await cached.http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded", body
        assert body["cache"]["status"] == "down", body
        assert body["cache"]["breaker"] == "open", body
        assert body["database"]["status"] == "up", body


async def test_reads_with_open_breaker_cost_about_what_they_cost_without_cache(
    fault: Fault, serve: Serve
) -> None:
    # the breaker stays open for the whole measurement: no half-open probe in between
    async with (
        serve(fault.redis_url, breaker_cooldown_seconds=LONG_COOLDOWN) as cached,
        serve(fault.redis_url, redis_enabled=False) as plain,
    ):
        [hero] = await warm(cached, 1)
        for _ in range(5):  # the uncached app's connection pool warms up too
            await plain.get_hero(hero["id"])
        fault.inject()
        await cached.open_breaker(hero["id"])
        before = cached.app.state.services.cache.stats["hero"].as_dict()

        with_breaker: list[float] = []
        without_cache: list[float] = []
        for _ in range(READS):  # interleaved, so machine noise hits both alike
            with_breaker.append(await timed(cached.get_hero(hero["id"])))
            without_cache.append(await timed(plain.get_hero(hero["id"])))

        after = cached.app.state.services.cache.stats["hero"].as_dict()
        assert await cached.breaker() == "open"  # the figures were taken during the fault
    # what makes them cost the same: not one of the reads waited on the faulty Redis (any
    # call to it fails, and none did), each read went straight to the database
    assert after["errors"] == before["errors"], (before, after)
    assert after["hits"] == before["hits"], (before, after)
    assert after["misses"] - before["misses"] == READS, (before, after)
    assert after["database_loads"] - before["database_loads"] == READS, (before, after)
    open_ms = statistics.median(with_breaker) * 1000
    plain_ms = statistics.median(without_cache) * 1000
    print(
        f"\n[{fault.name}] median GET by id over {READS}: breaker open {open_ms:.2f} ms, "
        f"REDIS_ENABLED=false {plain_ms:.2f} ms"
    )
    # the counts above prove that no read waited on Redis; the medians of interleaved reads
    # bound what a read costs, with room for a loaded machine (one socket timeout on top)
    assert open_ms <= 5 * plain_ms + 1000 * SOCKET_TIMEOUT, (open_ms, plain_ms)


async def test_cache_hits_resume_within_the_cooldown_after_redis_recovers(
    fault: Fault, serve: Serve
) -> None:
    async with serve(fault.redis_url) as cached:
        [hero] = await warm(cached, 1)
        fault.inject()
        await cached.open_breaker(hero["id"])

        fault.recover()
        took = await cached.until_hits_again(hero, within=RECOVERY_WITHIN)
        print(f"\n[{fault.name}] cache hits again {took * 1000:.0f} ms after recovery")
        await cached.until_ready_ok(within=RECOVERY_WITHIN)


async def test_hung_redis_never_holds_a_request_for_client_library_defaults(
    own_redis: RedisServer, serve: Serve
) -> None:
    """redis-py on its own waits forever (no socket timeout) and retries; the service's
    default settings must cut every Redis call a request makes at their deadline (0.35 s),
    while Redis hangs."""
    defaults = {
        name: Settings.model_fields[name].default
        for name in (
            "redis_socket_timeout",
            "redis_connect_timeout",
            "redis_pool_timeout",
            "breaker_failure_threshold",
            "breaker_cooldown_seconds",
        )
    }
    deadline = (
        defaults["redis_pool_timeout"]
        + defaults["redis_connect_timeout"]
        + 2 * defaults["redis_socket_timeout"]
    )  # `app.cache.connection.operation_timeout`
    # no near cache: its entry would answer without Redis until its lease lapses
    async with serve(own_redis.url, **defaults, cache_near_enabled=False) as cached:
        [hero] = await warm(cached, 1)
        errors = (await cached.cache_stats())["entities"]["hero"]["errors"]
        own_redis.pause()
        started = time.perf_counter()
        assert await cached.get_hero(hero["id"]) == hero
        took = time.perf_counter() - started
        stats = await cached.cache_stats()
    # the request did wait on the hung Redis: the calls it made failed
    calls = stats["entities"]["hero"]["errors"] - errors
    assert calls >= 1, stats
    print(f"\nGET by id with Redis hung: {took * 1000:.0f} ms, {calls} failed Redis calls")
    # a miss makes two Redis calls (the hit path's read, the miss path's read taking the
    # lease), each cut at the deadline: with 3x room for a loaded machine, still far from
    # redis-py's defaults (no socket timeout: the request would never answer)
    assert took < 3 * 2 * deadline, (took, calls, deadline)
