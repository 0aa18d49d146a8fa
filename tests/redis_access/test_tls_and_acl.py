"""`rediss://` with certificates made by the test, and an ACL user limited to the key prefix
and the commands README's "Redis permissions" lists: the service works with exactly those
(hits, fills, invalidations, near-cache bus, admin flush), and the user can touch nothing
outside the prefix. Sentinel over TLS with that user: tests/sentinel."""

from __future__ import annotations

from typing import Any

import redis

from tests.api import payloads
from tests.redis_access.conftest import ADMIN_PASSWORD
from tests.redis_access.workload import (
    ACL_USER,
    acl_rule,
    acl_user_client,
    allowed_commands,
    assert_refused_outside_the_prefix,
    exercise,
    serve_instance,
)
from tests.resilience.conftest import eventually
from tests.support.redis_sentinel import NodeServer
from tests.support.tls import TlsFiles

USER_PASSWORD = "tales-api-password-for-tests"
#: Allowed to every user (the hand-shake), or sent by the test itself.
NOT_IN_THE_RULE = {"auth", "hello", "config|resetstat", "acl|log"}
#: In the rule, but only used with a database other than 0.
CONDITIONAL = {"select"}


def user_url(server: NodeServer) -> str:
    return f"rediss://{ACL_USER}:{USER_PASSWORD}@{server.host}:{server.port}/0"


def commands_run(admin: redis.Redis) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): value for name, value in stats.items()}


async def test_the_service_works_over_tls_as_an_acl_user_with_exactly_the_documented_commands(
    tls_redis: NodeServer, tls_files: TlsFiles, postgresql_database_url: str, clean_database: None
) -> None:
    admin = tls_redis.client()
    rule = acl_rule(USER_PASSWORD)
    admin.execute_command("ACL", "SETUSER", ACL_USER, *rule)
    admin.execute_command("ACL", "LOG", "RESET")
    admin.config_resetstat()

    url = user_url(tls_redis)
    options = {"redis_tls_ca_file": tls_files.ca}
    async with (
        serve_instance(postgresql_database_url, url, **options) as one,
        serve_instance(postgresql_database_url, url, **options) as two,
    ):
        await exercise(one, two)

    stats = commands_run(admin)
    assert not [name for name, value in stats.items() if value.get("rejected_calls", 0)], stats
    assert admin.execute_command("ACL", "LOG") == []  # nothing refused to the user
    used = {name for name, value in stats.items() if value["calls"] > 0} - NOT_IN_THE_RULE
    assert used == allowed_commands(rule) - CONDITIONAL

    with acl_user_client(tls_redis.host, tls_redis.port, USER_PASSWORD, tls_files) as user:
        assert user.get("tales:identity") is not None  # its own keys: yes
        assert_refused_outside_the_prefix(user)
    assert admin.get("other:key") is None


async def test_a_server_whose_certificate_the_service_cannot_verify_is_not_used(
    tls_redis: NodeServer, postgresql_database_url: str, clean_database: None
) -> None:
    """Without the test CA (REDIS_TLS_CA_FILE unset: the system's CAs) the handshake fails:
    TLS verification is on. The service still answers, from the database."""
    url = f"rediss://:{ADMIN_PASSWORD}@{tls_redis.host}:{tls_redis.port}/0"
    async with serve_instance(postgresql_database_url, url) as api:

        async def degraded() -> bool:
            status, body = await api.readiness()
            return status == 200 and body["cache"]["status"] == "down"

        await eventually(degraded, within=5.0)
        hero = await api.create_hero(payloads.hero(name="Luna"))
        assert await api.get_hero(hero["id"]) == hero
    assert tls_redis.client().dbsize() == 0
