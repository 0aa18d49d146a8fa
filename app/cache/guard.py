"""The guard every Redis operation goes through: fail-open, one deadline, circuit breaker,
and the epoch moves owed after an outage.

Every operation degrades instead of raising: a Redis error is logged (ERROR, secrets
scrubbed), counted, and answered as `FAILED`, which callers treat as a miss or a no-op.
After `BREAKER_FAILURE_THRESHOLD` consecutive failures the breaker stops calling Redis; after
the cool-down one probe decides whether it closes.

When an invalidation may have been lost (it could not be sent, or the breaker opened), the
key epochs of the entities concerned move before this process reads Redis again, so entries
that missed an invalidation are never served. A repair task keeps probing after a failure,
so that the move happens as soon as Redis is back, not at this process's next request:
other processes sharing the Redis stop serving what this one could not invalidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Literal, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.stats import CacheStats

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)

#: The repair task probes at most this often (and at least once per breaker cool-down).
REPAIR_INTERVAL_SECONDS = 0.25


class Failed(enum.Enum):
    """Redis was not used (disabled, breaker open) or failed."""

    FAILED = "FAILED"


FAILED = Failed.FAILED
MoveEpochs = Callable[[Redis, list[str]], Awaitable[object]]


def cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class RedisGuard:
    def __init__(
        self,
        redis: Redis | None,
        *,
        timeout: float,
        breaker: CircuitBreaker,
        stats: CacheStats,
        epoch_keys: dict[str, Sequence[str]],
        move_epochs: MoveEpochs,
        secrets: Collection[str],
    ) -> None:
        self.redis = redis
        self.timeout = timeout
        self.breaker = breaker
        self.stats = stats
        self.epoch_keys = epoch_keys
        self._move_epochs = move_epochs
        self._secrets = secrets
        self._stale_epochs: set[str] = set()
        self._move_lock = asyncio.Lock()
        self._repair_task: asyncio.Task[None] | None = None
        self.epoch_listeners: list[Callable[[], None]] = []  # called when epochs moved

    async def run(
        self, entity: str | None, call: Callable[[Redis], Awaitable[T]]
    ) -> T | Literal[Failed.FAILED]:
        """`call(redis)` within the deadline, after any epoch move owed; FAILED if Redis is
        not used or fails. `entity` is whose error counter a failure increments."""
        redis = self.redis
        if redis is None or not self.breaker.allow():
            return FAILED
        probing = self.breaker.state is BreakerState.half_open
        try:
            async with asyncio.timeout(self.timeout):
                if probing:  # back from an outage: whatever was lost meanwhile, nothing stale
                    self._stale_epochs.update(self.epoch_keys)
                if self._stale_epochs:
                    await self._move_stale_epochs(redis)
                result = await call(redis)
        except REDIS_ERRORS as exc:
            if cancelling():
                # Python 3.11's asyncio.timeout turns a cancellation that races its own
                # expiry into TimeoutError: the caller was cancelled, not Redis slow.
                if probing:
                    self.breaker.abandon_probe()
                raise asyncio.CancelledError from exc
            self.failed(entity, exc)
            return FAILED
        except BaseException:  # cancelled (or a bug): the probe never answered
            if probing:
                self.breaker.abandon_probe()
            raise
        if self.breaker.record_success():
            logger.warning("cache reachable again; key epochs moved before reading")
        return result

    def failed(self, entity: str | None, exc: BaseException) -> None:
        self.breaker.record_failure()
        if self._repair_task is None or self._repair_task.done():
            self._repair_task = asyncio.create_task(self._repair())
        if entity is not None:
            self.stats[entity].errors += 1
        else:
            self.stats.untagged_errors += 1
        logger.error("cache operation failed: %s: %s", type(exc).__name__, self.scrub(exc))

    def scrub(self, exc: BaseException) -> str:
        message = str(exc)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    def lost_invalidation(self, entities: Iterable[str]) -> None:
        """An invalidation of these entities may not have reached Redis."""
        self._stale_epochs.update(entities)

    def epochs_moved(self) -> None:
        for listener in self.epoch_listeners:
            listener()

    async def _move_stale_epochs(self, redis: Redis) -> None:
        async with self._move_lock:
            if not self._stale_epochs:
                return
            entities = sorted(self._stale_epochs)
            await self._move_epochs(redis, [key for e in entities for key in self.epoch_keys[e]])
            self._stale_epochs.difference_update(entities)
            self.epochs_moved()
            logger.info("cache key epochs moved for %s (lost invalidations)", ", ".join(entities))

    async def _repair(self) -> None:
        interval = min(self.breaker.cooldown_seconds, REPAIR_INTERVAL_SECONDS)
        while self.redis is not None and (
            self._stale_epochs or self.breaker.state is not BreakerState.closed
        ):
            await asyncio.sleep(interval)
            await self.run(None, lambda redis: redis.ping())

    async def close(self) -> None:
        if self._repair_task is not None:
            self._repair_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repair_task
        self.redis = None
