"""CachedRepository: the repository interface, served read-through from Redis.

Reads go through the one load path (`loader.py`). Writes delegate to the SQLAlchemy
repository (which flushes and records what it changed); what `invalidation.py` derives from
the changes is recorded in the outbox in the same transaction (`outbox.py`), and sent after
the unit of work commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel

from app.cache.invalidation import InvalidationPlan, invalidation_rules, plan_invalidation
from app.cache.keys import SaltUnknown
from app.cache.loader import Loader
from app.cache.outbox import Outbox
from app.cache.service import CacheService
from app.cache.slots import EntrySlot, PageSlot
from app.core.database import UnitOfWork
from app.core.documents import Change, Doc
from app.core.registry import UPDATE, Registry
from app.core.repository import Filters, SQLAlchemyRepository

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CacheLayer:
    """What the cached repositories of one app share."""

    def __init__(self, cache: CacheService, registry: Registry, outbox: Outbox) -> None:
        self.cache = cache
        self.outbox = outbox
        self.loader = Loader(cache)
        self.rules = invalidation_rules(registry)


class CachedRepository:
    def __init__(self, inner: SQLAlchemyRepository, layer: CacheLayer) -> None:
        self.inner = inner
        self.layer = layer
        self.entity = inner.spec.name

    @property
    def uow(self) -> UnitOfWork:
        return self.inner.uow

    # -- reads -----------------------------------------------------------------------------
    async def get(self, entity_id: UUID) -> Doc | None:
        slot = EntrySlot(self.layer.cache, self.inner, entity_id)
        loaded = await self.layer.loader.read_through(slot)
        return None if loaded is None else Doc(entity_id, loaded.version, loaded.body)

    async def list(self, filters: Filters, limit: int, offset: int) -> bytes:
        cache = self.layer.cache
        if not cache.keys_ready:
            await cache.load_key_salt()
        try:
            slot = PageSlot(cache, self.inner, filters, limit, offset)
        except SaltUnknown:  # a personal filter, and Redis not reached since the start
            return await self.inner.list(filters, limit, offset)
        loaded = await self.layer.loader.read_through(slot)
        assert loaded is not None  # a page always loads
        return loaded.body

    # -- writes ----------------------------------------------------------------------------
    async def add(self, data: BaseModel) -> Doc:
        return await self._write(lambda: self.inner.add(data))

    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: str = UPDATE,
    ) -> Doc:
        return await self._write(
            lambda: self.inner.update(entity_id, changes, expected_version, op=op)
        )

    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None:
        await self._write(lambda: self.inner.delete(entity_id, expected_version))

    async def _write(self, write: Callable[[], Awaitable[T]]) -> T:
        first = len(self.uow.changes)
        result = await write()
        changes = self.uow.changes[first:]
        if changes:
            plan = await self._plan(changes)
            row = self.layer.outbox.record(self.uow.session, self.entity, plan)
            self.uow.after_commit(lambda: self._invalidate(changes, plan, row))
        return result

    async def _plan(self, changes: Sequence[Change]) -> InvalidationPlan:
        """What the write invalidates. While the key salt is unknown (Redis not reached since
        the start, no `CACHE_KEY_SALT`) the keys of personal values cannot be named: the
        touched entities' epochs move instead (evidence of an invalidation that cannot be
        made precise), here and, through the outbox row, in every process."""
        cache = self.layer.cache
        if not cache.keys_ready:
            await cache.load_key_salt()
        try:
            return plan_invalidation(changes, self.layer.rules, cache.keys, cache.ttls)
        except SaltUnknown:
            entities = {c.entity for c in changes} | {r.entity for c in changes for r in c.related}
            return InvalidationPlan(
                counters={key for entity in entities for key in cache.keys[entity].epochs},
                entities=entities,
            )

    async def _invalidate(
        self, changes: Sequence[Change], plan: InvalidationPlan, row: uuid.UUID
    ) -> None:
        cache = self.layer.cache
        self._close_flights(plan)
        sent = await cache.invalidate(self.entity, plan.markers, plan.counters, plan.entities)
        count = len(plan.markers) + len(plan.counters)
        if sent:
            self.layer.outbox.applied(row)
            cache.stats[self.entity].invalidations += count
        reasons = ", ".join(f"{c.entity} {c.op} {c.id}" for c in changes)
        logger.info("cache invalidated %d keys after %s (sent=%s)", count, reasons, sent)

    def _close_flights(self, plan: InvalidationPlan) -> None:
        """Loads in flight may have read the rows this write changed: callers arriving after
        the write must not join them. Page loads keyed by generations need nothing (the
        write moves the generations); those of callers whose Redis read failed do."""
        entries = {marker.key for marker in plan.markers}
        keys = self.layer.cache.keys
        namespaces = tuple(keys[entity].namespace for entity in plan.entities)

        def stale(flight: Hashable) -> bool:
            if flight in entries:
                return True
            return (
                isinstance(flight, tuple) and flight[1] is None and flight[0].startswith(namespaces)
            )

        self.layer.loader.flights.forget(stale)
