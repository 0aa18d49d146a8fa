"""Randomized check of the cache's one promise: no read returns a version older than the
last version acknowledged before that read started, whatever the interleaving of readers,
writers (on two instances sharing Redis) and Redis hangs."""

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

from tests.support.redis_server import RedisServer

HEROES = "/api/v1/heroes"
DURATION_SECONDS = 4.0


@dataclass
class Ledger:
    acknowledged: dict[str, int]
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    writes: int = 0

    def check(self, hero_id: str, required: int, seen: int, how: str) -> None:
        self.reads += 1
        if seen < required:
            self.violations.append(f"{how}: {hero_id} v{seen} after v{required} was acknowledged")


async def _create_heroes(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for n in range(count):
        hero = {"name": f"Hero {n}", "age": n, "gender": "other", "language": "en"}
        response = await client.post(HEROES, json=hero)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


async def _writer(client: httpx.AsyncClient, ledger: Ledger, rng: random.Random, stop: float):
    ids = list(ledger.acknowledged)
    while time.monotonic() < stop:
        hero_id = rng.choice(ids)
        change = {"age": rng.randint(0, 1000), "language": rng.choice(["en", "ru"])}
        response = await client.patch(f"{HEROES}/{hero_id}", json=change)
        if response.status_code == 200:
            version = response.json()["version"]
            ledger.acknowledged[hero_id] = max(ledger.acknowledged[hero_id], version)
            ledger.writes += 1
        elif response.status_code != 409:  # a concurrent update of the same row may conflict
            ledger.violations.append(f"write answered {response.status_code}: {response.text}")


async def _reader(client: httpx.AsyncClient, ledger: Ledger, rng: random.Random, stop: float):
    ids = list(ledger.acknowledged)
    while time.monotonic() < stop:
        hero_id = rng.choice(ids)
        required = ledger.acknowledged[hero_id]
        kind = rng.random()
        if kind < 0.6:
            response = await client.get(f"{HEROES}/{hero_id}")
            assert response.status_code == 200, response.text
            ledger.check(hero_id, required, response.json()["version"], "get")
        elif kind < 0.8:
            page = (await client.get(HEROES, params={"limit": 100})).json()
            versions = {item["id"]: item["version"] for item in page["items"]}
            ledger.check(hero_id, required, versions[hero_id], "unfiltered list")
        else:
            language = rng.choice(["en", "ru"])
            page = (await client.get(HEROES, params={"language": language, "limit": 100})).json()
            for item in page["items"]:
                if item["id"] == hero_id:
                    ledger.check(hero_id, required, item["version"], f"{language} list")


async def _run(writers: list[httpx.AsyncClient], readers: list[httpx.AsyncClient], seed: int):
    ids = await _create_heroes(writers[0], 4)
    ledger = Ledger({hero_id: 1 for hero_id in ids})
    stop = time.monotonic() + DURATION_SECONDS
    tasks = [_writer(c, ledger, random.Random(seed + n), stop) for n, c in enumerate(writers)]
    tasks += [
        _reader(c, ledger, random.Random(seed + 100 + n), stop) for n, c in enumerate(readers)
    ]
    await asyncio.gather(*tasks)
    return ledger


async def _hits(client: httpx.AsyncClient) -> int:
    return (await client.get("/cache/stats")).json()["entities"]["hero"]["hits"]


async def test_no_stale_read_with_concurrent_writers_on_two_instances(cached_instance) -> None:
    async with cached_instance() as (_, first), cached_instance() as (_, second):
        ledger = await _run([first, second], [first, second, first, second], seed=7)
        assert ledger.violations == []
        assert ledger.writes > 20 and ledger.reads > 100
        assert await _hits(first) + await _hits(second) > 0  # the cache was really in play


async def test_no_stale_read_while_redis_hangs_and_returns(cached_instance) -> None:
    with RedisServer() as redis:
        async with cached_instance(
            redis_url=redis.url,
            redis_socket_timeout=0.05,
            redis_connect_timeout=0.05,
            redis_pool_timeout=0.05,
            breaker_failure_threshold=3,
            breaker_cooldown_seconds=0.2,
        ) as (_, client):

            async def hang_now_and_then(stop: float) -> int:
                hangs = 0
                while time.monotonic() < stop - 0.5:
                    await asyncio.sleep(0.4)
                    redis.pause()
                    await asyncio.sleep(0.3)
                    redis.resume()
                    hangs += 1
                return hangs

            stop = time.monotonic() + DURATION_SECONDS
            ledger_task = asyncio.create_task(_run([client, client], [client] * 4, seed=11))
            hangs = await hang_now_and_then(stop)
            ledger = await ledger_task
            assert hangs >= 3
            assert ledger.violations == []
            assert ledger.writes > 10 and ledger.reads > 50
            assert await _hits(client) > 0
