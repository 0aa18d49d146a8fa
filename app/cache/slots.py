"""The two kinds of cached values, as the loader sees them: an entity's entry, keyed by id
and versioned by the row's version; a list page, keyed by its query and stamped with the
epoch and generations it was filled under."""

from __future__ import annotations

from collections.abc import Hashable
from uuid import UUID

from app.cache import format
from app.cache.loader import Loaded
from app.cache.service import CacheService, Read
from app.core.repository import Filters, SQLAlchemyRepository


class EntrySlot:
    __slots__ = ("cache", "deps", "entity", "entity_id", "inner", "key", "lease_key")

    def __init__(self, cache: CacheService, inner: SQLAlchemyRepository, entity_id: UUID) -> None:
        self.cache = cache
        self.inner = inner
        self.entity = inner.spec.name
        self.entity_id = entity_id
        keys = cache.keys[self.entity]
        self.key = keys.entry(entity_id)
        self.lease_key = keys.lease(self.key)
        self.deps: tuple[bytes, ...] = (self.key.encode(), keys.epoch_of(self.key).encode())

    async def peek(self) -> Read | None:
        return await self.cache.peek_entry(self.entity, self.key)

    async def read(self, lease_token: str) -> Read | None:
        return await self.cache.read_entry(self.entity, self.key, self.lease_key, lease_token)

    async def load(self) -> Loaded | None:
        doc = await self.inner.get(self.entity_id)
        return None if doc is None else Loaded(doc.version, doc.body)

    async def fill(self, read: Read, loaded: Loaded, load_ms: int, lease_token: str) -> bool:
        ttl = self.cache.ttls[self.entity]
        payload = format.entry(read.at, loaded.version, ttl, load_ms, loaded.body)
        return await self.cache.fill_entry(
            self.entity, self.key, self.lease_key, read, loaded.version, payload, lease_token
        )

    def flight(self, read: Read | None) -> Hashable:
        return self.key  # one flight per entry, whatever Redis answered

    async def take_lease(self, lease_token: str) -> bool:
        return await self.cache.take_lease(self.entity, self.lease_key, lease_token)

    async def release(self, lease_token: str) -> None:
        await self.cache.release_lease(self.entity, self.lease_key, lease_token)


class PageSlot:
    __slots__ = (
        "cache",
        "deps",
        "entity",
        "filters",
        "inner",
        "key",
        "lease_key",
        "limit",
        "offset",
        "scope_key",
    )

    def __init__(
        self,
        cache: CacheService,
        inner: SQLAlchemyRepository,
        filters: Filters,
        limit: int,
        offset: int,
    ) -> None:
        self.cache = cache
        self.inner = inner
        self.entity = inner.spec.name
        self.filters, self.limit, self.offset = filters, limit, offset
        keys = cache.keys[self.entity]
        query = keys.page(filters, limit, offset)
        self.key = query.base
        self.scope_key = keys.generation(query.scope)
        self.lease_key = keys.lease(query.base)
        self.deps: tuple[bytes, ...] = (
            self.scope_key.encode(),
            keys.family.encode(),
            keys.pages_epoch.encode(),
        )

    async def peek(self) -> Read | None:
        return await self.cache.peek_page(self.entity, self.key, self.scope_key)

    async def read(self, lease_token: str) -> Read | None:
        return await self.cache.read_page(
            self.entity, self.key, self.scope_key, self.lease_key, lease_token
        )

    async def load(self) -> Loaded:
        return Loaded(0, await self.inner.list(self.filters, self.limit, self.offset))

    async def fill(self, read: Read, loaded: Loaded, load_ms: int, lease_token: str) -> bool:
        ttl = self.cache.ttls[self.entity]
        payload = format.entry(read.at, 0, ttl, load_ms, loaded.body)  # stamped
        return await self.cache.fill_page(
            self.entity, self.key, self.scope_key, self.lease_key, read, payload, lease_token
        )

    def flight(self, read: Read | None) -> Hashable:
        # Pages of one query under new generations are another flight; without Redis the
        # query alone names it (closed by writes to the entity, see `CachedRepository`).
        return (self.key, read.at if read is not None else None)

    async def take_lease(self, lease_token: str) -> bool:
        return await self.cache.take_lease(self.entity, self.lease_key, lease_token)

    async def release(self, lease_token: str) -> None:
        await self.cache.release_lease(self.entity, self.lease_key, lease_token)
