"""A resumable SCAN over every key matching a pattern, on a standalone Redis or a cluster.

On a standalone Redis (or Sentinel's primary) it is one cursor. On a cluster the keys are
spread over the primaries by their hash tags, so a pass is one cursor per primary: the first
call of a pass sends `SCAN 0` to every primary (redis-py's cluster client does), the later
ones carry each primary's own cursor to that primary until every one is back at 0. Replicas
are never scanned: a key is counted once. A primary that left the slot map during a pass
(a failover), or that is a replica now (restarted after its replica was promoted), is dropped
from it; the next pass starts over on the primaries of the moment.

Each `step` is one guarded round of calls (one SCAN, or one per unfinished primary), so a
caller bounds its Redis load by bounding its steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, cast

from redis.asyncio import Redis

from app.cache.cluster import is_cluster, slot_map_outdated
from app.cache.guard import FAILED, RedisGuard

#: A pass's position: the standalone cursor, or each unfinished primary's (by node name).
Position = int | dict[str, int]


class KeyScan:
    def __init__(self, pattern: str, count: int) -> None:
        self.pattern = pattern
        self.count = count
        self.position: Position = 0
        self.started = False  # a pass is under way (position 0 then means "at its end")

    @property
    def done(self) -> bool:
        """The last step ended a full pass (the next one starts another)."""
        return not self.started

    async def step(self, guard: RedisGuard, entity: str | None) -> list[bytes] | None:
        """The keys of one more SCAN round (None: Redis failed; the pass stays where it was)."""
        result = await guard.run(entity, self._scan)
        if result is FAILED:
            return None
        position, keys = cast("tuple[Any, list[bytes]]", result)
        if isinstance(position, dict):
            unfinished = {name: int(cursor) for name, cursor in position.items() if int(cursor)}
            self.position = unfinished
            self.started = bool(unfinished)
        else:
            self.position = int(position)
            self.started = self.position != 0
        return keys

    def _scan(self, redis: Redis) -> Awaitable[Any]:
        if not is_cluster(redis):
            return redis.scan(cast("int", self.position), match=self.pattern, count=self.count)
        if not self.started:  # SCAN 0 on every primary
            return redis.scan(0, match=self.pattern, count=self.count)
        return self._continue_on_primaries(redis, cast("dict[str, int]", self.position))

    async def _continue_on_primaries(
        self, redis: Any, cursors: dict[str, int]
    ) -> tuple[dict[str, int], list[bytes]]:
        """One SCAN on each unfinished primary, concurrently, each with its own cursor."""
        nodes = [(redis.get_node(node_name=name), cursor) for name, cursor in cursors.items()]
        answers = await asyncio.gather(
            *(
                self._continue_on(redis, node, cursor)
                for node, cursor in nodes
                if node is not None  # no longer in the slot map: its pass ends here
            )
        )
        position: dict[str, int] = {}
        keys: list[bytes] = []
        for moved, batch in answers:
            position.update(moved)
            keys.extend(batch)
        return position, keys

    async def _continue_on(
        self, redis: Any, node: Any, cursor: int
    ) -> tuple[dict[str, int], list[bytes]]:
        """One SCAN on `node` if it is still a primary (its INFO says so); else its pass ends
        here. The client's slot map may not know yet: a primary killed and started again
        once its replica was promoted is back as a replica under its old name, and no
        command of this client needs to have failed meanwhile. The cursor belongs to the
        dead process's keyspace: carried on there, it would return keys twice and skip
        others (and scan a replica). The client then reads the slot map again, so that the
        next pass starts on the primaries of the moment (its `SCAN 0` goes where the map
        says)."""
        # INFO, not ROLE: INFO is among the commands the service's ACL user already has
        replication = await redis.info(section="replication", target_nodes=node)
        if replication.get("role") != "master":
            slot_map_outdated(redis)
            return {}, []
        return cast(
            "tuple[dict[str, int], list[bytes]]",
            await redis.scan(cursor, match=self.pattern, count=self.count, target_nodes=node),
        )
