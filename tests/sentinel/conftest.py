"""Fixtures of the Sentinel tests: a primary, a replica and three sentinels of the test's own
(`tests/support/redis_sentinel.py`), and the settings of an instance that finds its Redis
through them."""

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tests.resilience.conftest import Instance, eventually
from tests.support.redis_sentinel import SentinelGroup

DATA_PASSWORD = "data-password-for-tests"
SENTINEL_PASSWORD = "sentinel-password-for-tests"
#: In sentinel mode REDIS_URL's host and port are not used (the sentinels name the primary).
UNUSED_HOST_URL = "redis://primary-named-by-the-sentinels/0"


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    with SentinelGroup(password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD) as group:
        yield group


def sentinel_settings(group: SentinelGroup) -> dict[str, object]:
    return {
        "redis_mode": "sentinel",
        "redis_sentinels": group.addresses,
        "redis_sentinel_master": group.master_name,
        "redis_sentinel_password": group.sentinel_password,
        "redis_password": group.password,
    }


async def hero_hits_resume(
    instances: Iterable[Instance],
    hero_id: str,
    expected: dict[str, Any],
    *,
    within: float,
    breaker_closed: bool = False,
) -> None:
    """After a failover, on each instance in turn: read `hero_id` (every read must answer
    `expected`, never an older version) until the instance's hero hits grew, and with
    `breaker_closed` its breaker is closed too; fails after `within` seconds."""
    for instance in instances:
        hits = await instance.hero_hits()

        async def hits_again(instance: Instance = instance, hits: int = hits) -> bool:
            assert await instance.get_hero(hero_id) == expected
            if breaker_closed and await instance.breaker() != "closed":
                return False
            return await instance.hero_hits() > hits

        await eventually(hits_again, within=within)
