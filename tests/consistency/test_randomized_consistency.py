"""Randomized check of the cache's one promise: no read returns a version older than the
last version acknowledged before that read started, whatever the interleaving of readers,
writers (on two instances sharing Redis) and Redis hangs.

A run is only worth something if the interleavings that could break the promise really
happened. So a run counts them - reads that overlapped a write of the same row, reads during
which a newer version of their row was acknowledged (and which answered the older one),
reads served from the cache, database loads on a miss made while a write of the same row
was in flight (their fill races that write's invalidation), and in the hang test: hangs
during which a Redis call failed and a write and a read were made, and reads after a hang of
rows written during it - and goes on until each has been seen a minimum number of times,
within a generous time bound. A run in which the workers never met fails loudly instead of
passing vacuously, and a slow machine takes longer instead of failing a rate floor."""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.loads import patch_loads
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess

HEROES = "/api/v1/heroes"
#: A run stops once every minimum is reached; it fails if that takes longer than this.
RUN_WITHIN = 60.0
#: How long one Redis hang may take to be felt (a write and a read during it, an error).
HANG_WITHIN = 15.0
HANGS = 4
READS_AFTER_LOST = 8


@dataclass
class Ledger:
    """What the workers did and saw, and which interleavings occurred."""

    acknowledged: dict[str, int]  # the newest version acknowledged to a writer, per row
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    writes: int = 0
    conflicts: int = 0  # 409: a concurrent update of the same row
    writing: Counter[str] = field(default_factory=Counter)  # writes in flight, per row
    write_starts: Counter[str] = field(default_factory=Counter)  # writes begun, per row
    overlapping: int = 0  # reads during which a write of the same row was in flight
    raced: int = 0  # reads during which a newer version of their row was acknowledged
    answered_older: int = 0  # ... and which answered the version before it (allowed)
    # Redis hangs (the hang test): the hang now under way (0: none), what happened in each
    hang: int = 0
    writes_in_hang: Counter[int] = field(default_factory=Counter)
    reads_in_hang: Counter[int] = field(default_factory=Counter)
    lost: set[str] = field(default_factory=set)  # rows written during the last hang
    reads_after_lost: int = 0  # reads, after a hang, of a row written during it
    # database loads on a cache miss (see `watch_loads`)
    loads: int = 0
    loads_racing_write: int = 0  # ... during which a write of the same row was in flight

    def read(self, hero_id: str, started: "ReadStart", seen: int, how: str) -> None:
        self.reads += 1
        if seen < started.required:
            self.violations.append(
                f"{how}: {hero_id} v{seen} after v{started.required} was acknowledged"
            )
        if started.writing or self.write_starts[hero_id] > started.write_starts:
            self.overlapping += 1
        newest = self.acknowledged[hero_id]
        if newest > started.required:
            self.raced += 1
            if seen < newest:
                self.answered_older += 1
        if started.hang and self.hang == started.hang:
            self.reads_in_hang[started.hang] += 1
        if not started.hang and hero_id in started.lost:
            self.reads_after_lost += 1

    def start_read(self, hero_id: str) -> "ReadStart":
        return ReadStart(
            required=self.acknowledged[hero_id],
            writing=self.writing[hero_id] > 0,
            write_starts=self.write_starts[hero_id],
            hang=self.hang,
            lost=frozenset(self.lost),
        )


@dataclass(frozen=True)
class ReadStart:
    required: int  # the newest version acknowledged when the read started
    writing: bool  # a write of the row was in flight when the read started
    write_starts: int  # writes of the row begun before the read started
    hang: int
    lost: frozenset[str]


async def _create_heroes(client: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for n in range(count):
        hero = {"name": f"Hero {n}", "age": n, "gender": "other", "language": "en"}
        response = await client.post(HEROES, json=hero)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


async def _writer(
    client: httpx.AsyncClient, ledger: Ledger, rng: random.Random, stop: asyncio.Event
) -> None:
    ids = list(ledger.acknowledged)
    while not stop.is_set():
        hero_id = rng.choice(ids)
        change = {"age": rng.randint(0, 1000), "language": rng.choice(["en", "ru"])}
        hang = ledger.hang
        ledger.writing[hero_id] += 1
        ledger.write_starts[hero_id] += 1
        try:
            response = await client.patch(f"{HEROES}/{hero_id}", json=change)
        finally:
            ledger.writing[hero_id] -= 1
        if response.status_code == 200:
            version = response.json()["version"]
            ledger.acknowledged[hero_id] = max(ledger.acknowledged[hero_id], version)
            ledger.writes += 1
            if hang and ledger.hang == hang:  # begun and acknowledged during this hang
                ledger.writes_in_hang[hang] += 1
                ledger.lost.add(hero_id)
            elif not hang and not ledger.hang:  # invalidated normally again
                ledger.lost.discard(hero_id)
        elif response.status_code == 409:  # a concurrent update of the same row may conflict
            ledger.conflicts += 1
        else:
            ledger.violations.append(f"write answered {response.status_code}: {response.text}")


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _reader(
    client: httpx.AsyncClient, ledger: Ledger, rng: random.Random, stop: asyncio.Event
) -> None:
    ids = list(ledger.acknowledged)
    while not stop.is_set():
        hero_id = rng.choice(ids)
        started = ledger.start_read(hero_id)
        kind = rng.random()
        if kind < 0.6:
            hero = await _get(client, f"{HEROES}/{hero_id}")
            ledger.read(hero_id, started, hero["version"], "get")
        elif kind < 0.8:
            page = await _get(client, HEROES, limit=100)
            versions = {item["id"]: item["version"] for item in page["items"]}
            ledger.read(hero_id, started, versions[hero_id], "unfiltered list")
        else:
            language = rng.choice(["en", "ru"])
            page = await _get(client, HEROES, language=language, limit=100)
            for item in page["items"]:
                if item["id"] == hero_id:
                    ledger.read(hero_id, started, item["version"], f"{language} list")


@dataclass(frozen=True)
class Minimum:
    what: str
    count: int
    seen: Callable[[], int]

    def reached(self) -> bool:
        return self.seen() >= self.count

    def __str__(self) -> str:
        return f"{self.what}: {self.seen()} (minimum {self.count})"


async def _until(done: Callable[[], bool], within: float, tasks: list[asyncio.Task[Any]]) -> bool:
    """Poll `done` until it holds (True) or `within` seconds passed (False); a task that
    failed meanwhile raises its error at once."""
    deadline = time.monotonic() + within
    while not done():
        for task in tasks:
            if task.done() and task.exception() is not None:
                task.result()
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _run(
    writers: list[httpx.AsyncClient],
    readers: list[httpx.AsyncClient],
    ledger: Ledger,
    seed: int,
    minimums: list[Minimum],
    conductor: Callable[[list[asyncio.Task[Any]]], Coroutine[Any, Any, None]] | None = None,
) -> float:
    """Run the workers until every minimum is reached (and the conductor, if any, is done);
    returns the seconds it took. Fails on a stale read (or an unexpected answer to a write),
    and, naming what was not reached, after RUN_WITHIN."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_writer(client, ledger, random.Random(seed + n), stop))
        for n, client in enumerate(writers)
    ]
    tasks += [
        asyncio.create_task(_reader(client, ledger, random.Random(seed + 100 + n), stop))
        for n, client in enumerate(readers)
    ]
    workers = list(tasks)
    if conductor is not None:
        tasks.append(asyncio.create_task(conductor(workers)))
    started = time.monotonic()
    try:
        reached = await _until(
            lambda: (
                bool(ledger.violations)  # no need to go on
                or (
                    all(m.reached() for m in minimums)
                    and all(t.done() for t in tasks[len(workers) :])
                )
            ),
            RUN_WITHIN,
            tasks,
        )
        took = time.monotonic() - started
    finally:
        stop.set()
        for conducting in tasks[len(workers) :]:
            conducting.cancel()  # done already, unless the run failed or timed out
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
    report = "; ".join(str(m) for m in minimums)
    print(f"\nrun of {took:.1f} s: {report}; conflicts {ledger.conflicts}")
    assert ledger.violations == [], ledger.violations[:10]
    assert reached, f"not every interleaving occurred within {RUN_WITHIN}s: {report}"
    return took


class CacheHits:
    """Hero cache hits summed over the instances, since construction."""

    def __init__(self, *apps: FastAPI) -> None:
        self.stats = [app.state.services.cache.stats["hero"] for app in apps]
        self.start = self.total()

    def total(self) -> int:
        return sum(stats.hits for stats in self.stats)

    def since(self) -> int:
        return self.total() - self.start


def watch_loads(monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> None:
    """Count the database loads of a hero on a cache miss (the loads are watched, not
    changed) that ran while a write of the same row was in flight: the load's fill races
    that write's commit and invalidation, the window a stale fill comes from."""

    def wrap(get: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def watched(repository: Any, entity_id: Any) -> Any:
            hero_id = str(entity_id)
            writing, starts = ledger.writing[hero_id] > 0, ledger.write_starts[hero_id]
            doc = await get(repository, entity_id)
            ledger.loads += 1
            if writing or ledger.write_starts[hero_id] > starts:
                ledger.loads_racing_write += 1
            return doc

        return watched

    patch_loads(monkeypatch, wrap, "get")


#: The minimums a run against another process can count (from its answers alone).
WITHOUT_PROCESS_COUNTERS = frozenset(
    {
        "reads",
        "writes",
        "reads overlapping a write of the same row",
        "reads during which their row got a newer version",
        "... answering the version before it",
    }
)


def _common_minimums(ledger: Ledger, hits: CacheHits | None) -> list[Minimum]:
    return [
        Minimum("reads", 400, lambda: ledger.reads),
        Minimum("writes", 80, lambda: ledger.writes),
        Minimum("reads overlapping a write of the same row", 50, lambda: ledger.overlapping),
        Minimum("reads during which their row got a newer version", 20, lambda: ledger.raced),
        # rare: a read that raced a write mostly answers the new version (4 in 1,706 raced
        # reads in a 60 s CI run, near cache on); two prove the checker met the case
        Minimum("... answering the version before it", 2, lambda: ledger.answered_older),
        Minimum("reads served from the cache", 100, hits.since if hits else lambda: 0),
        Minimum("database loads on a miss", 50, lambda: ledger.loads),
        Minimum(
            "... while a write of the row was in flight", 10, lambda: ledger.loads_racing_write
        ),
    ]


async def test_no_stale_read_with_concurrent_writers_on_two_instances(
    cached_instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with cached_instance() as (app_1, first), cached_instance() as (app_2, second):
        ledger = Ledger({hero_id: 1 for hero_id in await _create_heroes(first, 4)})
        watch_loads(monkeypatch, ledger)
        minimums = _common_minimums(ledger, CacheHits(app_1, app_2))
        await _run([first, second], [first, second, first, second], ledger, 7, minimums)


class Hangs:
    """Hangs Redis (SIGSTOP) while the workers run: at least HANGS times, and until rows
    written during a hang have been read after it READS_AFTER_LOST times. Each hang starts
    once the cache is in play again (breaker closed, hits since the last hang), and lasts
    until the service felt it: a Redis call failed, and a write and a read began and ended
    during it (the write's invalidation could not reach Redis)."""

    def __init__(self, redis: RedisServer, app: FastAPI, ledger: Ledger) -> None:
        self.redis = redis
        self.stats = app.state.services.cache.stats["hero"]
        self.breaker = app.state.services.cache.breaker
        self.ledger = ledger
        self.felt = 0

    def cache_in_play(self, hits: int) -> bool:
        return self.breaker.state == "closed" and self.stats.hits > hits

    def hang_felt(self, errors: int) -> bool:
        hang = self.ledger.hang
        return (
            self.stats.errors > errors
            and self.ledger.writes_in_hang[hang] > 0
            and self.ledger.reads_in_hang[hang] > 0
        )

    def enough(self) -> bool:
        return self.felt >= HANGS and self.ledger.reads_after_lost >= READS_AFTER_LOST

    async def __call__(self, workers: list[asyncio.Task[Any]]) -> None:
        while not self.enough():
            hits = self.stats.hits
            assert await _until(partial(self.cache_in_play, hits), HANG_WITHIN, workers), (
                f"no cache hits again after hang {self.felt}: {self.stats}"
            )
            errors = self.stats.errors
            self.ledger.lost = set()
            self.ledger.hang = self.felt + 1
            self.redis.pause()
            try:
                felt = await _until(partial(self.hang_felt, errors), HANG_WITHIN, workers)
            finally:
                self.ledger.hang = 0
                self.redis.resume()
            assert felt, (
                f"hang {self.felt + 1} not felt within {HANG_WITHIN}s: {self.stats}, writes "
                f"{self.ledger.writes_in_hang}, reads {self.ledger.reads_in_hang}"
            )
            self.felt += 1


async def test_no_stale_read_while_redis_hangs_and_returns(
    cached_instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer() as redis:
        async with cached_instance(
            redis_url=redis.url,
            redis_socket_timeout=0.05,
            redis_connect_timeout=0.05,
            redis_pool_timeout=0.05,
            breaker_failure_threshold=3,
            breaker_cooldown_seconds=0.2,
        ) as (app, client):
            ledger = Ledger({hero_id: 1 for hero_id in await _create_heroes(client, 4)})
            watch_loads(monkeypatch, ledger)
            hangs = Hangs(redis, app, ledger)
            minimums = [
                *_common_minimums(ledger, CacheHits(app)),
                Minimum("hangs felt by the service", HANGS, lambda: hangs.felt),
                Minimum(
                    "reads after a hang of rows written during it",
                    READS_AFTER_LOST,
                    lambda: ledger.reads_after_lost,
                ),
            ]
            await _run([client, client], [client] * 4, ledger, 11, minimums, hangs)


async def test_no_stale_read_across_the_workers_of_one_service(
    postgresql_database_url: str, clean_database: None, own_redis: RedisServer, tmp_path: Path
) -> None:
    """`WEB_CONCURRENCY=2`: one service, two worker processes behind one port, each with its
    own near cache and single flights; the kernel hands each request to either of them."""
    service = ServiceProcess(
        postgresql_database_url, own_redis.url, tmp_path / "service.log", WEB_CONCURRENCY="2"
    )
    try:
        service.wait_healthy()
        clients = [httpx.AsyncClient(base_url=service.url, timeout=30.0) for _ in range(4)]
        try:
            ledger = Ledger({hero_id: 1 for hero_id in await _create_heroes(clients[0], 4)})
            minimums = [
                m for m in _common_minimums(ledger, hits=None) if m.what in WITHOUT_PROCESS_COUNTERS
            ]
            await _run(clients[:2], clients, ledger, 11, minimums)
        finally:
            for client in clients:
                await client.aclose()
    finally:
        service.stop()
