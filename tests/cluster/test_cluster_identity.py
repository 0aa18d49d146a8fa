"""A cluster primary restarted from an older snapshot is recognized before anything is read
from it (`app/cache/identity.py`, one identity per epoch tag on a cluster).

SAVE on the primary that holds a hero's entry, a write (its marker replaces the entry), then
that primary SIGKILLed and restarted from the snapshot with its nodes.conf: the same node id
and slots (the node timeout is long, so its replica is not promoted meanwhile), and the old
entry back. No instance saw an outage long enough to open its breaker, and the write's
outbox row is gone (it was applied): only the identity check can tell. No read on either of
two instances returns the old version; the epochs of that node's tags were moved, and hits
come back."""

from __future__ import annotations

import time
from typing import Any

from redis.crc import key_slot

from app.cache import format
from tests.api.helpers import url
from tests.cache.conftest import Api, entity_keys, entry_key
from tests.cluster.conftest import HERO, cluster_app
from tests.support.redis_cluster import RedisClusterServers

#: No breaker opens: the test is about the identity check alone.
NO_BREAKER: dict[str, object] = {"breaker_failure_threshold": 1_000_000}
#: The restarted primary must come back before its replica would be promoted.
SLOW_FAILOVER_MS = 60_000
READ_FOR_SECONDS = 3.0
HITS_WITHIN = 10.0


def holder(servers: RedisClusterServers, key: str) -> int:
    """The primary that serves `key`'s slot (and holds it)."""
    slot = key_slot(key.encode())
    for port, ranges in servers.primaries().items():
        if any(start <= slot <= end for start, end in ranges):
            with servers.client(port) as node:
                assert node.exists(key), f"{key} is not cached on its primary {port}"
            return port
    raise AssertionError(f"no primary serves slot {slot}")


def cached_version(servers: RedisClusterServers, port: int, key: str) -> int | None:
    """The version of the entry under `key` on `port` (None: a marker or nothing)."""
    with servers.client(port) as node:
        raw = node.get(key)
    if raw is None or not raw.startswith(b'{"state":"entry"'):
        return None
    return format.version_of(raw)


def stored(servers: RedisClusterServers, port: int, key: str) -> str | None:
    with servers.client(port) as node:
        value = node.get(key)
    return None if value is None else value.decode()


def run_id(servers: RedisClusterServers, port: int) -> str:
    with servers.client(port) as node:
        return str(node.info("server")["run_id"])


async def version_read(api: Api, hero_id: str) -> int:
    response = await api.http.get(url("hero", hero_id))
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


async def test_a_primary_restarted_from_an_older_snapshot_is_recognized_by_both_instances(
    postgresql_database_url: str,
) -> None:
    with RedisClusterServers(node_timeout_ms=SLOW_FAILOVER_MS) as servers:
        async with (
            cluster_app(postgresql_database_url, servers, **NO_BREAKER) as one,
            cluster_app(postgresql_database_url, servers, empty=False, **NO_BREAKER) as two,
        ):
            hero = await one.create("hero", {**HERO, "name": "Luna"})
            for api in (one, two):
                await api.entry("hero", hero["id"])  # cached, and a hit on the re-read
            key = entry_key("hero", hero["id"])
            identity_key = format.identity_key("tales:", entity_keys("hero").epoch_of(key))
            port = holder(servers, key)
            before = stored(servers, port, identity_key)
            assert before is not None and before.split()[0] == run_id(servers, port)

            with servers.client(port) as node:
                node.save()  # the snapshot: Luna's entry, cached
            patched = await one.patch("hero", hero["id"], {"name": "Luna Moon"})
            assert cached_version(servers, port, key) is None  # the marker replaced it

            servers.kill(port)  # no save on the way down
            servers.restart(port)
            servers.wait_ok()
            assert port in servers.primaries()  # the same node serves the same slots
            assert cached_version(servers, port, key) == hero["version"]  # the old entry
            assert stored(servers, port, identity_key) == before  # and the old identity

            stale: list[tuple[str, int]] = []
            reads = 0
            until = time.monotonic() + READ_FOR_SECONDS
            while time.monotonic() < until:
                for name, api in (("one", one), ("two", two)):
                    version = await version_read(api, hero["id"])
                    reads += 1
                    if version != patched["version"]:
                        stale.append((name, version))
            assert not stale, f"{len(stale)} stale reads of {reads}: {stale[:5]}"

            after = stored(servers, port, identity_key)
            assert after is not None and after != before
            assert after.split()[0] == run_id(servers, port)  # recognized: new run id
            for api in (one, two):
                identity = api.app.state.services.cache.identity
                assert identity.changes >= 1
                assert identity.seen[identity_key] == after
                await hits_again(api, hero["id"], patched)


async def hits_again(api: Api, hero_id: str, patched: dict[str, Any]) -> None:
    stats = api.app.state.services.cache.stats["hero"]
    hits = stats.hits
    deadline = time.monotonic() + HITS_WITHIN
    while stats.hits <= hits:
        assert await version_read(api, hero_id) == patched["version"]
        assert time.monotonic() < deadline, "no hit after the restart"
    assert (await api.http.get(url("hero", hero_id))).json() == patched
