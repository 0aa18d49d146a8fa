"""Fixtures of the Sentinel tests: a primary, a replica and three sentinels of the test's own
(`tests/support/redis_sentinel.py`), and the settings of an instance that finds its Redis
through them."""

from collections.abc import Iterator

import pytest

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
