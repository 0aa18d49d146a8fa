"""Sentinel with TLS everywhere (sentinels, primary, replica, replication) and the ACL user of
README's "Redis permissions" on the data nodes: the service caches through the primary the
sentinels name, and follows a failover with the same user and certificates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.redis_access.test_tls_and_acl import USER_PASSWORD
from tests.redis_access.workload import ACL_USER, acl_rule, exercise, serve_instance
from tests.sentinel.conftest import (
    DATA_PASSWORD,
    SENTINEL_PASSWORD,
    hero_hits_resume,
    sentinel_settings,
)
from tests.support.redis_sentinel import SentinelGroup
from tests.support.tls import TlsFiles

RECOVERY_WITHIN = 15.0


@pytest.fixture
def tls_sentinel_group(tls_files: TlsFiles) -> Iterator[SentinelGroup]:
    with SentinelGroup(
        password=DATA_PASSWORD, sentinel_password=SENTINEL_PASSWORD, tls=tls_files
    ) as group:
        yield group


# Operations cut by the guard's deadline while the primary is gone leave redis-py TLS
# connections (to the sentinels, and to the killed primary) that asyncio reaps later with an
# "unclosed" ResourceWarning; plain TCP ones close silently (tests/sentinel). Not a leak of
# the service's own: its clients are closed at shutdown.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_sentinel_over_tls_as_the_acl_user(
    tls_sentinel_group: SentinelGroup,
    tls_files: TlsFiles,
    postgresql_database_url: str,
    clean_database: None,
) -> None:
    group = tls_sentinel_group
    for node in group.data_nodes:  # ACL users are not replicated
        node.client().execute_command("ACL", "SETUSER", ACL_USER, *acl_rule(USER_PASSWORD))
    settings = {
        **sentinel_settings(group),
        "redis_password": None,  # the user's password is in the URL
        "redis_tls_ca_file": tls_files.ca,
        "breaker_cooldown_seconds": 0.5,
    }
    url = f"rediss://{ACL_USER}:{USER_PASSWORD}@primary-named-by-the-sentinels/0"
    async with (
        serve_instance(postgresql_database_url, url, **settings) as one,
        serve_instance(postgresql_database_url, url, **settings) as two,
    ):
        await exercise(one, two)
        for node in group.data_nodes:
            assert node.client().execute_command("ACL", "LOG") == []

        hero = (await one.list_heroes())["items"][0]
        group.kill_primary()
        await asyncio.to_thread(group.wait_failover)
        patched = await one.patch_hero(hero["id"], {"name": "Luna over TLS"})
        await hero_hits_resume((one, two), hero["id"], patched, within=RECOVERY_WITHIN)
        assert group.replica.client().execute_command("ACL", "LOG") == []
        assert group.replica.client().keys("tales:hero:*")
