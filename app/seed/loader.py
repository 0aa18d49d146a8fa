"""The database side of the seed: checks that the schema exists and that the seed was not
loaded already, then inserts the generated rows with core `insert()` executemany in batches,
one transaction per batch, through the application's own engine. Stories of a run that
creates no heroes (or children) use the ones already in the database.

Children's names are personal data: nothing here logs them, only counts and table names.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, insert, inspect, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tqdm import tqdm

from app.children.models import Child
from app.core.database import create_engine
from app.core.models import EntityModel
from app.core.settings import load_settings
from app.entities import ENTITIES
from app.heroes.models import Hero
from app.seed.generators import (
    CHILD_FIELDS,
    HERO_FIELDS,
    child_rows,
    entity_ids,
    hero_rows,
    story_rows,
)
from app.seed.sizes import Counts
from app.seed.vocabulary import vocabulary
from app.stories.models import Story

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
#: A run of more rows than this shows a progress bar on stderr (unless told otherwise).
PROGRESS_THRESHOLD = 500
#: At most this many existing rows of a kind are offered to the stories.
EXISTING_POOL_LIMIT = 10_000

SQLITE = "sqlite"
IN_MEMORY_DATABASES = ("", ":memory:")
URI_FILENAME_PREFIX = "file:"
MIGRATE_HINT = "run `make migrate` first"


class SeedRefused(RuntimeError):
    """The database is not in a state the seed can run against (exit code 2)."""


class SchemaMissing(SeedRefused):
    pass


@dataclass(frozen=True, slots=True)
class SeedReport:
    counts: Counts
    seed: int
    seconds: float
    stories_with_child: int
    stories_with_hero: int


def _sqlite_file_missing(database_url: str) -> bool:
    url = make_url(database_url)
    if url.get_backend_name() != SQLITE:
        return False
    database = url.database or ""
    if database in IN_MEMORY_DATABASES or database.startswith(URI_FILENAME_PREFIX):
        return False
    return not Path(database).exists()


def _missing_tables(connection: Connection) -> list[str]:
    present = set(inspect(connection).get_table_names())
    tables = [spec.model.__tablename__ for spec in ENTITIES]
    return [table for table in tables if table not in present]


async def check_schema(engine: AsyncEngine) -> None:
    """Every entity's table exists, or `SchemaMissing`."""
    async with engine.connect() as connection:
        missing = await connection.run_sync(_missing_tables)
    if missing:
        raise SchemaMissing(
            f"database schema is missing (no table {', '.join(missing)}): {MIGRATE_HINT}"
        )


async def _check_not_seeded(engine: AsyncEngine, counts: Counts, seed: int) -> None:
    """Ids come from the seed: a second run with the same seed would collide half-way."""
    planned = counts.by_plural()
    async with engine.connect() as connection:
        for spec in ENTITIES:
            if planned.get(spec.plural, 0) == 0:
                continue
            first_id = next(entity_ids(seed, spec.name))
            if await connection.scalar(select(exists().where(spec.model.id == first_id))):
                raise SeedRefused(
                    f"the database already holds the {spec.model.__tablename__} of --seed "
                    f"{seed}: use another --seed or an empty database"
                )


async def _existing(
    connection: AsyncConnection, model: type[EntityModel], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """Up to `EXISTING_POOL_LIMIT` rows of `model` already there, in id order."""
    stmt = select(*(getattr(model, column) for column in columns)).order_by(model.id)
    rows = await connection.execute(stmt.limit(EXISTING_POOL_LIMIT))
    return [dict(row._mapping) for row in rows]


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _insert(
    engine: AsyncEngine,
    model: type[EntityModel],
    rows: Iterable[dict[str, Any]],
    batch_size: int,
    advance: Callable[[int], object],
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    inserted = 0
    for batch in _batches(rows, batch_size):
        async with engine.begin() as connection:
            await connection.execute(insert(model), batch)
        inserted += len(batch)
        if keep is not None:
            for row in batch:
                keep(row)
        advance(len(batch))
        logger.debug("inserted %d rows into %s", len(batch), model.__tablename__)
    return inserted


def _start_of_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def seed_database(
    database_url: str,
    counts: Counts,
    *,
    seed: int,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool | None = None,
) -> SeedReport:
    """Insert `counts` rows; raises `SeedRefused` (schema missing, seed already used).

    `now` is the end of the 90-day window the timestamps are spread over; by default the
    start of the current UTC day, so that the same seed on the same day gives identical rows.
    """
    if now is None:
        now = _start_of_today()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if _sqlite_file_missing(database_url):
        raise SchemaMissing(f"database file does not exist: {MIGRATE_HINT}")
    vocabulary()  # a malformed vocabulary fails before the database is touched
    started = time.perf_counter()
    engine = create_engine(load_settings(ENTITIES, database_url=database_url))
    try:
        await check_schema(engine)
        await _check_not_seeded(engine, counts, seed)
        show = counts.total > PROGRESS_THRESHOLD if progress is None else progress
        with tqdm(
            total=counts.total, unit="row", desc="seeding", file=sys.stderr, disable=not show
        ) as bar:
            heroes: list[dict[str, Any]] = []
            children: list[dict[str, Any]] = []
            await _insert(
                engine,
                Hero,
                hero_rows(counts.heroes, seed, now),
                batch_size,
                bar.update,
                heroes.append,
            )
            await _insert(
                engine,
                Child,
                child_rows(counts.children, seed, now),
                batch_size,
                bar.update,
                children.append,
            )
            if counts.stories:
                async with engine.connect() as connection:
                    # nothing of a kind created in this run: the stories use what is there
                    if not heroes:
                        heroes = await _existing(connection, Hero, HERO_FIELDS)
                    if not children:
                        children = await _existing(connection, Child, CHILD_FIELDS)
            stats = {"child": 0, "hero": 0}

            def count_links(row: dict[str, Any]) -> None:
                stats["child"] += row["child_id"] is not None
                stats["hero"] += row["hero_id"] is not None

            await _insert(
                engine,
                Story,
                story_rows(counts.stories, seed, now, children, heroes),
                batch_size,
                bar.update,
                count_links,
            )
    finally:
        await engine.dispose()
    return SeedReport(
        counts=counts,
        seed=seed,
        seconds=time.perf_counter() - started,
        stories_with_child=stats["child"],
        stories_with_hero=stats["hero"],
    )
