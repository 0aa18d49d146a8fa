"""The guard every Redis operation goes through: fail-open, one deadline, circuit breaker,
and the epoch moves owed after an outage.

Every operation degrades instead of raising: a Redis error is logged (ERROR, secrets
scrubbed), counted, and answered as `FAILED`, which callers treat as a miss or a no-op.
After `BREAKER_FAILURE_THRESHOLD` consecutive failures the breaker stops calling Redis; after
the cool-down one probe decides whether it closes.

An invalidation that could not be sent (a timeout, an error, the breaker open) is *owed*:
this process sends it again before it reads Redis again, so it never serves what it could
not invalidate, and a repair task keeps probing so that it is sent as soon as Redis answers.
Its outbox row (`outbox.py`) stays meanwhile, so every other process applies it too. A
timeout is no evidence that the command did not run, and replaying an invalidation is
harmless, so nothing moves an entity's epoch for it.

Back from an outage (the half-open probe), before anything is read, the process applies
every invalidation that may be missing from Redis: its own owed ones, and every outbox row
(`recover`, installed by the outbox: whoever wrote them, including rows too young for the
periodic repair). A Redis that came back with older data is recognized by the identity check
of each new connection (`identity.py`). So the probe moves no epoch as a precaution.

Epochs move on evidence only: when the outbox could not be read on the way back (nothing
tells what is missing), when Redis is known to have lost data (`data_lost`; a changed server
identity moves them in Redis itself, `identity.py`), and when more invalidations are owed
than this process keeps (`MAX_OWED`; the oldest are then forgotten and their entities'
epochs move instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
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
#: Invalidations owed at most: beyond, the oldest is forgotten and its entities' epochs move.
MAX_OWED = 10_000


class Failed(enum.Enum):
    """Redis was not used (disabled, breaker open) or failed."""

    FAILED = "FAILED"


FAILED = Failed.FAILED
MoveEpochs = Callable[[Redis, list[str]], Awaitable[object]]
Replay = Callable[[Redis], Awaitable[object]]
#: Back from an outage: send, over this client, every invalidation that may be missing from
#: Redis; False when that cannot be known (then every epoch moves). Redis errors propagate.
Recover = Callable[[Redis], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Owed:
    """An invalidation to send again, and the entities whose epochs move if it is forgotten."""

    replay: Replay
    entities: frozenset[str]


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
        #: Installed by the outbox (`Outbox.recover`); None: no outbox in this process.
        self.recover: Recover | None = None
        self.timeout = timeout
        self.breaker = breaker
        self.stats = stats
        self.epoch_keys = epoch_keys
        self._move_epochs = move_epochs
        self._secrets = secrets
        self._stale_epochs: set[str] = set()
        self._owed: deque[Owed] = deque()
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
            if probing:  # back from an outage: what may be missing is applied first
                await self._recover(redis)
            async with asyncio.timeout(self.timeout):
                if self._stale_epochs or self._owed:
                    await self._settle(redis)
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
            logger.warning("cache reachable again; missing invalidations applied before reading")
        return result

    async def _recover(self, redis: Redis) -> None:
        """The half-open probe's first step, before its own call and before anything else is
        read (other callers are refused until the probe answers): every outbox row is sent
        again (each Redis call within the deadline; the pass as long as the rows need). The
        epochs move only if the outbox could not be read (see the module docstring)."""
        if self.recover is not None and not await self.recover(redis):
            logger.warning("cache: outbox unreadable after an outage; every key epoch moves")
            self._stale_epochs.update(self.epoch_keys)

    def failed(self, entity: str | None, exc: BaseException) -> None:
        self.breaker.record_failure()
        self._start_repair()
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

    def owe(self, replay: Replay, entities: Iterable[str]) -> None:
        """An invalidation of these entities may not have reached Redis: `replay` sends it
        again before this process reads Redis again (no epoch moves: it may well have run)."""
        if len(self._owed) >= MAX_OWED:  # evidence: an invalidation this process forgets
            forgotten = self._owed.popleft()
            self._stale_epochs.update(forgotten.entities)
        self._owed.append(Owed(replay, frozenset(entities)))
        self._start_repair()

    @property
    def owed(self) -> int:
        """Invalidations this process still has to send again."""
        return len(self._owed)

    def lost_invalidation(self, entities: Iterable[str]) -> None:
        """Invalidations of these entities are known lost (e.g. made under another key salt):
        their epochs move before Redis is read again."""
        self._stale_epochs.update(entities)
        self._start_repair()

    def data_lost(self) -> None:
        """Redis is known to have lost writes (e.g. its identity changed: a restart from an
        older snapshot, a failover to a lagging replica): every entity's epoch moves before
        anything is read from it again."""
        self._stale_epochs.update(self.epoch_keys)
        self._start_repair()

    def epochs_moved(self) -> None:
        for listener in self.epoch_listeners:
            listener()

    async def _settle(self, redis: Redis) -> None:
        """Move the epochs owed, then send the owed invalidations again, oldest first; an
        error leaves the rest owed (and fails the caller's operation)."""
        async with self._move_lock:
            if self._stale_epochs:
                entities = sorted(self._stale_epochs)
                await self._move_epochs(
                    redis, [key for e in entities for key in self.epoch_keys[e]]
                )
                self._stale_epochs.difference_update(entities)
                self.epochs_moved()
                logger.info("cache key epochs moved for %s", ", ".join(entities))
            sent = 0
            while self._owed:
                await self._owed[0].replay(redis)
                self._owed.popleft()
                sent += 1
            if sent:
                logger.info("cache: %d owed invalidations sent again", sent)

    def _start_repair(self) -> None:
        if self.redis is not None and (self._repair_task is None or self._repair_task.done()):
            self._repair_task = asyncio.create_task(self._repair())

    async def _repair(self) -> None:
        interval = min(self.breaker.cooldown_seconds, REPAIR_INTERVAL_SECONDS)
        while self.redis is not None and (
            self._stale_epochs or self._owed or self.breaker.state is not BreakerState.closed
        ):
            await asyncio.sleep(interval)
            await self.run(None, lambda redis: redis.ping())

    async def close(self) -> None:
        """Stop; owed work is tried once more first (shutdown must not drop it). What still
        fails stays in the outbox, for the other processes' repairers."""
        if self.redis is not None and (self._owed or self._stale_epochs):
            await self.run(None, lambda redis: redis.ping())
            if self._owed or self._stale_epochs:
                logger.warning(
                    "cache: shutting down with %d invalidations unsent (left to the outbox)",
                    len(self._owed),
                )
        if self._repair_task is not None:
            self._repair_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repair_task
        self.redis = None
