"""Two costs of "invalidations are never lost", each measured in one run, in process (the
app's own ASGI stack over httpx, no network: the figures show the work of the service, so
the outbox's share of a write is, if anything, overstated):

- **write cost of the outbox**: PATCH by id with each write's outbox row inserted in its
  transaction (the service) and without it (`Outbox.recording = False`, bench only), in the
  order off, on, on, off, twice (each figure the median over its runs, so a drift of the machine
  weighs on both alike); the ratio is on / off of the median latency.
- **cost of a false alarm**: an epoch move that was not needed (`CacheService.data_lost`, what
  a changed Redis identity triggers). Every cached value of every entity goes cold at once:
  the hits lost (reads of warm heroes that became misses) and the time to rewarm (one pass of
  reads over those heroes, each a database load), next to the same pass warm just before
  the alarm and just after the rewarm (the ratio uses the faster of the two).

Part of `make bench` (the "outbox" scenario, on the bench's database and Redis, under its
own key prefix), or alone on a database and redis-server of its own:

    python -m bench.outbox [--heroes 500] [--patches 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

import httpx

from app.main import create_app, load_settings
from bench.config import PATCH_FIELD, PATHS
from bench.scenarios import Context

HEROES = PATHS["hero"]
FIELD = PATCH_FIELD["hero"]
PATCHES = 200  # PATCHes per run (4 runs)
FALSE_ALARM_IDS = 500  # warm heroes read before and after the false alarm
KEY_PREFIX = "bench-outbox:"
BASE_URL = "http://bench.outbox"
#: A reply that a busy machine delays must not turn a read into a miss (a false miss would
#: count as a hit lost): these runs measure costs, not Redis faults.
PATIENT: dict[str, object] = {
    "redis_socket_timeout": 1.0,
    "redis_connect_timeout": 1.0,
    "redis_pool_timeout": 1.0,
}
#: PATCH runs, alternating; each figure is the median over its runs.
ORDER = ("off", "on", "on", "off", "off", "on", "on", "off")


async def _read_all(http: httpx.AsyncClient, ids: list[str]) -> float:
    started = time.perf_counter()
    for hero_id in ids:
        response = await http.get(f"{HEROES}/{hero_id}")
        response.raise_for_status()
    return time.perf_counter() - started


async def _patch_run(http: httpx.AsyncClient, ids: list[str], label: str) -> list[float]:
    """Seconds of each PATCH, over `ids`."""
    took: list[float] = []
    for i, hero_id in enumerate(ids):
        started = time.perf_counter()
        response = await http.patch(f"{HEROES}/{hero_id}", json={FIELD: f"bench outbox {label}{i}"})
        took.append(time.perf_counter() - started)
        response.raise_for_status()
    return took


async def measure(
    database_url: str, redis_url: str, ids: list[str], patches: int
) -> dict[str, Any]:
    settings = load_settings(
        database_url=database_url,
        redis_url=redis_url,
        cache_key_prefix=KEY_PREFIX,
        log_level="WARNING",
        _env_file=None,
        **PATIENT,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        outbox, cache = services.outbox, services.cache
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            patched = ids[:patches]
            await _read_all(http, patched)
            runs: dict[str, list[float]] = {"off": [], "on": []}
            for label in ORDER:
                outbox.recording = label == "on"
                runs[label] += await _patch_run(http, patched, label)
            outbox.recording = True
            off, on = statistics.median(runs["off"]), statistics.median(runs["on"])

            warm_ids = ids[:FALSE_ALARM_IDS]
            await _read_all(http, warm_ids)  # fill Redis
            await _read_all(http, warm_ids)  # and the near cache
            stats = cache.stats["hero"]
            hits = stats.hits
            warm_s = await _read_all(http, warm_ids)
            warm_hits = stats.hits - hits
            cache.data_lost()  # the false alarm: every epoch moves, near copies go
            hits, misses = stats.hits, stats.misses
            cold_s = await _read_all(http, warm_ids)
            lost = stats.misses - misses
            rewarmed_s = await _read_all(http, warm_ids)
    return {
        "patch_ms_without_outbox": round(off * 1000, 3),
        "patch_ms_with_outbox": round(on * 1000, 3),
        "outbox_write_cost": round(on / off, 3),
        "patches_per_run": len(patched),
        "false_alarm": {
            "heroes": len(warm_ids),
            "hits_before": warm_hits,
            "hits_lost": lost,
            "warm_pass_s": round(warm_s, 3),
            "rewarm_pass_s": round(cold_s, 3),
            "rewarm_cost": round(cold_s / min(warm_s, rewarmed_s), 2),
            "after_rewarm_pass_s": round(rewarmed_s, 3),
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    alarm = result["false_alarm"]
    return [
        "",
        "invalidations never lost (in process, python -m bench.outbox):",
        f"  PATCH by id: {result['patch_ms_with_outbox']:.2f} ms with the outbox, "
        f"{result['patch_ms_without_outbox']:.2f} ms without: x{result['outbox_write_cost']:.2f}"
        f" (median; {result['patches_per_run']} PATCHes a run, runs off/on/on/off twice)",
        f"  false alarm (all epochs moved): {alarm['hits_lost']} of {alarm['heroes']} warm "
        f"reads became misses; rewarm pass {alarm['rewarm_pass_s'] * 1000:.0f} ms, warm passes "
        f"{alarm['warm_pass_s'] * 1000:.0f} ms before and "
        f"{alarm['after_rewarm_pass_s'] * 1000:.0f} ms after (x{alarm['rewarm_cost']:.1f} "
        "the faster)",
    ]


def outbox(ctx: Context) -> None:
    """The bench scenario: on the bench's database (its seeded heroes) and Redis."""
    ids = ctx.ids["hero"][: max(FALSE_ALARM_IDS, PATCHES)]
    result = asyncio.run(measure(ctx.database_url, ctx.redis.url, ids, PATCHES))
    ctx.results["outbox"] = result
    for line in render(result)[1:]:
        print(line, flush=True)


async def _seed(database_url: str, redis_url: str, heroes: int) -> list[str]:
    settings = load_settings(
        database_url=database_url, redis_url=redis_url, redis_enabled=False, _env_file=None
    )
    app = create_app(settings)
    ids: list[str] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            for i in range(heroes):
                body = {"name": f"Bench {i}", "age": 9, "gender": "female", "language": "en"}
                response = await http.post(HEROES, json=body)
                response.raise_for_status()
                ids.append(response.json()["id"])
    return ids


@contextlib.contextmanager
def seeded_database(heroes: int) -> Iterator[tuple[str, list[str]]]:
    """A throwaway database (migrated, `heroes` heroes) and the heroes' ids; dropped at the
    end. For the rows that run alone, outside `make bench`'s own database."""
    from tests.conftest import migrate
    from tests.support import RedisServer, create_database, drop_database, postgres_url

    name = create_database()
    try:
        url = postgres_url(name)
        migrate(url)
        with RedisServer() as seeding:  # unused by the seeding app (Redis off); required
            ids = asyncio.run(_seed(url, seeding.url, heroes))
        yield url, ids
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__)
    parser.add_argument("--heroes", type=int, default=FALSE_ALARM_IDS)
    parser.add_argument("--patches", type=int, default=PATCHES)
    args = parser.parse_args()
    from tests.support import RedisServer

    with seeded_database(args.heroes) as (url, ids), RedisServer() as redis:
        result = asyncio.run(measure(url, redis.url, ids, args.patches))
    print("\n".join(render(result)))


if __name__ == "__main__":
    main()
