"""`python -m app warm`: warm the cache of the configured service (DATABASE_URL, REDIS_URL,
CACHE_KEY_PREFIX) from the command line, with a progress bar on stderr (tqdm, already a
dependency), then one summary line per entity on stdout.

It reads through the same loader as the service (`warming.py`): versioned fills, so it can
run beside live instances. Exit codes: 0 warmed, 1 Redis unreachable or errors while
warming, 2 refused (invalid configuration, cache disabled).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tqdm import tqdm

from app.cache.cached_repository import CacheLayer
from app.cache.outbox import Outbox
from app.cache.service import CacheService
from app.cache.warming import Warmer, WarmResult
from app.core.cli import settings_or_report, whole_number
from app.core.database import create_engine, create_session_factory
from app.core.settings import Settings
from app.entities import ENTITIES

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
ALL = "all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--entity",
        choices=(*ENTITIES.by_plural(), ALL),
        default=ALL,
        help="which entity to warm (default: all)",
    )
    parser.add_argument(
        "--limit",
        type=whole_number(1),
        help="most recent rows per entity (default: CACHE_WARM_LIMIT)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


async def _warm_one(warmer: Warmer, entity: str, limit: int, progress: bool) -> WarmResult:
    with tqdm(desc=f"warm {entity}", unit="value", file=sys.stderr, disable=not progress) as bar:

        def total(n: int) -> None:
            bar.total = n
            bar.refresh()

        def advance(n: int) -> None:
            bar.update(n)

        return await warmer.warm(entity, limit, progress=advance, on_total=total)


async def _warm(settings: Settings, entities: list[str], limit: int, progress: bool) -> int:
    engine = create_engine(settings)
    cache = CacheService(settings, ENTITIES)
    try:
        await cache.warm_up()
        session_factory = create_session_factory(engine)
        # warming only reads: the outbox (of writes' invalidations) is never started
        outbox = Outbox(session_factory, cache, settings.cache_repair_bound_ms)
        warmer = Warmer(CacheLayer(cache, ENTITIES, outbox), ENTITIES, session_factory)
        for entity in entities:
            result = await _warm_one(warmer, entity, limit, progress)
            print(
                f"warmed {entity}: {result.entries} entries, {result.pages} pages "
                f"in {result.seconds:.2f} s"
            )
        stats = cache.stats.snapshot()["total"]
        assert isinstance(stats, dict)
        if cache.status != "up" or stats["errors"]:
            print(
                f"warm: Redis at {cache.url} failed ({stats['errors']} errors): "
                "values were read from the database but not all stored",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK
    finally:
        await cache.close()
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    # this process serves nothing: no near cache to keep in step
    settings = settings_or_report("warm", cache_near_enabled=False)
    if settings is None:
        return EXIT_REFUSED
    if not settings.redis_enabled:
        print("warm: the cache is disabled (REDIS_ENABLED=false)", file=sys.stderr)
        return EXIT_REFUSED
    by_plural = ENTITIES.by_plural()
    entities = ENTITIES.names if args.entity == ALL else [by_plural[args.entity].name]
    limit = args.limit or settings.cache_warm_limit
    return asyncio.run(_warm(settings, entities, limit, not args.no_progress))
