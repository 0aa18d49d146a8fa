"""Cache warming: the most recent N rows of an entity, and its first list page, read into
the cache through the loader (`loader.py`), exactly as misses are.

Warming never writes Redis itself: every value goes through the loader's read-through (a
hit is left alone; a miss takes the single flight and the lease, loads, and stores with the
versioned fill). So a warm racing a write can never store the row older than the write:
the fill is refused by the post-write marker (see `scripts.py`). Its reads count in
`/cache/stats` like any other read.

The database load is bounded: one query for the ids, then `WARM_CONCURRENCY` loads at a
time, each on its own short unit of work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.cached_repository import CacheLayer
from app.cache.slots import EntrySlot, PageSlot
from app.core.database import UnitOfWork
from app.core.registry import DEFAULT_LIMIT, Registry
from app.core.repository import SQLAlchemyRepository

logger = logging.getLogger(__name__)

#: Loads a warm runs at once (each on its own database connection).
WARM_CONCURRENCY = 4
#: The list pages a warm reads: the first page of the unfiltered list, default size.
WARMED_PAGES = ((DEFAULT_LIMIT, 0),)

Progress = Callable[[int], None]  # hears a number of values


@dataclass(frozen=True)
class WarmResult:
    entity: str
    entries: int  # rows read through the cache (absent meanwhile: still counted)
    pages: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "entity": self.entity,
            "entries": self.entries,
            "pages": self.pages,
            "seconds": round(self.seconds, 3),
        }


class Warmer:
    def __init__(
        self,
        layer: CacheLayer,
        registry: Registry,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        self.layer = layer
        self.registry = registry
        self.session_factory = session_factory

    async def recent_ids(self, entity: str, limit: int) -> list[UUID]:
        """The ids of the `limit` most recent rows, in the lists' order."""
        model = self.registry[entity].model
        stmt = select(model.id).order_by(model.created_at.desc(), model.id.desc()).limit(limit)
        async with self.session_factory() as session:
            return list((await session.scalars(stmt)).all())

    async def warm(
        self,
        entity: str,
        limit: int,
        progress: Progress | None = None,
        on_total: Progress | None = None,
    ) -> WarmResult:
        """Warm `entity`; `on_total` hears how many values will be read, `progress` each one."""
        started = time.perf_counter()
        ids = await self.recent_ids(entity, limit)
        if on_total is not None:
            on_total(len(ids) + len(WARMED_PAGES))
        queue: asyncio.Queue[UUID] = asyncio.Queue()
        for entity_id in ids:
            queue.put_nowait(entity_id)

        async def worker() -> None:
            while not queue.empty():
                await self._read_entry(entity, queue.get_nowait())
                if progress is not None:
                    progress(1)

        await asyncio.gather(*(worker() for _ in range(min(WARM_CONCURRENCY, len(ids)))))
        for page_limit, offset in WARMED_PAGES:
            await self._read_page(entity, page_limit, offset)
            if progress is not None:
                progress(1)
        result = WarmResult(entity, len(ids), len(WARMED_PAGES), time.perf_counter() - started)
        logger.info(
            "cache warmed: %s, %d entries, %d pages in %.2f s",
            entity,
            result.entries,
            result.pages,
            result.seconds,
        )
        return result

    @asynccontextmanager
    async def _repository(self, entity: str) -> AsyncIterator[SQLAlchemyRepository]:
        uow = UnitOfWork(self.session_factory)
        try:
            yield SQLAlchemyRepository(self.registry[entity], self.registry, uow)
        finally:
            await uow.close()

    async def _read_entry(self, entity: str, entity_id: UUID) -> None:
        async with self._repository(entity) as repo:
            await self.layer.loader.read_through(EntrySlot(self.layer.cache, repo, entity_id))

    async def _read_page(self, entity: str, limit: int, offset: int) -> None:
        async with self._repository(entity) as repo:
            slot = PageSlot(self.layer.cache, repo, {}, limit, offset)
            await self.layer.loader.read_through(slot)
