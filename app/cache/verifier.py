"""The consistency verifier: a background task that samples cached entries, compares each
with its row in the database, counts what it checked and what it found stale, and repairs
the stale ones through the normal path (`CacheService.demote`: the entry stops being served,
its version stays as the floor for fills, near caches drop their copies).

Every `CACHE_VERIFY_INTERVAL_S` one round runs:

1. **Sample.** Up to `CACHE_VERIFY_SAMPLE` entries, shared among the entities, taken by a
   SCAN cursor per entity (on a cluster, one per primary: `key_scan.py`) that carries on
   from one round to the next (so successive rounds cover the whole cache), then one `MGET`
   of each entity's epoch and the sampled entries (on a cluster, one per slot); only entries
   of the current epoch are compared (others are never served).
2. **Compare.** One `SELECT … WHERE id IN (…)` per entity; an entry is *suspect* when the row
   is gone, or its version or its JSON differs from the cached one.
3. **Re-check.** A write commits before it invalidates, so an entry can be older than its
   row for a moment without being stale. Suspects are read again after `recheck_delay`
   (1 s, or half the interval if shorter — far longer than a write's commit→invalidate
   step, whose Redis deadline is 50 ms; an invalidation that failed moves the epoch
   instead): only an entry still holding the very same bytes, with the row still different,
   counts as stale. A write in flight has replaced the entry with its marker by then.

Database load per interval: one query per entity with at most the sample's ids, plus one
more for the suspects. Redis load: the SCAN rounds (bounded by `MAX_SCAN_CALLS` per entity;
on a cluster a round is one call per primary) and two MGETs (on a cluster, one per slot).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any, cast
from uuid import UUID

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cache import format
from app.cache.cluster import is_cluster
from app.cache.guard import FAILED
from app.cache.key_scan import KeyScan
from app.cache.keys import escape_glob
from app.cache.service import CacheService
from app.core.database import UnitOfWork
from app.core.metrics import per_entity_counters
from app.core.registry import Registry
from app.core.repository import SQLAlchemyRepository

logger = logging.getLogger(__name__)

#: The longest a re-check waits before reading a suspect again.
RECHECK_DELAY_S = 1.0
#: SCAN's COUNT hint, and the most SCAN calls one entity's sampling makes in a round.
SCAN_COUNT = 200
MAX_SCAN_CALLS = 20
UUID_LENGTH = 36


@dataclass
class VerifierCounts:
    checked: int = 0  # entries compared with the database
    stale: int = 0  # still different after the re-check: repaired
    repaired: int = 0  # of the stale, those whose demotion reached Redis
    suspects: int = 0  # different at first look (a write in flight, or stale)


COUNTED = tuple(f.name for f in fields(VerifierCounts))


@dataclass(frozen=True)
class Sampled:
    key: str
    entity_id: UUID
    value: bytes  # the stored entry, as read
    entry: format.Entry


def nines(checked: int, stale: int) -> float | None:
    """Measured consistency as nines: -log10(stale share). With no stale entry, the
    nines the sample supports (log10 of what was checked); None before any check."""
    if checked == 0:
        return None
    if stale == 0:
        return round(math.log10(checked), 2)
    return round(-math.log10(stale / checked), 2)


class Verifier:
    def __init__(
        self,
        cache: CacheService,
        registry: Registry,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        sample: int,
        interval: float,
        recheck_delay: float | None = None,
    ) -> None:
        self.cache = cache
        self.registry = registry
        self.session_factory = session_factory
        self.sample = sample
        self.interval = interval
        self.recheck_delay = (
            min(RECHECK_DELAY_S, interval / 2) if recheck_delay is None else recheck_delay
        )
        self.counts = {name: VerifierCounts() for name in registry.names}
        self.scans = {
            name: KeyScan(escape_glob(cache.keys[name].namespace) + "*", SCAN_COUNT)
            for name in registry.names
        }
        self.pending: dict[str, list[str]] = {name: [] for name in registry.names}
        self.rounds = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.sample > 0 and self.cache.enabled

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.verify_once()
            except Exception:  # the task must outlive one bad round
                self.errors += 1
                logger.exception("cache verifier round failed")

    # -- one round -------------------------------------------------------------------------
    async def verify_once(self) -> dict[str, VerifierCounts]:
        """One round over every entity; returns this round's counts."""
        names = self.registry.names
        share = max(1, self.sample // len(names))
        found: dict[str, list[Sampled]] = {}
        suspects: dict[str, list[Sampled]] = {}
        this_round = {name: VerifierCounts() for name in names}
        for entity in names:
            sampled = await self._sample(entity, share)
            if not sampled:
                continue
            found[entity] = sampled
            rows = await self._rows(entity, [s.entity_id for s in sampled])
            this_round[entity].checked = len(sampled)
            suspects[entity] = [s for s in sampled if _differs(s, rows.get(s.entity_id))]
            this_round[entity].suspects = len(suspects[entity])
        if any(suspects.values()):
            await asyncio.sleep(self.recheck_delay)
            for entity, candidates in suspects.items():
                if candidates:
                    stale = await self._still_stale(entity, candidates)
                    this_round[entity].stale = len(stale)
                    if stale and await self.cache.demote(entity, [s.key for s in stale]):
                        this_round[entity].repaired = len(stale)
                    for item in stale:
                        logger.warning(
                            "cache verifier: stale %s %s (cached version %d) repaired",
                            entity,
                            item.entity_id,
                            item.entry.version,
                        )
        for entity, counts in this_round.items():
            total = self.counts[entity]
            total.checked += counts.checked
            total.stale += counts.stale
            total.repaired += counts.repaired
            total.suspects += counts.suspects
        self.rounds += 1
        return this_round

    async def _sample(self, entity: str, wanted: int) -> list[Sampled]:
        """Up to `wanted` entries, continuing the entity's SCAN where the last round left
        it (keys a SCAN call returned beyond `wanted` wait for the next round)."""
        keys = self.cache.keys[entity]
        scan = self.scans[entity]
        picked = self.pending[entity]
        for _ in range(MAX_SCAN_CALLS):
            if len(picked) >= wanted:
                break
            batch = await scan.step(self.cache.guard, entity)
            if batch is None:
                return []
            seen = set(picked)
            for raw in batch:
                key = raw.decode()
                if _entry_id(key, keys) is not None and key not in seen:
                    picked.append(key)
                    seen.add(key)
            if scan.done:
                break  # a full pass: the next round starts another
        self.pending[entity] = picked[wanted:]
        return await self._read(entity, picked[:wanted])

    async def _read(self, entity: str, keys: list[str]) -> list[Sampled]:
        """The entries of the current epoch among `keys`."""
        if not keys:
            return []
        entity_keys = self.cache.keys[entity]
        epoch_keys = [entity_keys.epoch_of(key) for key in keys]  # one per key's hash tag
        result = await self.cache.guard.run(entity, lambda redis: _mget(redis, epoch_keys + keys))
        if result is FAILED:
            return []
        read = cast("list[bytes | None]", result)
        epochs, values = read[: len(keys)], read[len(keys) :]
        sampled = []
        for key, epoch, value in zip(keys, epochs, values, strict=True):
            entity_id = _entry_id(key, entity_keys)
            if epoch is None or value is None or entity_id is None:
                continue
            if not value.startswith(format.entry_head(epoch)):
                continue
            entry = format.parse_entry(value)
            if entry is not None:
                sampled.append(Sampled(key, entity_id, value, entry))
        return sampled

    async def _rows(self, entity: str, ids: Iterable[UUID]) -> dict[UUID, tuple[int, bytes]]:
        """Version and JSON of these rows, serialized as the cache stores them."""
        spec = self.registry[entity]
        uow = UnitOfWork(self.session_factory)
        try:
            repo = SQLAlchemyRepository(spec, self.registry, uow)
            rows = await uow.session.scalars(select(spec.model).where(spec.model.id.in_(ids)))
            docs = [repo.to_doc(row) for row in rows]
            return {doc.id: (doc.version, doc.body) for doc in docs}
        finally:
            await uow.close()

    async def _still_stale(self, entity: str, suspects: list[Sampled]) -> list[Sampled]:
        again = {s.key: s for s in await self._read(entity, [s.key for s in suspects])}
        unchanged = [s for s in suspects if (a := again.get(s.key)) and a.value == s.value]
        if not unchanged:
            return []
        rows = await self._rows(entity, [s.entity_id for s in unchanged])
        return [s for s in unchanged if _differs(s, rows.get(s.entity_id))]

    # -- reporting -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        checked = sum(c.checked for c in self.counts.values())
        stale = sum(c.stale for c in self.counts.values())
        return {
            "enabled": self.enabled,
            "interval_s": self.interval,
            "sample": self.sample,
            "rounds": self.rounds,
            "errors": self.errors,
            "checked": checked,
            "stale": stale,
            "consistency": round(1 - stale / checked, 6) if checked else None,
            "nines": nines(checked, stale),
            "entities": {name: asdict(c) for name, c in self.counts.items()},
        }


def _entry_id(key: str, keys: format.EntityKeys) -> UUID | None:
    """The id of an entry key of this entity (None: a page, a lease, another key)."""
    rest = key.rpartition(":")[2]
    if len(rest) != UUID_LENGTH:
        return None
    try:
        entity_id = UUID(rest)
    except ValueError:
        return None
    return entity_id if keys.entry(entity_id) == key else None


def _mget(redis: Redis, keys: list[str]) -> Awaitable[Any]:
    """One MGET; on a cluster one per slot (an entry and its epoch share a hash tag, so the
    two are still read together), the answers in the order of `keys`."""
    if is_cluster(redis):
        per_slot: Awaitable[Any] = cast("Any", redis).mget_nonatomic(keys)
        return per_slot
    return redis.mget(keys)


def _differs(sampled: Sampled, row: tuple[int, bytes] | None) -> bool:
    return row is None or row != (sampled.entry.version, sampled.entry.body)


class VerifierCollector(Collector):
    """The verifier's counters in /metrics."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        yield from per_entity_counters(
            lambda name: f"tales_cache_verify_{name}",
            lambda name: f"Consistency verifier: entries {name} per entity",
            COUNTED,
            self.verifier.counts,
        )
        yield CounterMetricFamily(
            "tales_cache_verify_rounds", "Consistency verifier rounds", value=self.verifier.rounds
        )
