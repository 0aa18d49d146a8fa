"""Fixtures of the Redis Cluster tests: a six-node cluster the harness starts itself
(`tests/support/redis_cluster.py`), and the service on it in `REDIS_MODE=cluster`.

`cluster` is shared by the module's tests and emptied for each (the harness created it, so
flushing its primaries is flushing only what the tests made); a test that kills a node
starts its own with `RedisClusterServers()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tests.cache.conftest import Api, cache_settings, serve
from tests.support.redis_cluster import RedisClusterServers

HERO = {"age": 7, "gender": "male", "language": "en", "interests": ["stars"]}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    with RedisClusterServers() as servers:
        yield servers


@pytest.fixture
def clean_cluster(cluster: RedisClusterServers) -> RedisClusterServers:
    for port in cluster.primaries():
        with cluster.client(port) as node:
            node.flushall()
    return cluster


def cluster_app(
    database_url: str, servers: RedisClusterServers, *, empty: bool = True, **overrides: Any
) -> AbstractAsyncContextManager[Api]:
    settings = cache_settings(database_url, servers.url, redis_mode="cluster", **overrides)
    return serve(settings, empty=empty)


def uncached_app(database_url: str) -> AbstractAsyncContextManager[Api]:
    """The same database with the cache off: what every answer must match."""
    return serve(
        cache_settings(database_url, "redis://127.0.0.1:1/0", redis_enabled=False), empty=False
    )


@pytest.fixture
async def cluster_api(
    postgresql_database_url: str, clean_cluster: RedisClusterServers
) -> AsyncIterator[Api]:
    async with cluster_app(postgresql_database_url, clean_cluster) as api:
        yield api


def keys_by_primary(servers: RedisClusterServers, pattern: str) -> dict[int, list[str]]:
    """The keys matching `pattern` on each live primary (SCAN on each node)."""
    found: dict[int, list[str]] = {}
    for port in servers.primaries():
        with servers.client(port) as node:
            found[port] = sorted(key.decode() for key in node.scan_iter(match=pattern, count=1000))
    return found


async def create_heroes(api: Api, count: int) -> list[dict[str, Any]]:
    return [await api.create("hero", {**HERO, "name": f"Hero {i}"}) for i in range(count)]
