"""The one read-through path of entries and list pages.

Hit: the stored bytes are served as they are, unless due for an early refresh (XFetch: one
caller reloads a hot entry before it expires, with a probability growing as expiry nears).
Miss: one load per key in this process (single flight); across processes, one holder of a
short Redis lease loads while the others wait a bounded time for its fill, then load
themselves. A caller that joined a load begun before a write it can see (a marker of a newer
version) loads again. A load is stored with a versioned fill (see `scripts.py`), and only by
the holder of the lease taken before the database read (an early refresh takes one too, or
does not happen): a write's invalidation deletes the lease, so a fill of what was read
before it is refused even if the marker is gone. A holder that does not fill (no row, a
database error, a load too slow to store, a cancellation) releases the lease at once.

A `Slot` is where one value lives: an entry or a page (`slots.py`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from app.cache import format
from app.cache.guard import cancelling
from app.cache.latency import looked_up
from app.cache.near.fill import offer
from app.cache.service import CacheService, Read
from app.cache.singleflight import SingleFlight
from app.cache.stats import database_load_seconds

logger = logging.getLogger(__name__)

#: How often a caller waiting for another process's load looks for its fill.
LEASE_POLL_SECONDS = 0.01
#: A load that took longer than this share of the TTL is not stored: the entry would be due
#: for an early refresh at once.
MAX_LOAD_SHARE_OF_TTL = 0.5
LEASE_TOKEN_BYTES = 8


@dataclass(frozen=True, slots=True)
class Loaded:
    version: int  # 0 for pages: they are versioned by their generations
    body: bytes


class Slot(Protocol):
    """Where one cached value lives, and how to read, load and store it."""

    entity: str
    key: str  # for logs
    deps: tuple[bytes, ...]  # the Redis keys whose invalidation makes it stale (near cache)

    async def peek(self) -> Read | None: ...  # the hit path's read
    async def read(self, lease_token: str) -> Read | None: ...  # the miss path's read
    async def load(self) -> Loaded | None: ...  # from the database; None: no such row
    async def fill(self, read: Read, loaded: Loaded, load_ms: int, lease_token: str) -> bool: ...
    def flight(self, read: Read | None) -> Hashable: ...  # its single-flight key
    async def take_lease(self, lease_token: str) -> bool: ...  # the lease alone (refresh)
    async def release(self, lease_token: str) -> None: ...  # give the lease back


class Loader:
    """What the cached repositories of one app share: the service, flights and tuning."""

    def __init__(self, cache: CacheService) -> None:
        self.cache = cache
        self.flights: SingleFlight[Loaded | None] = SingleFlight()
        cache.guard.epoch_listeners.append(lambda: self.flights.forget(lambda _key: True))
        settings = cache.settings
        self.beta = settings.cache_early_refresh_beta
        self.lease_wait = settings.cache_lease_wait_ms / 1000
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self._releasing: set[asyncio.Task[None]] = set()

    async def read_through(self, slot: Slot) -> Loaded | None:
        stats = self.cache.stats[slot.entity]
        read = await slot.peek()
        due: Read | None = None
        refresh = ""
        if read is not None and read.value is not None:
            entry = format.parse_entry(read.value)  # None: corrupt, replaced like a miss
            if entry is not None:
                if self._refresh_early(entry):
                    refresh = secrets.token_hex(LEASE_TOKEN_BYTES)
                    if not await slot.take_lease(refresh):
                        refresh = ""  # another caller refreshes it (or Redis failed)
                if not refresh:
                    stats.hits += 1
                    looked_up(slot.entity, missed=False)
                    offer(slot.entity, slot.deps, entry.expires_ms)
                    if self.debug:
                        ttl_left = round(entry.expires_ms / 1000 - time.time())
                        logger.debug("cache hit %s ttl=%ds", slot.key, ttl_left)
                    return Loaded(entry.version, entry.body)
                due = read  # this caller reloads it early; the others keep hitting
        if read is not None and read.deleted:
            stats.hits += 1  # a delete marker: known absent
            looked_up(slot.entity, missed=False)
            return None
        stats.misses += 1
        looked_up(slot.entity, missed=True)
        if self.debug:
            logger.debug("cache %s %s", "early refresh" if due else "miss", slot.key)
        # One flight per value, whether or not Redis answered. Loads begun before a write
        # this process acknowledged, or before an epoch move, take no new callers.
        loaded, shared = await self.flights.run(
            slot.flight(read), lambda: self._load(slot, due, refresh)
        )
        if shared:
            await self._release(slot, refresh)  # joined a load: no refresh of its own
            stats.stampede_waits += 1
            if loaded is not None and read is not None and loaded.version < read.floor:
                loaded = await self._load(slot)  # joined a load older than a write it saw
        return loaded

    async def _load(self, slot: Slot, due: Read | None = None, token: str = "") -> Loaded | None:
        """Load from the database and fill. Unless refreshing a `due` entry (under the lease
        `token` already taken), first take the load lease or wait a bounded time for the
        process that holds it."""
        read = due
        if due is None:
            token = secrets.token_hex(LEASE_TOKEN_BYTES)
            read = await slot.read(token)
            deadline: float | None = None
            while read is not None and read.value is None and not read.lease and not read.deleted:
                if deadline is None:
                    self.cache.stats[slot.entity].stampede_waits += 1
                    deadline = time.monotonic() + self.lease_wait
                if time.monotonic() >= deadline:
                    token = ""
                    break
                await asyncio.sleep(LEASE_POLL_SECONDS)
                read = await slot.read(token)
            held = read is not None and read.lease
            if read is not None and read.value is not None:
                entry = format.parse_entry(read.value)
                if entry is not None:
                    offer(slot.entity, slot.deps, entry.expires_ms)
                    return Loaded(entry.version, entry.body)
                held = bool(token) and await slot.take_lease(token)  # corrupt: replace it
            if not held:
                token = ""  # no fill without the lease
            if read is not None and read.deleted:
                await self._release(slot, token)
                return None
        ttl = self.cache.ttls[slot.entity]
        try:
            loaded, load_ms = await self._timed(slot)
            fast = load_ms < ttl * 1000 * MAX_LOAD_SHARE_OF_TTL
            if read is not None and token and loaded is not None and fast:
                stored = await slot.fill(read, loaded, load_ms, token)
                token = ""  # the fill gave the lease back, stored or not
                if stored:
                    self.cache.stats[slot.entity].sets += 1
                    offer(slot.entity, slot.deps, int((time.time() + ttl) * 1000))
                if self.debug:
                    logger.debug("cache fill %s ttl=%d stored=%s", slot.key, ttl, stored)
        finally:
            await self._release(slot, token)
        return loaded

    async def _release(self, slot: Slot, token: str) -> None:
        """Give back a lease that no fill will follow, so that other readers do not wait for
        it. A cancelled caller hands the release to a task of its own."""
        if not token:
            return
        if cancelling():
            task = asyncio.create_task(slot.release(token))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)
            return
        await slot.release(token)

    async def _timed(self, slot: Slot) -> tuple[Loaded | None, int]:
        started = time.perf_counter()
        loaded = await slot.load()
        elapsed = time.perf_counter() - started
        self.cache.stats[slot.entity].database_loads += 1
        database_load_seconds.labels(slot.entity).observe(elapsed)
        return loaded, max(1, round(elapsed * 1000))

    def _refresh_early(self, entry: format.Entry) -> bool:
        """XFetch: refresh before expiry with a probability growing as expiry nears."""
        if not self.beta:
            return False
        remaining_ms = entry.expires_ms - time.time() * 1000
        return -entry.load_ms * self.beta * math.log(1.0 - random.random()) >= remaining_ms
