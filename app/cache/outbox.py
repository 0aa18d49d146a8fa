"""The transactional outbox: every write's invalidation, recorded in its own transaction, and
applied by any live process.

A write inserts one `cache_outbox` row (the invalidation plan: marker keys and versions,
counters, the entities touched) in the transaction of the write itself, so the row exists
exactly when the write does. After the COMMIT the writer sends the invalidation and, once it
was sent, hands the row to its `Outbox` to delete (in a batch, on the next tick: the write
does not wait for it).

The `Repairer` of every process sends the invalidation of each row older than `age` again and
deletes it. So a write whose process lost Redis, was killed after COMMIT, shut down before
sending, or could not tell whether its COMMIT went through is applied anyway, by whichever
process is alive and reaches Redis (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so each row is
taken by one process at a time; SQLite serves one process). Sending an invalidation twice is
harmless: markers never go back to an older version, counters only move.

Rows carry the writer's `CACHE_KEY_PREFIX`: a process applies only the rows of its own cache
(the keys in a row are under its writer's prefix). Two deployments with different prefixes on
one database each keep their own rows; neither invalidates the other's cache (one database,
one cache: see README).

Bound: `CACHE_REPAIR_BOUND_MS` (B). Rows are repaired once older than B/2, by a poll every
B/5 (a one-row probe; the locking batch only when a row is due), so a row is applied at most
0.7 B after its write (plus the round trips of the repair, which has the remaining 0.3 B);
near caches of other processes hear the repair through the invalidation bus. The age leaves
the writer the time to send and delete the row itself, so a healthy write is normally
applied once.

Back from an outage, a process applies every row, whatever its age, before it reads Redis
again (`recover`, the guard's half-open probe): the rows are exactly the invalidations that
may be missing, so no epoch has to move as a precaution. Rows another process is applying
are waited for there (no SKIP LOCKED): a row is skipped only once it was applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import JSON, Index, String, Uuid, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.cache.invalidation import InvalidationPlan
from app.cache.service import CacheService, Marker
from app.core.database import Base, UTCDateTime, utcnow

logger = logging.getLogger(__name__)

#: Rows repaired per transaction (a repair pass takes batches until fewer are left).
REPAIR_BATCH = 100
#: Fractions of CACHE_REPAIR_BOUND_MS: the age from which a row is repaired, the poll interval.
REPAIR_AGE_SHARE = 0.5
REPAIR_POLL_SHARE = 0.2
MS_PER_SECOND = 1000
DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
#: `Session.info` of the outbox's own sessions (the deletes and repairs, not writes).
OUTBOX_SESSION = "cache_outbox"


class OutboxRow(Base):
    """One write's invalidation, until some process applied it."""

    __tablename__ = "cache_outbox"

    __table_args__ = (Index("ix_cache_outbox_key_prefix_created_at", "key_prefix", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    #: CACHE_KEY_PREFIX of the writer: its keys live under it, and only a process of the
    #: same cache (same prefix) applies the row
    key_prefix: Mapped[str] = mapped_column(String(64), nullable=False)
    entity: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


def encode(plan: InvalidationPlan) -> dict[str, Any]:
    """The plan as stored: keys only (personal values are already hashed in them)."""
    return {
        "markers": [[m.key, m.version, m.ttl] for m in plan.markers],
        "counters": sorted(plan.counters),
        "entities": sorted(plan.entities),
    }


def decode(payload: dict[str, Any]) -> InvalidationPlan:
    return InvalidationPlan(
        markers=[Marker(str(k), int(v), int(t)) for k, v, t in payload["markers"]],
        counters=set(payload["counters"]),
        entities=set(payload["entities"]),
    )


@dataclass
class RepairStats:
    repaired: int = 0  # rows of other writes (or of this process's failed ones) applied
    deleted: int = 0  # rows deleted after their writer applied them


class Outbox:
    """Records each write's row, deletes the rows applied, and repairs the others."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        cache: CacheService,
        bound_ms: int,
    ) -> None:
        self._session_factory = session_factory
        self.cache = cache
        self.age = timedelta(milliseconds=bound_ms * REPAIR_AGE_SHARE)
        self.interval = bound_ms * REPAIR_POLL_SHARE / MS_PER_SECOND
        self.stats = RepairStats()
        #: Bench only (`bench/outbox.py` measures a write without its row): False loses the
        #: guarantee that invalidations survive the writer. Never turned off by the service.
        self.recording = True
        self._applied: list[uuid.UUID] = []
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        #: The rows of this cache: one filter for the poll's probe and the batches.
        self._own_rows = OutboxRow.key_prefix == cache.prefix
        self._oldest = (
            select(OutboxRow.created_at)
            .where(self._own_rows)
            .order_by(OutboxRow.created_at)
            .limit(1)
        )

    # -- the write path --------------------------------------------------------------------
    def record(self, session: AsyncSession, entity: str, plan: InvalidationPlan) -> uuid.UUID:
        """Add the write's row to its session: it is inserted by the write's own COMMIT."""
        row = OutboxRow(
            id=uuid.uuid4(),
            key_prefix=self.cache.prefix,
            entity=entity,
            payload=encode(plan),
            created_at=utcnow(),
        )
        if self.recording:
            session.add(row)
        return row.id

    def applied(self, row_id: uuid.UUID) -> None:
        """The writer sent the row's invalidation: delete it on the next tick."""
        self._applied.append(row_id)

    # -- the repairer ----------------------------------------------------------------------
    def _session(self) -> AsyncSession:
        return self._session_factory(info={OUTBOX_SESSION: True})

    async def start(self) -> None:
        """Apply every row left (by processes that died or shut down) before serving, then
        repair every `interval`."""
        try:
            await self.repair(all_rows=True)
        except DATABASE_ERRORS as exc:
            logger.warning("cache outbox: not repaired at start (%s)", type(exc).__name__)
        self.cache.guard.recover = self.recover
        self._task = asyncio.create_task(self._run(), name="cache-outbox-repairer")

    async def recover(self, redis: Redis) -> bool:
        """Back from an outage, before Redis is read again: send every row over `redis` (the
        guard's probe client) and delete it. False when the database did not answer (the guard
        then moves every epoch); a Redis error propagates (the probe failed, the rows stay)."""
        total = 0
        try:
            while True:
                repaired, more = await self._repair_batch(timedelta(0), redis)
                total += repaired
                if not more:
                    break
        except DATABASE_ERRORS as exc:
            logger.warning("cache outbox: not read after an outage (%s)", type(exc).__name__)
            return False
        if total:
            self.stats.repaired += total
            logger.info("cache outbox: %d invalidations applied after an outage", total)
        return True

    async def stop(self) -> None:
        """Stop polling; delete the rows this process applied. Rows it could not apply stay
        for the other processes (never dropped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*DATABASE_ERRORS):
            await self._delete_applied()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._delete_applied()
                await self.repair()
            except DATABASE_ERRORS as exc:
                if not self._failing:
                    logger.warning("cache outbox: database unavailable (%s)", type(exc).__name__)
                self._failing = True
            except Exception:  # the repairer must outlive a fault of one pass
                logger.exception("cache outbox: repair pass failed")
            else:
                self._failing = False

    async def _delete_applied(self) -> None:
        if not self._applied:
            return
        ids, self._applied = self._applied, []
        async with self._session() as session, session.begin():
            await session.execute(delete(OutboxRow).where(OutboxRow.id.in_(ids)))
        self.stats.deleted += len(ids)

    async def repair(self, *, all_rows: bool = False) -> int:
        """Apply and delete the rows older than `age` (`all_rows`: every row; at start-up,
        before serving), oldest first; returns how many. Stops at the first that cannot be
        sent: those stay. A process whose Redis calls fail leaves the rows to the others (it
        would hold their locks for a deadline)."""
        total = 0
        if not self.cache.healthy or (not all_rows and not await self._owed(self.age)):
            return 0
        while self.cache.healthy:
            repaired, more = await self._repair_batch(timedelta(0) if all_rows else self.age)
            total += repaired
            if not more:
                break
        if total:
            self.stats.repaired += total
            logger.info("cache outbox: %d invalidations repaired", total)
        return total

    async def _owed(self, age: timedelta) -> bool:
        """A row of this cache is older than `age`. The poll asks this first, with one plain
        query, and opens the locking transaction of a batch only when it is true: an idle
        process polls five times a second at the default bound, and the probe costs less
        than half the CPU of an empty batch (about 0.3 ms against 0.7 ms, SQLite and
        PostgreSQL alike, measured in process)."""
        async with self._session() as session:
            oldest = await session.scalar(self._oldest)
        return oldest is not None and oldest <= utcnow() - age

    async def _repair_batch(
        self, age: timedelta, recovering: Redis | None = None
    ) -> tuple[int, bool]:
        """One batch of rows older than `age`: through the guard, skipping rows locked by
        another process; or, `recovering`, over that client, waiting for locked rows."""
        async with self._session() as session, session.begin():
            stmt = (
                select(OutboxRow)
                .where(self._own_rows)
                .where(OutboxRow.created_at <= utcnow() - age)
                .order_by(OutboxRow.created_at)
                .limit(REPAIR_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=recovering is None)
            rows = (await session.execute(stmt)).scalars().all()
            done: list[uuid.UUID] = []
            for row in rows:
                plan = decode(row.payload)
                if recovering is not None:
                    await self.cache.resend(recovering, plan.markers, plan.counters)
                elif not await self.cache.repair(row.entity, plan.markers, plan.counters):
                    break
                done.append(row.id)
            if done:
                await session.execute(delete(OutboxRow).where(OutboxRow.id.in_(done)))
        return len(done), len(done) == REPAIR_BATCH
