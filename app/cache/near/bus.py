"""The near cache's invalidation bus: how a process keeps its near copies in step with every
write, or stops serving them.

Pub/sub alone does not give this (delivery is asynchronous and at most once), so:

- **Heard within L.** A process serves near copies only until `L` (`CACHE_NEAR_LEASE_MS`)
  after it *sent* the last heartbeat whose echo it has received on its subscription. Redis
  delivers a subscriber's messages in publication order, so that echo proves every
  invalidation published before the heartbeat reached Redis has been applied here.
- **Dropped when in doubt.** When the subscription breaks, or no echo came back in time,
  every near copy is dropped before any is served again: messages may have been lost.
- **Acknowledged after all.** A write's invalidation is published by the same script that
  writes its markers, which also returns the live members (each heartbeat registers its
  process until `L` after it, in Redis time). The write is acknowledged when every one of
  them has confirmed (applied it, then published an ack), or when the last of their
  registrations has run out — at most `L`. An invalidation that could not be sent at all
  holds the write `L`: by then no process still serves what it missed.
- **No fill after an invalidation.** A near copy is stored only if no invalidation was
  applied between the start of the request that read it and its storing (`sequence`).

A request that starts after a write was acknowledged therefore never gets an older near
copy: a process that still serves copies has echoed a heartbeat sent after the
acknowledgement minus L, hence after the invalidation was published, hence applied it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from app.cache import format
from app.cache.guard import REDIS_ERRORS
from app.cache.near.store import NearStore

logger = logging.getLogger(__name__)

#: Heartbeats sent per lease: the echo of one of the last few keeps the process serving.
HEARTBEATS_PER_LEASE = 4
#: After the subscription broke, wait this long before subscribing again.
RESUBSCRIBE_DELAY_SECONDS = 0.1
MEMBER_ID_BYTES = 6
#: A subscription that echoed nothing for this many leases while Redis answered the
#: heartbeats is replaced (a connection that died without telling).
WATCHDOG_LEASES = 3


@dataclass
class AckWaiter:
    """A write waiting for the confirmations of the live members."""

    acked: set[str] = field(default_factory=set)
    expected: set[str] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self, member: str) -> None:
        self.acked.add(member)
        self._check()

    def expect(self, members: set[str]) -> None:
        self.expected = members
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.expected <= self.acked:
            self.done.set()


class NearRedis(Protocol):
    """What the bus asks of the cache service (each call guarded and fail-open)."""

    async def near_heartbeat(self, bus: InvalidationBus, sequence: int) -> bool: ...
    async def near_ack(self, bus: InvalidationBus, writer: str, invalidation: str) -> None: ...
    async def near_leave(self, bus: InvalidationBus) -> None: ...


class InvalidationBus:
    def __init__(
        self,
        *,
        store: NearStore,
        prefix: str,
        lease_seconds: float,
        subscriber: Callable[[], Redis],
        redis: NearRedis,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.member = secrets.token_hex(MEMBER_ID_BYTES)
        self.channels = format.NearChannels.of(prefix, self.member)
        self.lease = lease_seconds
        self.lease_ms = int(lease_seconds * 1000)
        self.valid_until = 0.0  # monotonic: near copies are served before this only
        self.sequence = 0  # moves on every invalidation applied and every drop of all
        self._subscriber = subscriber
        self._redis = redis
        self._heartbeats: dict[int, float] = {}  # sequence -> when it was sent
        self._last_echo = time.monotonic()
        self._heartbeat_sequence = 0
        self._waiters: dict[str, AckWaiter] = {}
        self._acks: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.applied = 0  # invalidations applied (stats)
        self.lapses = 0  # times the near copies were dropped for lack of news

    # -- what the front and the writers ask --------------------------------------------------
    def serving(self, now: float) -> bool:
        return now < self.valid_until

    def waiter(self) -> tuple[str, AckWaiter]:
        """Register a write's invalidation before it is sent: acks may come back before the
        script's answer does."""
        invalidation = secrets.token_hex(MEMBER_ID_BYTES)
        waiter = self._waiters[invalidation] = AckWaiter()
        return invalidation, waiter

    async def confirmed(
        self, invalidation: str, waiter: AckWaiter, members: dict[str, float]
    ) -> None:
        """Wait until every live member applied the invalidation, or its registration ran
        out. `members`: member -> seconds its registration still runs."""
        others = {member for member in members if member != self.member}
        waiter.expect(others)
        try:
            if others:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(max(members.values()), self.lease)):
                        await waiter.done.wait()
        finally:
            del self._waiters[invalidation]

    async def unconfirmed(self, invalidation: str) -> None:
        """The invalidation could not be sent: hold the write until no process serves what
        it missed."""
        self._waiters.pop(invalidation, None)
        await asyncio.sleep(self.lease)

    def applied_here(self, keys: list[bytes]) -> None:
        """This process's own write: its near copies go at once."""
        self.store.drop(keys)
        self.sequence += 1

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="near-listen"),
            asyncio.create_task(self._beat(), name="near-heartbeat"),
            asyncio.create_task(self._send_acks(), name="near-acks"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        while tasks:  # a cancellation swallowed on the way is repeated; the loops also stop
            _, pending = await asyncio.wait(tasks, timeout=self.lease)
            for task in pending:
                task.cancel()
            tasks = list(pending)
        self._drop_all()
        await self._redis.near_leave(self)

    # -- the subscription --------------------------------------------------------------------
    async def _listen(self) -> None:
        while not self._stopping:
            pubsub = self._subscriber().pubsub(ignore_subscribe_messages=True)
            try:
                channels = self.channels
                await pubsub.subscribe(channels.invalidations, channels.heartbeat, channels.ack)
                async for message in pubsub.listen():
                    self._on_message(message["channel"], message["data"])
            except REDIS_ERRORS as exc:
                logger.warning("near cache subscription lost: %s", type(exc).__name__)
            finally:
                self._drop_all()  # what was published meanwhile may never arrive
                close: Callable[[], Awaitable[None]] = pubsub.aclose  # untyped in redis-py
                with contextlib.suppress(*REDIS_ERRORS):
                    await close()
            await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if channel == self.channels.invalidations:
            writer, invalidation, keys = format.parse_invalidation(data)
            self.store.drop(keys)
            self.sequence += 1
            self.applied += 1
            if writer != self.member:
                self._acks.put_nowait((writer, invalidation))
        elif channel == self.channels.heartbeat:
            self._echoed(int(data))
        elif channel == self.channels.ack:
            invalidation, member = data.decode().split(" ")
            waiter = self._waiters.get(invalidation)
            if waiter is not None:
                waiter.ack(member)

    def _echoed(self, sequence: int) -> None:
        sent = self._heartbeats.pop(sequence, None)
        for older in [s for s in self._heartbeats if s < sequence]:
            del self._heartbeats[older]
        if sent is None:
            return
        now = time.monotonic()
        self._last_echo = now
        if now >= self.valid_until:
            if self.valid_until:
                self.lapses += 1
            # A safety net: a connection that delivers in order loses nothing, and one that
            # broke or fell silent was replaced with everything dropped (see `_listen`).
            self._drop_all()  # news may have been missed while it lapsed
        self.valid_until = max(self.valid_until, sent + self.lease)

    def drop_all(self) -> None:
        """Stop serving every near copy now (Redis is known to have lost data)."""
        self._drop_all()

    def _drop_all(self) -> None:
        self.valid_until = 0.0
        self.store.clear()
        self.sequence += 1

    # -- heartbeats and acks -----------------------------------------------------------------
    async def _beat(self) -> None:
        interval = self.lease / HEARTBEATS_PER_LEASE
        while not self._stopping:
            now = time.monotonic()
            self._heartbeat_sequence += 1
            self._heartbeats[self._heartbeat_sequence] = now
            for stale in [s for s, sent in self._heartbeats.items() if sent < now - self.lease]:
                del self._heartbeats[stale]  # never echoed in time: worthless now
            sent = await self._redis.near_heartbeat(self, self._heartbeat_sequence)
            if sent and now - self._last_echo > WATCHDOG_LEASES * self.lease:
                self._restart_listener()  # Redis answers, the subscription does not
            await asyncio.sleep(interval)

    def _restart_listener(self) -> None:
        if self._stopping:
            return
        logger.warning("near cache subscription silent: subscribing again")
        self._last_echo = time.monotonic()
        self._tasks[0].cancel()
        self._tasks[0] = asyncio.create_task(self._listen(), name="near-listen")

    async def _send_acks(self) -> None:
        while not self._stopping:
            writer, invalidation = await self._acks.get()
            await self._redis.near_ack(self, writer, invalidation)
