"""The operator's figures on a Redis Cluster (three primaries): the number of keys under the
prefix is the sum over every primary (SCAN on every primary, each with its own cursor until
its pass ends; never a replica's copy), and the
consistency verifier samples the entries of every node and repairs a row changed straight
in SQL within one interval."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.cluster import RedisCluster
from sqlalchemy import text

from app.cache import samples
from app.cache import verifier as verifier_module
from app.cache.verifier import Verifier
from tests.cluster.conftest import cluster_app, create_heroes, keys_by_primary
from tests.support.redis_cluster import RedisClusterServers

HEROES = 60  # over 16 hash tags: every primary holds some (see test_cluster_cache.py)
INTERVAL = 0.5
#: How long past one interval (and its re-check) a repair may take on a busy machine.
MARGIN_S = 3.0
#: Enough for the whole cache in one round (shared by the three entities).
SAMPLE = 3 * HEROES
#: SCAN's COUNT hint in these tests: small, so that a pass takes several calls per primary.
SMALL_COUNT = 5
#: The verifier's: a pass (at most `MAX_SCAN_CALLS` calls) still covers a primary per round.
VERIFIER_COUNT = 10
POLL_S = 0.1
FOREIGN_KEYS = ("another-service:{a}", "another-service:{b}", "another-service:{c}")


async def test_the_keys_under_the_prefix_are_counted_on_every_primary(
    postgresql_database_url: str,
    clean_cluster: RedisClusterServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(samples, "KEY_COUNT_BATCH", SMALL_COUNT)
    async with cluster_app(postgresql_database_url, clean_cluster) as api:
        heroes = await create_heroes(api, HEROES)
        for hero in heroes:
            await api.entry("hero", hero["id"])
        await api.page("hero", language="en")
        port = next(iter(clean_cluster.primaries()))
        with RedisCluster(host="127.0.0.1", port=port) as other:  # another service's keys
            for key in FOREIGN_KEYS:
                other.set(key, b"x")

        under_prefix = keys_by_primary(clean_cluster, "tales:*")
        counted = await api.app.state.operations.sampler._count_keys()

        assert all(under_prefix.values()), f"a primary holds no key: {under_prefix}"
        assert counted == sum(len(keys) for keys in under_prefix.values())
        assert counted > HEROES


async def test_the_verifier_repairs_rows_changed_in_sql_on_every_node(
    postgresql_database_url: str,
    clean_cluster: RedisClusterServers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verifier_module, "SCAN_COUNT", VERIFIER_COUNT)
    async with cluster_app(
        postgresql_database_url,
        clean_cluster,
        cache_verify_interval_s=INTERVAL,
        cache_verify_sample=SAMPLE,
    ) as api:
        heroes = await create_heroes(api, HEROES)
        for hero in heroes:
            await api.entry("hero", hero["id"])
        entries = keys_by_primary(clean_cluster, "tales:hero:{hero.[0-9]*}:*")
        assert all(entries.values()), f"a primary holds no hero entry: {entries}"

        async with api.app.state.services.engine.begin() as connection:
            await connection.execute(text("UPDATE heroes SET name = 'Fixed'"))
        changed = time.monotonic()

        limit = INTERVAL * 1.5 + MARGIN_S
        stale = {hero["id"] for hero in heroes}
        while stale and time.monotonic() - changed < limit:  # one reader: no load of its own
            for hero_id in sorted(stale):
                if (await api.get("hero", hero_id)).json()["name"] == "Fixed":
                    stale.discard(hero_id)
            await asyncio.sleep(POLL_S)
        assert not stale, f"{len(stale)} heroes still stale {limit} s after the change in SQL"

        verifier = api.app.state.operations.verifier
        assert isinstance(verifier, Verifier)
        counts = verifier.snapshot()
        assert counts["errors"] == 0, counts
        assert counts["entities"]["hero"]["stale"] == HEROES, counts
        assert counts["entities"]["hero"]["repaired"] == HEROES, counts
