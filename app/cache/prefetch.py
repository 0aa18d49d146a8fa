"""Prefetching: reading a child from the database brings the first page of its stories
(`GET /stories?child_id=…`, default limit and offset) into the cache, in the background.

- **Off the request's path.** The prefetch is scheduled only where the child itself was
  loaded from the database (the flight leader's load on a miss, `PrefetchingEntrySlot`):
  a near hit or a Redis hit never reaches it and pays nothing. Scheduling is one
  `create_task`; the request does not wait for it.
- **Bounded.** At most `CACHE_PREFETCH_CONCURRENCY` prefetches run at once; one scheduled
  while they all run is dropped (counted), never queued.
- **No second load.** A prefetch first peeks at the page: cached, it stops. Otherwise it
  reads through the loader, whose single flight joins a load of the page already running
  in this process (and whose lease, one in another process).
- **Its own context.** The task runs in an empty `contextvars.Context`, so it never
  touches the near-cache fill of the request that scheduled it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import asdict, dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache.cached_repository import CachedRepository, CacheLayer
from app.cache.loader import Loaded
from app.cache.service import CacheService
from app.cache.slots import EntrySlot, PageSlot
from app.core.database import UnitOfWork
from app.core.documents import Doc
from app.core.registry import DEFAULT_LIMIT, Registry
from app.core.repository import SQLAlchemyRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrefetchRule:
    """Loading a `source` row brings the first page of `target` filtered by `filter` = id."""

    source: str
    target: str
    filter: str


RULES = (PrefetchRule("child", "story", "child_id"),)


@dataclass
class PrefetchStats:
    scheduled: int = 0
    dropped: int = 0  # all slots busy
    already_cached: int = 0  # the peek found the page: nothing loaded
    completed: int = 0  # read through the loader (loaded, or joined a load)
    errors: int = 0


class Prefetcher:
    def __init__(
        self,
        layer: CacheLayer,
        registry: Registry,
        session_factory: async_sessionmaker[AsyncSession],
        concurrency: int,
    ) -> None:
        self.layer = layer
        self.registry = registry
        self.session_factory = session_factory
        self.concurrency = concurrency
        self.rules: dict[str, list[PrefetchRule]] = {}
        for rule in RULES:
            if rule.source in registry.names and rule.target in registry.names:
                if rule.filter not in registry[rule.target].indexed:
                    raise ValueError(f"prefetch rule: {rule.filter!r} is no {rule.target} filter")
                self.rules.setdefault(rule.source, []).append(rule)
        self.stats = PrefetchStats()
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return len(self.tasks)

    def after_load(self, entity: str, entity_id: UUID) -> None:
        """Called where a row of `entity` was just loaded from the database."""
        for rule in self.rules.get(entity, ()):
            if len(self.tasks) >= self.concurrency:
                self.stats.dropped += 1
                continue
            self.stats.scheduled += 1
            task = asyncio.create_task(
                self._prefetch(rule, entity_id), context=contextvars.Context()
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def page_slot(self, rule: PrefetchRule, entity_id: UUID, uow: UnitOfWork) -> PageSlot:
        repo = SQLAlchemyRepository(self.registry[rule.target], self.registry, uow)
        return PageSlot(self.layer.cache, repo, {rule.filter: entity_id}, DEFAULT_LIMIT, 0)

    async def _prefetch(self, rule: PrefetchRule, entity_id: UUID) -> None:
        uow = UnitOfWork(self.session_factory)
        try:
            slot = self.page_slot(rule, entity_id, uow)
            read = await slot.peek()
            if read is not None and read.value is not None:
                self.stats.already_cached += 1
                return
            await self.layer.loader.read_through(slot)
            self.stats.completed += 1
        except Exception:  # a background task: logged and counted, never raised
            self.stats.errors += 1
            logger.exception("prefetch of %s of %s %s failed", rule.target, rule.source, entity_id)
        finally:
            await uow.close()

    def snapshot(self) -> dict[str, int]:
        return {**asdict(self.stats), "running": self.running, "concurrency": self.concurrency}

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class PrefetchingEntrySlot(EntrySlot):
    """An entry slot whose database load schedules the entity's prefetches."""

    __slots__ = ("prefetcher",)

    def __init__(
        self,
        cache: CacheService,
        inner: SQLAlchemyRepository,
        entity_id: UUID,
        prefetcher: Prefetcher,
    ) -> None:
        super().__init__(cache, inner, entity_id)
        self.prefetcher = prefetcher

    async def load(self) -> Loaded | None:
        loaded = await super().load()
        if loaded is not None:
            self.prefetcher.after_load(self.entity, self.entity_id)
        return loaded


class PrefetchingRepository(CachedRepository):
    """The cached repository of an entity with prefetch rules."""

    def __init__(
        self, inner: SQLAlchemyRepository, layer: CacheLayer, prefetcher: Prefetcher
    ) -> None:
        super().__init__(inner, layer)
        self.prefetcher = prefetcher

    async def get(self, entity_id: UUID) -> Doc | None:
        slot = PrefetchingEntrySlot(self.layer.cache, self.inner, entity_id, self.prefetcher)
        loaded = await self.layer.loader.read_through(slot)
        return None if loaded is None else Doc(entity_id, loaded.version, loaded.body)
