"""The randomized consistency checker (`test_randomized_consistency.py`) on a Redis that
evicts: a small `maxmemory` under the policy the README recommends (`volatile-lru`), kept
full by ballast keys this test writes, so that the service's own keys (entries, post-write
markers, pages, leases, scope counters: the keys with a TTL) are evicted while readers and
writers race on two instances. Evictions are counted from Redis's keyspace notifications,
and the run goes on until enough of the service's keys were evicted.

`maxmemory-samples 1` makes each eviction pick its victim among the volatile keys almost at
random (Redis's LRU clock ticks once a second, so a hot key and a ballast key written in the
same second look the same anyway): without it, the ballast alone would be evicted."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.cache.format import EntityKeys
from app.cache.keys import KeyEncoder
from app.entities import ENTITIES
from tests.consistency.test_randomized_consistency import (
    CacheHits,
    Ledger,
    Minimum,
    _common_minimums,
    _create_heroes,
    _run,
    watch_loads,
)
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
#: The policy the README recommends, and the memory bound of this run.
POLICY = "volatile-lru"
MAXMEMORY = 4 * 1024 * 1024
BALLAST_BYTES = 32 * 1024
BALLAST_EVERY = 0.02  # seconds: about 1.6 MB/s of ballast, each write evicting a key
BALLAST_TTL = 600
EVICTED = "__keyevent@0__:evicted"


class Pressure:
    """Keeps Redis at its `maxmemory` with ballast, and counts the keys Redis evicts."""

    def __init__(self, url: str) -> None:
        self.redis = Redis.from_url(url)
        self.evicted: Counter[str] = Counter()

    @staticmethod
    def kind(key: str) -> str:
        if not key.startswith("tales:"):
            return "ballast"
        parts = key.removeprefix("tales:").split(":")
        if parts[0] == "lease":
            return "lease"
        if parts[0] == "gen":
            return "scope counter"
        if parts[0] == "hero" and len(parts) == 3 and parts[1] != "{hero.pages}":
            return "hero entry or marker"  # hero:{hero.T}:<id>
        return "page" if parts[0] == "hero" else "other service key"

    def service_keys(self) -> int:
        return sum(count for kind, count in self.evicted.items() if kind != "ballast")

    async def _fill(self) -> None:
        value = b"x" * BALLAST_BYTES
        n = 0
        while True:
            await self.redis.set(f"eviction-test:ballast:{n}", value, ex=BALLAST_TTL)
            n += 1
            await asyncio.sleep(BALLAST_EVERY)

    async def _count(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(EVICTED)
        try:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    self.evicted[self.kind(message["data"].decode())] += 1
        finally:
            await pubsub.aclose()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Pressure"]:
        await self.redis.config_set("notify-keyspace-events", "Ee")
        await self.redis.config_set("maxmemory-samples", 1)
        await self.redis.config_set("maxmemory-policy", POLICY)
        await self.redis.config_set("maxmemory", MAXMEMORY)
        tasks = [asyncio.create_task(self._count()), asyncio.create_task(self._fill())]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.redis.aclose()


def test_the_readme_recommends_the_policy_tested_here() -> None:
    assert f"maxmemory-policy {POLICY}" in (ROOT / "README.md").read_text()


async def test_no_stale_read_on_a_redis_that_evicts(
    cached_instance, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        Pressure(own_redis.url).running() as pressure,
        cached_instance(redis_url=own_redis.url) as (app_1, first),
        cached_instance(redis_url=own_redis.url) as (app_2, second),
    ):
        ledger = Ledger({hero_id: 1 for hero_id in await _create_heroes(first, 4)})
        watch_loads(monkeypatch, ledger)
        minimums = [
            *_common_minimums(ledger, CacheHits(app_1, app_2)),
            Minimum("service keys evicted", 50, pressure.service_keys),
            Minimum(
                "hero entries or markers evicted",
                10,
                lambda: pressure.evicted["hero entry or marker"],
            ),
        ]
        await _run([first, second], [first, second, first, second], ledger, 23, minimums)
        print(f"evicted: {dict(pressure.evicted)}")
        used = await pressure.redis.info("memory")
        assert int(used["maxmemory"]) == MAXMEMORY
        assert used["maxmemory_policy"] == POLICY
        # the keys whose loss would be unsafe have no TTL: the policy never evicts them
        hero = EntityKeys(ENTITIES["hero"], "tales:", KeyEncoder())
        for key in (*hero.epochs, hero.family, "tales:salt"):
            assert await pressure.redis.ttl(key) == -1, key
