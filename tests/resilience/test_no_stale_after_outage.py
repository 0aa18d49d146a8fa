"""A write whose cache invalidation is lost in a Redis outage is never hidden by the old
cached entry once Redis is back: the writer sends the invalidation again (it is owed) before
it reads Redis again; back from an outage it saw, a process applies every outbox row (every
write's invalidation not known applied) before reading; and a Redis restarted with older
data is recognized by its identity on the first new connection (`app/cache/identity.py`).
No epoch moves as a precaution.

A SIGSTOPped Redis still has its kernel accept connections and buffer what is written to
them, and the resumed server executes those buffered commands late. An invalidation written
to an already open connection during the hang would therefore only be delayed, not lost, and
could not tell the epoch move apart from the late invalidation. The tests drop the idle pooled
connections before the hang: the write's invalidation then needs a new connection, whose
handshake times out before the invalidation is ever sent - it is really lost, which the tests
check by finding the old entry still in Redis after the resume.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.settings import MAX_REPAIR_BOUND_MS
from tests.api import payloads
from tests.cache.conftest import entry_key
from tests.resilience.conftest import (
    LONG_COOLDOWN,
    RECOVERY_WITHIN,
    Instance,
    Serve,
    eventually,
    outbox_of,
)
from tests.support.redis_server import RedisServer

#: These tests isolate the Redis layer's repair of a lost invalidation (one failure, breaker
#: closed): a near cache's heartbeats would add failures during the hang and open the
#: breaker, whose half-open probe would repair it too. tests/near covers the near cache.
REDIS_LAYER_ONLY: dict[str, object] = {"cache_near_enabled": False}

#: instance 1, instance 2, and the hero both have cached
TwoInstances = tuple[Instance, Instance, dict[str, Any]]


async def warm(instance: Instance, hero: dict[str, Any]) -> None:
    """Read the hero and the first list page until both are cache hits."""
    await instance.warm_hero(hero)
    await instance.warm_list()


async def drop_idle_redis_connections(instance: Instance) -> None:
    await instance.app.state.services.cache.redis.connection_pool.disconnect()


def cached_version(server: RedisServer, hero_id: str) -> int | None:
    """The version of the hero's cached entry (None: no entry, only a marker or nothing)."""
    raw = server.client(socket_timeout=1.0).get(entry_key("hero", str(hero_id)))
    if raw is None or not raw.startswith(b'{"state":"entry"'):
        return None
    return int(raw.split(b'"version":', 1)[1].split(b",", 1)[0])


async def assert_sees(instance: Instance, patched: dict[str, Any], old_name: str) -> None:
    """Every read path shows the written version, several times over (fill, then hits)."""
    hits = await instance.hero_hits()
    for _ in range(3):
        assert await instance.get_hero(patched["id"]) == patched
        page = await instance.list_heroes()
        assert patched in page["items"]
        assert all(item["name"] != old_name for item in page["items"])
        by_old_name = await instance.list_heroes(name=old_name)
        assert by_old_name["items"] == [] and by_old_name["total"] == 0
    # the repeated reads were served from Redis again, not only from the database
    assert await instance.hero_hits() >= hits + 2


async def row_deleted(instance: Instance, deleted_before: int) -> bool:
    """The outbox deleted one more applied row than `deleted_before`."""
    return outbox_of(instance).stats.deleted > deleted_before


async def create_luna_and_warm(instance: Instance) -> dict[str, Any]:
    """Create the hero Luna; her entry, the first list page and the list by her name (the old
    name after the tests' write) are then cache hits."""
    hero = await instance.create_hero(payloads.hero(name="Luna"))
    await instance.warm_list(name="Luna")
    await warm(instance, hero)
    return hero


async def test_write_during_redis_hang_is_read_back_after_resume(
    own_redis: RedisServer, serve: Serve
) -> None:
    async with serve(own_redis.url, **REDIS_LAYER_ONLY) as api:
        hero = await create_luna_and_warm(api)
        await drop_idle_redis_connections(api)

        own_redis.pause()
        patched = await api.patch_hero(hero["id"], {"name": "Luna Moon"})
        assert patched["version"] == hero["version"] + 1
        own_redis.resume()

        assert cached_version(own_redis, hero["id"]) == hero["version"]  # invalidation lost
        assert await api.breaker() == "closed"  # one failure: this is the lost-write path
        await assert_sees(api, patched, old_name="Luna")


async def test_write_while_redis_is_down_is_read_back_when_it_restarts_with_old_entries(
    serve: Serve,
) -> None:
    with RedisServer(appendonly=True) as server:
        async with serve(server.url, **REDIS_LAYER_ONLY) as api:
            hero = await create_luna_and_warm(api)

            server.kill()
            patched = await api.patch_hero(hero["id"], {"name": "Luna Moon"})
            server.restart()

            # the AOF brought the old entry back: without the epoch move it would be served
            assert cached_version(server, hero["id"]) == hero["version"]
            await assert_sees(api, patched, old_name="Luna")


# Two instances sharing one Redis, the write through instance 1 during the hang.
#
# Instance 1 lost its invalidation, so it sends it again before its own next Redis call; from
# then on no instance can serve the old entry. An instance 2 that did notice the outage (its
# breaker opened) applies every outbox row, on its half-open probe, before it reads Redis
# again (no epoch moves). One that did not notice it is covered by the outbox's periodic
# repair: the write's row is applied by any live process within CACHE_REPAIR_BOUND_MS even if
# instance 1 stays idle or exits (tests/resilience/test_outbox.py).


@pytest.fixture
async def two_warm_instances(own_redis: RedisServer, serve: Serve) -> AsyncIterator[TwoInstances]:
    """Instances 1 and 2 on `own_redis`, and the hero Luna, created through instance 1 and
    read through each until her entry and the first list page are hits. Instance 1's idle
    Redis connections are dropped: its write during a hang loses its invalidation."""
    async with (
        serve(own_redis.url, **REDIS_LAYER_ONLY) as one,
        serve(own_redis.url, **REDIS_LAYER_ONLY) as two,
    ):
        hero = await one.create_hero(payloads.hero(name="Luna"))
        await warm(one, hero)
        await warm(two, hero)
        await drop_idle_redis_connections(one)
        yield one, two, hero


async def test_write_through_one_instance_during_hang_is_read_back_by_both_after_writer_reads(
    own_redis: RedisServer, two_warm_instances: TwoInstances
) -> None:
    one, two, hero = two_warm_instances
    own_redis.pause()
    patched = await one.patch_hero(hero["id"], {"name": "Luna Moon"})
    own_redis.resume()
    assert cached_version(own_redis, hero["id"]) == hero["version"]  # invalidation lost

    await assert_sees(one, patched, old_name="Luna")
    await assert_sees(two, patched, old_name="Luna")


async def test_instance_that_saw_the_outage_applies_the_outbox_before_it_reads_again(
    own_redis: RedisServer, serve: Serve
) -> None:
    """Instance 1 writes while its breaker is open: its invalidation is owed and its outbox
    row stays; instance 1 then stays away from Redis (a long cool-down) and no periodic
    repair comes within the test (the largest bound). Instance 2 saw the outage too: its
    half-open probe applies every outbox row before it reads Redis again, so no read shows
    the old version - and no epoch moved: the rest of the cache stays warm."""
    quiet = {**REDIS_LAYER_ONLY, "cache_repair_bound_ms": MAX_REPAIR_BOUND_MS}
    async with (
        serve(own_redis.url, **quiet, breaker_cooldown_seconds=LONG_COOLDOWN) as one,
        serve(own_redis.url, **quiet) as two,
    ):
        hero, other = [await one.create_hero(payloads.hero(name=name)) for name in ("Luna", "Sol")]
        for instance, warmed in ((one, hero), (two, hero), (two, other)):
            await warm(instance, warmed)
        epoch = own_redis.client(socket_timeout=1.0).get("tales:epoch:hero")
        own_redis.pause()
        await one.open_breaker(hero["id"])
        await two.open_breaker(hero["id"])
        patched = await one.patch_hero(hero["id"], {"name": "Luna Moon"})
        own_redis.resume()
        assert cached_version(own_redis, hero["id"]) == hero["version"]  # invalidation lost
        assert one.app.state.services.cache.guard.owed == 1
        assert await one.breaker() == "open"  # and instance 1 stays away

        await two.until_hits_again(patched, within=RECOVERY_WITHIN)  # never the old one
        assert two.app.state.services.outbox.stats.repaired >= 1
        assert own_redis.client(socket_timeout=1.0).get("tales:epoch:hero") == epoch
        hits = await two.hero_hits()
        assert await two.get_hero(other["id"]) == other
        assert await two.hero_hits() == hits + 1  # still cached: nothing went cold
        await assert_sees(two, patched, old_name="Luna")


async def test_redis_restarted_from_an_older_snapshot_is_not_served_after_the_outage(
    own_redis: RedisServer, serve: Serve
) -> None:
    """The write's invalidation reached Redis, but Redis then lost it: it restarted from a
    snapshot taken before the write (as a failover to a lagging replica would). This process
    has no lost invalidation of its own to repair, and the write's outbox row is gone (it was
    applied): what protects the reads is the identity check of the first new connection to
    the restarted server, which moves the epochs (evidence: another run id)."""
    async with serve(own_redis.url) as api:
        hero = await create_luna_and_warm(api)
        own_redis.client(socket_timeout=1.0).save()  # the snapshot: Luna's v1 entry, cached
        deleted = outbox_of(api).stats.deleted
        patched = await api.patch_hero(hero["id"], {"name": "Luna Moon"})
        assert cached_version(own_redis, hero["id"]) is None  # the marker replaced it
        # The writer deletes the row it applied on the outbox's next tick. Until then the
        # recovery would send the invalidation again and hide a stale entry from this test.
        await eventually(lambda: row_deleted(api, deleted), within=RECOVERY_WITHIN)

        own_redis.kill()  # no save on the way down: it restarts from the older snapshot
        await api.open_breaker(hero["id"])
        # A pooled connection to the killed server would fail the first read after the
        # restart, and the miss path taken then would overwrite the old entry before any hit
        # could show it: the first read must find the old entry.
        await drop_idle_redis_connections(api)
        own_redis.restart()
        assert cached_version(own_redis, hero["id"]) == hero["version"]  # the old entry is back

        await api.until_hits_again(patched, within=RECOVERY_WITHIN)  # never the old one
        await assert_sees(api, patched, old_name="Luna")
