"""The near cache keeps every guarantee: a read that starts after a write was acknowledged,
on any instance, never gets the older version — with the invalidation delayed, lost,
racing a near fill, or Redis hung. Each race is reached by waiting on a signal."""

import asyncio
import time
from typing import Any

import pytest

from app.cache.service import CacheService
from tests.near.conftest import (
    LEASE,
    SIGNAL_TIMEOUT,
    NearInstance,
    bus_of,
    create_hero,
    get,
    near_copy,
    serving,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer

#: Room for a loaded machine on top of a bound the service promises (seconds).
MARGIN = 2.0


async def test_a_write_on_one_instance_is_read_by_another_that_held_a_near_copy(
    near_instance: NearInstance,
) -> None:
    async with near_instance() as (_app_a, a), near_instance() as (app_b, b):
        _hero, url = await create_hero(a)
        assert (await near_copy(app_b, b, url)).json()["version"] == 1

        assert (await a.patch(url, json={"age": 8})).status_code == 200

        answer, _near = await get(app_b, b, url)
        assert answer.json()["version"] == 2
        assert (await near_copy(app_b, b, url)).json()["version"] == 2  # near again, v2


async def test_a_delayed_invalidation_holds_the_write_until_it_was_applied(
    near_instance: NearInstance, proxy: FaultProxy
) -> None:
    """B hears Redis late (every byte delayed); A's write is acknowledged only once B has
    applied its invalidation."""
    async with near_instance() as (_app_a, a), near_instance(proxy.url()) as (app_b, b):
        _hero, url = await create_hero(a)
        await near_copy(app_b, b, url)
        applied = bus_of(app_b).applied
        proxy.set_mode("latency", latency=LEASE / 4)

        assert (await a.patch(url, json={"age": 8})).status_code == 200
        assert bus_of(app_b).applied == applied + 1  # applied before A answered

        assert (await get(app_b, b, url))[0].json()["version"] == 2


async def test_a_lost_invalidation_holds_the_write_at_most_the_lease_and_is_never_missed(
    near_instance: NearInstance, proxy: FaultProxy
) -> None:
    """B's link to Redis black-holed: B never hears the invalidation. A's write waits for B
    at most L, and by then B no longer serves near copies. When the link comes back, B's
    subscription is the same connection, silent meanwhile: B starts again from an empty near
    cache. (B's breaker is kept closed: its half-open probe would apply the write's outbox
    row, and its outage drop its near copies, which is not what this test is about.)"""
    patient = {"breaker_failure_threshold": 1_000_000}
    async with (
        near_instance() as (_app_a, a),
        near_instance(proxy.url(), **patient) as (
            app_b,
            b,
        ),
    ):
        _hero, url = await create_hero(a)
        await near_copy(app_b, b, url)
        applied = bus_of(app_b).applied
        proxy.set_mode("blackhole")

        started = time.monotonic()
        assert (await a.patch(url, json={"age": 8})).status_code == 200
        assert time.monotonic() - started < LEASE + MARGIN  # a dead subscriber holds it ≤ L

        answer, near = await get(app_b, b, url)
        assert answer.json()["version"] == 2 and not near
        assert bus_of(app_b).applied == applied  # it really never heard of the write

        proxy.set_mode("pass")
        await serving(app_b)
        assert (await get(app_b, b, url))[0].json()["version"] == 2


async def test_an_invalidation_racing_a_near_fill_keeps_the_older_bytes_out(
    near_instance: NearInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B read v1 from Redis; before B's near cache stores it, A's write is applied on B.
    B's answer may be v1 (it started before the write), but the near cache must not keep it."""
    held = asyncio.Event()
    release = asyncio.Event()
    original = CacheService.peek_entry
    hold_next = False

    async def peek_then_hold(self: CacheService, *args: Any) -> Any:
        nonlocal hold_next
        read = await original(self, *args)
        if hold_next and self is cache_b:
            hold_next = False
            held.set()
            await release.wait()
        return read

    monkeypatch.setattr(CacheService, "peek_entry", peek_then_hold)
    async with near_instance() as (_app_a, a), near_instance() as (app_b, b):
        cache_b = app_b.state.services.cache
        _hero, url = await create_hero(a)
        await b.get(url)  # in Redis now
        await serving(app_b)
        # The first read is kept near too if B's bus was already serving then (B's start-up
        # took long enough): the next read must be a Redis hit, so B starts with no copy.
        bus_of(app_b).store.clear()
        hold_next = True
        reader = asyncio.create_task(b.get(url))  # a Redis hit, held before it is kept
        async with asyncio.timeout(SIGNAL_TIMEOUT):
            await held.wait()

        assert (await a.patch(url, json={"age": 8})).status_code == 200
        release.set()
        assert (await reader).json()["version"] == 1  # it started before the write

        assert (await get(app_b, b, url))[0].json()["version"] == 2
        assert len(bus_of(app_b).store) <= 1  # only the new version may be kept


async def test_a_write_while_redis_hangs_is_read_on_the_other_instance(
    near_instance: NearInstance, own_redis: RedisServer
) -> None:
    """Redis hangs (SIGSTOP): A's write cannot be invalidated, and is acknowledged only once
    no near copy can still be served; B then reads the write, during the hang and after it
    (B's subscription never broke, but it lapsed, so its near cache starts empty again)."""
    fast = {"redis_socket_timeout": 0.02, "redis_connect_timeout": 0.02, "redis_pool_timeout": 0.02}
    async with near_instance(**fast) as (app_a, a), near_instance(**fast) as (app_b, b):
        _hero, url = await create_hero(a)
        await near_copy(app_b, b, url)
        # the write's invalidation must need a new connection, whose handshake times out: it
        # is lost, not merely delayed in a socket buffer until Redis resumes
        await app_a.state.services.cache.redis.connection_pool.disconnect()
        own_redis.pause()
        try:
            started = time.monotonic()
            assert (await a.patch(url, json={"age": 8})).status_code == 200
            assert time.monotonic() - started >= LEASE  # held until no near copy survives
            answer, near = await get(app_b, b, url)
            assert answer.json()["version"] == 2 and not near
        finally:
            own_redis.resume()
        await serving(app_b)
        assert (await get(app_b, b, url))[0].json()["version"] == 2


async def test_the_near_cache_is_dropped_when_its_subscription_breaks(
    near_instance: NearInstance, own_redis: RedisServer
) -> None:
    """Only the subscription is cut (Redis otherwise fine, a long L): what was published
    meanwhile may be lost, so every near copy goes at once, not when L runs out."""
    async with near_instance(cache_near_lease_ms=5000) as (app, client):
        _hero, url = await create_hero(client)
        await near_copy(app, client, url)
        bus = bus_of(app)
        assert len(bus.store) == 1
        own_redis.client().client_kill_filter(_type="pubsub")
        async with asyncio.timeout(SIGNAL_TIMEOUT):
            while len(bus.store):
                await asyncio.sleep(0.01)
        await serving(app)  # subscribed again, from an empty near cache
        assert (await near_copy(app, client, url)).json()["version"] == 1
