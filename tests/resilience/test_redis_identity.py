"""A Redis that comes back with older data is recognized before anything is read from it
(`app/cache/identity.py`).

The case the other mechanisms do not see: Redis restarts quickly from a snapshot taken before
a write (as `appendfsync everysec` losing its last second, or a failover to a lagging replica,
would), and no instance saw an outage long enough to open its breaker. The write's
invalidation had reached Redis, so no instance owes an epoch move; the old entry is back.
Before the identity check, both instances served it: 108 stale reads in 3 s.
"""

from __future__ import annotations

import time
from typing import Any

from tests.api import payloads
from tests.resilience.conftest import RELAXED, Instance, Serve, eventually
from tests.resilience.test_no_stale_after_outage import cached_version
from tests.support.redis_server import RedisServer

#: No outage is long enough to open a breaker here: its half-open probe would move the
#: epochs and hide what this test is about.
NO_BREAKER: dict[str, object] = {**RELAXED, "breaker_failure_threshold": 1_000_000}
#: How long both instances are read after the restart (the earlier report's window).
READ_FOR_SECONDS = 3.0
#: Hits come back within this (a miss and a fill on each instance).
HITS_WITHIN = 5.0


def identity_of(server: RedisServer) -> str | None:
    value: bytes | None = server.client(socket_timeout=1.0).get("tales:identity")
    return None if value is None else value.decode()


async def hero_hits(instance: Instance) -> int:
    return await instance.hero_hits()


async def test_redis_restarted_from_an_older_snapshot_is_recognized_by_both_instances(
    own_redis: RedisServer, serve: Serve
) -> None:
    async with serve(own_redis.url, **NO_BREAKER) as one, serve(own_redis.url, **NO_BREAKER) as two:
        hero = await one.create_hero(payloads.hero(name="Luna"))
        for instance in (one, two):
            await instance.warm_hero(hero)
        before = identity_of(own_redis)
        first_run_id = server_run_id(own_redis)

        own_redis.client(socket_timeout=1.0).save()  # the snapshot: Luna's v1 entry, cached
        patched = await one.patch_hero(hero["id"], {"name": "Luna Moon"})
        for instance in (one, two):
            assert await instance.get_hero(hero["id"]) == patched

        own_redis.kill()  # no save on the way down: it restarts from the older snapshot
        own_redis.restart()
        assert cached_version(own_redis, hero["id"]) == hero["version"]  # the old entry is back
        assert identity_of(own_redis) == before  # the snapshot holds the old identity too

        stale: list[tuple[str, Any]] = []
        reads = 0
        until = time.monotonic() + READ_FOR_SECONDS
        while time.monotonic() < until:
            for name, instance in (("one", one), ("two", two)):
                got = await instance.get_hero(hero["id"])
                reads += 1
                if got != patched:
                    stale.append((name, got["name"]))
        assert not stale, f"{len(stale)} stale reads of {reads}: {stale[:5]}"

        # The dataset was recognized once, by whichever instance connected first; both
        # instances noticed the change, and the cache works again on both.
        assert before is not None and before.split()[0] == first_run_id
        after = identity_of(own_redis)
        assert after is not None and after != before
        assert after.split()[0] == server_run_id(own_redis)
        for instance in (one, two):
            identity = instance.app.state.services.cache.identity
            assert identity.changes == 1
            assert identity.known == after
            hits = await hero_hits(instance)

            async def hit_again(instance: Instance = instance, hits: int = hits) -> bool:
                assert await instance.get_hero(hero["id"]) == patched
                return await hero_hits(instance) > hits

            await eventually(hit_again, within=HITS_WITHIN)
        assert identity_of(own_redis) == after  # no second move


def server_run_id(server: RedisServer) -> str:
    info: dict[str, Any] = server.client(socket_timeout=1.0).info("server")
    return str(info["run_id"])
