"""An epoch move on a cluster (owed after evidence of lost data, or back from an outage by
the breaker's half-open probe, `guard.py`): every epoch key (`ENTRY_TAGS + 1` per entity, in
as many slots) moves, as one pipeline per node, under a load of reads, within the operation
deadline of the call that owes it. Driven here by `data_lost()`, the evidence path, whatever
the probe itself does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio.cluster import ClusterNode

from tests.api.helpers import url
from tests.cluster.conftest import cluster_app, create_heroes
from tests.support.redis_cluster import RedisClusterServers

HEROES = 40
READERS = 8
SETTLE_TIMEOUT = 10.0


class Pipelines:
    """Every pipeline sent to a node (its address and number of commands), and every
    INVALIDATE call sent alone whose keys include an epoch key."""

    def __init__(self, sha: str, epochs: set[bytes]) -> None:
        self.sha = sha
        self.epochs = epochs
        self.sent: list[tuple[str, int]] = []
        self.alone: list[tuple[Any, ...]] = []

    def install(self, monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
        real_pipeline = ClusterNode.execute_pipeline
        real_command = client.execute_command
        sent, alone, sha, epochs = self.sent, self.alone, self.sha, self.epochs

        async def execute_pipeline(node: ClusterNode, commands: list[Any]) -> bool:
            sent.append((node.name, len(commands)))
            return await real_pipeline(node, commands)

        async def execute_command(*args: Any, **kwargs: Any) -> Any:
            if args[:2] == ("EVALSHA", sha) and epochs & {
                a.encode() if isinstance(a, str) else a for a in args[3:]
            }:
                alone.append(args)
            return await real_command(*args, **kwargs)

        monkeypatch.setattr(ClusterNode, "execute_pipeline", execute_pipeline)
        monkeypatch.setattr(client, "execute_command", execute_command)


def epoch_values(servers: RedisClusterServers, keys: list[str]) -> dict[str, bytes | None]:
    """Each epoch key's value, read on whichever primary holds it."""
    values: dict[str, bytes | None] = dict.fromkeys(keys)
    for port in servers.primaries():
        with servers.client(port) as node:
            for key in keys:
                try:
                    values[key] = node.get(key) or values[key]
                except Exception:  # MOVED: another primary holds it
                    continue
    return values


async def test_an_epoch_move_goes_as_one_pipeline_per_node_under_reads(
    postgresql_database_url: str,
    clean_cluster: RedisClusterServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with cluster_app(postgresql_database_url, clean_cluster) as api:
        heroes = await create_heroes(api, HEROES)
        paths = [url("hero", hero["id"]) for hero in heroes]
        for path in paths:
            await api.http.get(path)  # fills: epoch keys exist on every primary
        cache = api.app.state.services.cache
        epochs = [key for keys in cache.keys.values() for key in keys.epochs]
        before = epoch_values(clean_cluster, epochs)
        assert sum(value is not None for value in before.values()) > len(clean_cluster.primaries())

        spy = Pipelines(cache._invalidate_script.sha, {key.encode() for key in epochs})
        spy.install(monkeypatch, cache.redis)
        cache.data_lost()  # evidence: every epoch moves before Redis is read again
        assert cache.guard._stale_epochs  # owed, not yet moved

        statuses: list[int] = []
        running = True

        async def read(offset: int) -> None:
            n = offset
            while running:
                statuses.append((await api.http.get(paths[n % len(paths)])).status_code)
                n += 1

        readers = [asyncio.create_task(read(i)) for i in range(READERS)]
        try:
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while cache.guard._stale_epochs and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # the first reader (or the repair task) moves them
            await asyncio.sleep(0.2)
        finally:
            running = False
            await asyncio.gather(*readers)

        assert not cache.guard._stale_epochs, "the epoch move never completed in its deadline"
        assert cache.breaker_state() == "closed"
        assert set(statuses) == {200}
        after = epoch_values(clean_cluster, epochs)
        unmoved = [key for key in epochs if after[key] is None or after[key] == before[key]]
        assert unmoved == [], f"epochs not moved: {unmoved}"
        # How: no epoch move went as a script call of its own; one pipeline per primary,
        # together carrying one call per epoch key's slot (each epoch key has its own slot).
        assert spy.alone == []
        nodes = {name for name, _ in spy.sent}
        assert len(nodes) == len(clean_cluster.primaries())
        assert sum(count for _, count in spy.sent) >= len(epochs)
