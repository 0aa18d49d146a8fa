"""Running the scripts that change what readers may see (invalidation, demotion, epoch
moves) so that near caches follow: with a near cache, each such script also publishes the
keys it changed, and a write waits until every live near cache applied them (`bus.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from app.cache import format
from app.cache.guard import FAILED, RedisGuard
from app.cache.near.bus import InvalidationBus

NearArgs = tuple[bytes, bytes, str]
"""(channel, message, members key) a script publishes with; None: no near caches."""

Script = Callable[[Redis, NearArgs | None], Awaitable[Any]]

MS_PER_SECOND = 1000


class NearPublisher:
    def __init__(self, guard: RedisGuard, bus: InvalidationBus | None) -> None:
        self.guard = guard
        self.bus = bus

    def args(self, keys: list[str]) -> NearArgs | None:
        """Publication of a change nobody waits for (an epoch move after an outage)."""
        bus = self.bus
        if bus is None:
            return None
        bus.applied_here([key.encode() for key in keys])
        message = format.invalidation_message(bus.member, "-", keys)
        return bus.channels.invalidations, message, bus.channels.members

    async def run(self, entity: str | None, keys: list[str], script: Script) -> bool:
        """Run `script` through the guard; with near caches, return once every live one has
        applied the change, or when the last of their registrations ran out (at most L;
        L also when the script could not run at all)."""
        bus = self.bus
        if bus is None:
            return await self.guard.run(entity, lambda redis: script(redis, None)) is not FAILED
        invalidation, waiter = bus.waiter()
        message = format.invalidation_message(bus.member, invalidation, keys)
        near = (bus.channels.invalidations, message, bus.channels.members)
        result = await self.guard.run(entity, lambda redis: script(redis, near))
        bus.applied_here([key.encode() for key in keys])
        if result is FAILED:
            await bus.unconfirmed(invalidation)
            return False
        await bus.confirmed(invalidation, waiter, live_members(result))
        return True


def live_members(answer: list[Any]) -> dict[str, float]:
    """The scripts' answer {now ms, member, until ms, ...} as member -> seconds left."""
    if not answer:
        return {}
    now = int(answer[0])
    pairs = answer[1:]
    return {
        (member.decode() if isinstance(member, bytes) else str(member)): (
            (float(until) - now) / MS_PER_SECOND
        )
        for member, until in zip(pairs[::2], pairs[1::2], strict=True)
    }
