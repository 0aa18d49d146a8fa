"""CachedRepository: the SQLAlchemy repository's interface, served cache-aside from Redis.

Reads: hit -> the stored bytes are served as they are; miss -> one load per key in this
process (single flight) and, across processes, one holder of a short Redis lease while the
others wait a bounded time for its fill. Hot entries are refreshed early by one caller
(probabilistic early expiration, XFetch). Writes: delegate (the repository flushes), and
after the unit of work commits, invalidate by the rules table in `invalidation.py`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from app.cache.invalidation import InvalidationPlan, plan_invalidation
from app.cache.metrics import database_load_seconds
from app.cache.scripts import DELETED_VERSION
from app.cache.service import CacheService, EntryRead, PageRead
from app.cache.singleflight import SingleFlight
from app.cache.stats import EntityStats
from app.cache.strategy import EntityKeys, Unwrapped, envelope, unwrap
from app.core.database import UnitOfWork
from app.core.documents import Doc, Operation
from app.core.repository import Filters, SQLAlchemyRepository

logger = logging.getLogger(__name__)

LEASE_POLL_SECONDS = 0.01


class CacheLayer:
    """What the cached repositories of one app share: the service, keys, TTLs, flights."""

    def __init__(
        self, cache: CacheService, keys: Mapping[str, EntityKeys], ttls: Mapping[str, int]
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.ttls = ttls
        self.flights: SingleFlight[Any] = SingleFlight()
        cache.epoch_listeners.append(lambda: self.flights.forget(lambda _key: True))
        self.beta = cache.settings.cache_early_refresh_beta
        self.lease_wait = cache.settings.cache_lease_wait_ms / 1000
        self.debug = logger.isEnabledFor(logging.DEBUG)


class CachedRepository:
    def __init__(self, inner: SQLAlchemyRepository[Any, Any], layer: CacheLayer) -> None:
        self.inner = inner
        self.layer = layer
        self.entity = inner.entity
        self.keys = layer.keys[self.entity]
        self.ttl = layer.ttls[self.entity]
        self.cache = layer.cache
        self.stats: EntityStats = layer.cache.stats[self.entity]

    @property
    def uow(self) -> UnitOfWork:
        return self.inner.uow

    # -- reads -----------------------------------------------------------------------------
    async def get(self, entity_id: UUID) -> Doc | None:
        key = self.keys.entry(entity_id)
        read = await self.cache.peek_entry(self.entity, key)
        due: EntryRead | None = None
        if read is not None and read.value is not None:
            served, early = self._hit(read.value, key)
            if served is not None:
                return Doc(entity_id, served.version, served.body)
            if early:
                due = read  # this caller reloads it early; the others keep hitting
        if read is not None and read.floor == DELETED_VERSION:
            self.stats.hits += 1  # a delete marker: known absent
            return None
        self.stats.misses += 1
        if self.layer.debug:
            logger.debug("cache %s %s", "early refresh" if due else "miss", key)
        # One flight per entry, whether or not Redis answered. A caller that joins a load
        # begun before a write it can see (a marker of a newer version) loads again; loads
        # begun before a write this process acknowledged, or before an epoch move, take no
        # new callers (see `_invalidate`).
        doc, shared = await self.layer.flights.run(
            key, lambda: self._load_entry(entity_id, key, due)
        )
        if shared:
            self.stats.stampede_waits += 1
            floor = read.floor if read else 0
            if doc is not None and doc.version < floor:
                doc = await self._load_entry(entity_id, key)  # joined a load older than a write
        return doc

    async def _load_entry(
        self, entity_id: UUID, key: str, due: EntryRead | None = None
    ) -> Doc | None:
        """Load from the database and fill. Unless refreshing a `due` entry, first take the
        load lease or wait a bounded time for the process that holds it."""
        lease_key = self.keys.lease(key)
        token = ""
        read = due
        if due is None:
            token = secrets.token_hex(8)
            read = await self.cache.read_entry(self.entity, key, lease_key, token)
            waited = False
            while (
                read is not None
                and read.value is None
                and not read.lease
                and read.floor != DELETED_VERSION
            ):
                if not waited:
                    self.stats.stampede_waits += 1
                    deadline = time.monotonic() + self.layer.lease_wait
                    waited = True
                if time.monotonic() >= deadline:
                    token = ""
                    break
                await asyncio.sleep(LEASE_POLL_SECONDS)
                read = await self.cache.read_entry(self.entity, key, lease_key, token)
            if read is not None and read.value is not None:
                unwrapped = unwrap(read.value)
                if unwrapped is not None:
                    return Doc(entity_id, unwrapped.version, unwrapped.body)
            if read is not None and read.floor == DELETED_VERSION:
                return None
        doc, load_ms = await self._timed(self.inner.get(entity_id))
        if read is not None and doc is not None and load_ms < self.ttl * 500:
            payload = envelope(read.epoch, doc.version, self.ttl, load_ms, doc.body)
            stored = await self.cache.fill_entry(
                self.entity,
                key,
                lease_key,
                read.epoch,
                doc.version,
                payload,
                self.ttl,
                token if read.lease else "",
            )
            self._filled(key, stored)
        return doc

    async def list(self, filters: Filters, limit: int, offset: int) -> bytes:
        query = self.keys.page(filters.given(), limit, offset)
        scope_key = self.keys.generation(query.scope)
        read = await self.cache.read_page(self.entity, query.base, scope_key, query.base, "")
        due: PageRead | None = None
        if read is not None and read.value is not None:
            served, early = self._hit(read.value, read.key)
            if served is not None:
                return served.body
            if early:
                due = read
        self.stats.misses += 1
        if self.layer.debug:
            logger.debug("cache %s %s", "early refresh" if due else "miss", query.base)
        flight_key = read.key if read is not None else (query.base, None)

        async def load() -> bytes:
            lease_key = self.keys.lease(query.base)
            return await self._load_page(
                filters, limit, offset, query.base, scope_key, lease_key, due
            )

        body, shared = await self.layer.flights.run(flight_key, load)
        if shared:
            self.stats.stampede_waits += 1
        return body

    async def _load_page(
        self,
        filters: Filters,
        limit: int,
        offset: int,
        base: str,
        scope_key: str,
        lease_key: str,
        due: PageRead | None = None,
    ) -> bytes:
        token = ""
        read = due
        if due is None:
            token = secrets.token_hex(8)
            read = await self.cache.read_page(self.entity, base, scope_key, lease_key, token)
            deadline = time.monotonic() + self.layer.lease_wait
            while read is not None and read.value is None and not read.lease:
                if time.monotonic() >= deadline:
                    token = ""
                    break
                await asyncio.sleep(LEASE_POLL_SECONDS)
                read = await self.cache.read_page(self.entity, base, scope_key, lease_key, token)
            if read is not None and read.value is not None:
                unwrapped = unwrap(read.value)
                if unwrapped is not None:
                    return unwrapped.body
        body, load_ms = await self._timed(self.inner.list(filters, limit, offset))
        if read is not None and load_ms < self.ttl * 500:
            payload = envelope(b"0", 0, self.ttl, load_ms, body)
            stored = await self.cache.fill_page(
                self.entity, read.key, lease_key, payload, self.ttl, token if read.lease else ""
            )
            self._filled(read.key.decode(), stored)
        return body

    def _hit(self, value: bytes, key: str | bytes) -> tuple[Unwrapped | None, bool]:
        """(the entry to serve, or None; whether it is due for an early refresh)."""
        unwrapped = unwrap(value)
        if unwrapped is None:
            return None, False  # corrupt: reloaded and replaced like a miss
        if self._refresh_early(unwrapped.load_ms, unwrapped.expires_ms):
            return None, True
        self.stats.hits += 1
        if self.layer.debug:
            label = key if isinstance(key, str) else key.decode()
            ttl_left = round(unwrapped.expires_ms / 1000 - time.time())
            logger.debug("cache hit %s ttl=%ds", label, ttl_left)
        return unwrapped, False

    def _refresh_early(self, load_ms: int, expires_ms: int) -> bool:
        """XFetch: refresh before expiry with a probability growing as expiry nears."""
        if not self.layer.beta:
            return False
        remaining_ms = expires_ms - time.time() * 1000
        return -load_ms * self.layer.beta * math.log(1.0 - random.random()) >= remaining_ms

    async def _timed(self, load: Awaitable[Any]) -> tuple[Any, int]:
        started = time.perf_counter()
        result = await load
        elapsed = time.perf_counter() - started
        self.stats.database_loads += 1
        database_load_seconds.labels(self.entity).observe(elapsed)
        return result, max(1, round(elapsed * 1000))

    def _filled(self, key: str, stored: bool) -> None:
        if stored:
            self.stats.sets += 1
        if self.layer.debug:
            logger.debug("cache fill %s ttl=%d stored=%s", key, self.ttl, stored)

    # -- writes ----------------------------------------------------------------------------
    async def _write(self, write: Callable[[], Awaitable[Any]]) -> Any:
        first = len(self.uow.changes)
        result = await write()
        changes = self.uow.changes[first:]
        if changes:
            self.uow.after_commit(lambda: self._invalidate(changes))
        return result

    async def _invalidate(self, changes: list[Any]) -> None:
        plan = plan_invalidation(changes, self.layer.keys, self.layer.ttls)
        touched = {c.entity for c in changes} | {r.entity for c in changes for r in c.related}
        self._close_flights(plan, touched)
        sent = await self.cache.invalidate(self.entity, plan.markers, plan.counters)
        count = len(plan.markers) + len(plan.counters)
        if sent:
            self.stats.invalidations += count
        reasons = ", ".join(f"{c.entity} {c.op} {c.id}" for c in changes)
        logger.info("cache invalidated %d keys after %s (sent=%s)", count, reasons, sent)

    def _close_flights(self, plan: InvalidationPlan, entities: set[str]) -> None:
        """Loads in flight may have read the rows this write changed: callers arriving after
        the write must not join them. Page loads keyed by generations need nothing (the
        write moves the generations); those of callers whose Redis read failed do."""
        entries = {marker.key for marker in plan.markers}
        namespaces = tuple(self.layer.keys[entity].namespace for entity in entities)

        def stale(flight: Hashable) -> bool:
            if flight in entries:
                return True
            return (
                isinstance(flight, tuple) and flight[1] is None and flight[0].startswith(namespaces)
            )

        self.layer.flights.forget(stale)

    async def add(self, data: BaseModel) -> Doc:
        return await self._write(lambda: self.inner.add(data))

    async def update(
        self,
        entity_id: UUID,
        changes: dict[str, Any],
        expected_version: int | None = None,
        *,
        op: Operation = "update",
    ) -> Doc:
        return await self._write(
            lambda: self.inner.update(entity_id, changes, expected_version, op=op)
        )

    async def delete(self, entity_id: UUID, expected_version: int | None = None) -> None:
        await self._write(lambda: self.inner.delete(entity_id, expected_version))

    # -- management ------------------------------------------------------------------------
    async def invalidate_cache(self, entity_id: UUID | None = None) -> bool:
        """Manual invalidation: one entry (its version stays as the floor for fills), or
        every entry and list of this entity."""
        if entity_id is not None:
            return await self.cache.demote(self.entity, [self.keys.entry(entity_id)], self.ttl)
        return await self.cache.move_epoch([self.entity])

    def get_cache_stats(self) -> dict[str, float]:
        return self.stats.as_dict()
