"""A primary of the cluster SIGKILLed under load: no 5xx, the service follows the promoted
replica, Redis hits resume, and nothing stale is served, during or after; once the hits have
resumed, every entry and list is served from the cache again.

When the hits resumed is told by entities the load does not read (children): the load reads
heroes, so a hero's Redis hit counter grows whichever primary served it, and a hit counted
there said nothing about the killed primary's slots (it made the failover look done within
a second, before the replica was even promoted, and the checks after it failed)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tests.api import payloads
from tests.api.helpers import url
from tests.cache.conftest import Api
from tests.cluster.conftest import cluster_app, create_heroes, keys_by_primary, uncached_app
from tests.support.redis_cluster import RedisClusterServers

HEROES = 30
CHILDREN = 60  # over 16 tags: p(none on the killed primary) < (11/16)**60 ~ 2e-10
READERS = 4
LOAD_BEFORE_KILL = 1.0
#: Promotion takes about two cluster-node-timeouts; the hits must resume well within this.
RESUME_TIMEOUT = 30.0


class Load:
    """Readers and one writer; each read is checked against the last write acknowledged
    before it started."""

    def __init__(self, api: Api, heroes: list[dict[str, Any]]) -> None:
        self.api = api
        self.ids = [hero["id"] for hero in heroes]
        self.acked = {hero["id"]: hero["version"] for hero in heroes}
        self.statuses: list[int] = []
        self.stale: list[tuple[str, int, int]] = []
        self.running = True

    async def read(self) -> None:
        while self.running:
            hero_id = random.choice(self.ids)
            floor = self.acked[hero_id]
            response = await self.api.get("hero", hero_id)
            self.statuses.append(response.status_code)
            if response.status_code == 200 and response.json()["version"] < floor:
                self.stale.append((hero_id, response.json()["version"], floor))

    async def write(self) -> None:
        while self.running:
            hero_id = random.choice(self.ids)
            response = await self.api.http.patch(
                url("hero", hero_id), json={"age": random.randint(1, 12)}
            )
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                self.acked[hero_id] = max(self.acked[hero_id], response.json()["version"])
            await asyncio.sleep(0.02)


async def test_a_killed_primary_is_followed_without_errors_or_stale_reads(
    postgresql_database_url: str,
) -> None:
    with RedisClusterServers() as servers:
        async with cluster_app(postgresql_database_url, servers) as api:
            heroes = await create_heroes(api, HEROES)
            children = [await api.create("child", payloads.child()) for _ in range(CHILDREN)]
            for hero in heroes:
                await api.entry("hero", hero["id"])
            for child in children:
                await api.entry("child", child["id"])
            entries = keys_by_primary(servers, "tales:child:{child.[0-9]*}:*")
            victim = max(entries, key=lambda port: len(entries[port]))
            on_victim = [key.rsplit(":", 1)[1] for key in entries[victim]]
            assert on_victim

            load = Load(api, heroes)
            tasks = [asyncio.create_task(load.read()) for _ in range(READERS)]
            tasks.append(asyncio.create_task(load.write()))
            try:
                await asyncio.sleep(LOAD_BEFORE_KILL)
                servers.kill(victim)
                killed = time.monotonic()
                resumed = await hits_resume(api, on_victim)
                failover_seconds = resumed - killed
                await asyncio.sleep(LOAD_BEFORE_KILL)  # and the load goes on
            finally:
                load.running = False
                await asyncio.gather(*tasks)

            assert not [s for s in load.statuses if s >= 500], "5xx during the failover"
            assert load.stale == [], f"stale reads: {load.stale[:5]}"
            assert len(load.statuses) > 50
            assert failover_seconds < RESUME_TIMEOUT
            assert victim not in servers.primaries()  # its replica serves its slots now

            # Nothing stale afterwards, and the cache serves again: every hero (entries and a
            # list) as the database has it, its re-read a cache hit.
            async with uncached_app(postgresql_database_url) as plain:
                for hero_id in load.ids:
                    cached = await api.cached_read(url("hero", hero_id))
                    direct = await plain.http.get(url("hero", hero_id))
                    assert cached.content == direct.content
                listed = await api.cached_read(url("hero"), {"limit": 100})
                assert (
                    listed.content
                    == (await plain.http.get(url("hero"), params={"limit": 100})).content
                )


async def hits_resume(api: Api, ids: list[str]) -> float:
    """When a child entry of the killed primary's slots is served from Redis again (a miss
    fills it on the promoted replica, the next read is a Redis hit, not a near one). Only
    this reads children, so the child counters speak of these reads alone."""
    stats = api.app.state.services.cache.stats["child"]
    deadline = time.monotonic() + RESUME_TIMEOUT
    while time.monotonic() < deadline:
        for child_id in ids:
            await api.get("child", child_id)
            before = stats.hits - stats.near_hits
            await api.get("child", child_id)
            if stats.hits - stats.near_hits > before:
                return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Redis hit on the killed primary's slots within {RESUME_TIMEOUT} s")
