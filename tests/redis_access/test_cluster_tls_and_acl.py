"""Redis Cluster over TLS only (client links, the cluster bus and replication), with the ACL
user of README's "Redis permissions" on every node: the service caches and invalidates on it
(hits, fills, invalidations per slot, the near-cache bus, the admin flush on every primary),
with exactly the documented commands plus the cluster's own, refused none, and the user
reaches nothing outside the prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.cache.key_scan import KeyScan
from tests.redis_access.conftest import ADMIN_PASSWORD
from tests.redis_access.workload import (
    ACL_USER,
    acl_rule,
    acl_user_client,
    allowed_commands,
    assert_refused_outside_the_prefix,
    cluster_acl_rule,
    exercise,
    serve_instance,
)
from tests.support.redis_cluster import HOST, RedisClusterServers
from tests.support.tls import TlsFiles

USER_PASSWORD = "tales-api-cluster-password-for-tests"
#: What replicas send their primary (not the service's).
REPLICATION = {"replconf", "psync", "sync"}
#: Allowed to every user (the hand-shake), or sent by the test itself.
NOT_IN_THE_RULE = {"auth", "hello", "config|resetstat", "acl|log"}
#: Its MOVED answers count as rejected calls (the identity check, `identity.py`).
MOVED_BY_DESIGN = {"eval"}
#: In the rule, but not used on a cluster: `select` (database 0 only).
NOT_USED_ON_A_CLUSTER = {"select"}
#: The admin flush runs one script per slot (48) through the 10 commands in flight the
#: client allows, opening new TLS connections (each identity-checked) in a burst; on this
#: busy machine a turn, or a TLS connect, took longer than the 1 s of the other tests
#: (seen: "no free Redis connection in time", "Timeout connecting to server").
SLOW_TLS_SETUP = 5.0


@pytest.fixture(scope="module")
def tls_cluster(tls_files: TlsFiles) -> Iterator[RedisClusterServers]:
    with RedisClusterServers(tls=tls_files, password=ADMIN_PASSWORD) as servers:
        yield servers


def user_url(servers: RedisClusterServers) -> str:
    return f"rediss://{ACL_USER}:{USER_PASSWORD}@{HOST}:{servers.ports[0]}/0"


def commands_run(servers: RedisClusterServers) -> dict[str, dict[str, int]]:
    """`INFO commandstats` summed over the primaries (a replica's count the replication
    stream's commands), without the replication's own commands."""
    total: dict[str, dict[str, int]] = {}
    for port in servers.primaries():
        with servers.client(port) as node:
            stats: dict[str, dict[str, Any]] = node.info("commandstats")
        for name, value in stats.items():
            if name.removeprefix("cmdstat_") in REPLICATION:
                continue
            into = total.setdefault(name.removeprefix("cmdstat_"), {"calls": 0, "rejected": 0})
            into["calls"] += int(value["calls"])
            into["rejected"] += int(value.get("rejected_calls", 0))
    return total


async def test_the_service_works_on_a_tls_cluster_as_an_acl_user_with_the_documented_commands(
    tls_cluster: RedisClusterServers,
    tls_files: TlsFiles,
    postgresql_database_url: str,
    clean_database: None,
) -> None:
    rule = cluster_acl_rule(USER_PASSWORD)
    for port in tls_cluster.live_ports():  # ACL users are per node, never propagated
        with tls_cluster.client(port) as node:
            node.execute_command("ACL", "SETUSER", ACL_USER, *rule)
            node.execute_command("ACL", "LOG", "RESET")
            node.config_resetstat()

    url = user_url(tls_cluster)
    options = {
        "redis_mode": "cluster",
        "redis_tls_ca_file": tls_files.ca,
        "redis_pool_timeout": SLOW_TLS_SETUP,
        "redis_connect_timeout": SLOW_TLS_SETUP,
    }
    async with (
        serve_instance(postgresql_database_url, url, **options) as one,
        serve_instance(postgresql_database_url, url, **options) as two,
    ):
        await exercise(one, two)
        # A key scan pass of several steps, as the user (the verifier's and the dashboard's):
        # each continued step asks its node's role first (`key_scan.py`), with a command the
        # rule allows, or the steps would fail here and the ACL log below show it.
        scan = KeyScan("tales:*", count=1)
        steps = 0
        while not steps or not scan.done:
            assert await scan.step(one.app.state.services.cache.guard, None) is not None
            steps += 1
        assert steps > 1

    refused = {}
    for port in tls_cluster.live_ports():
        with tls_cluster.client(port) as node:
            if log := node.execute_command("ACL", "LOG"):
                refused[port] = log
    assert not refused, refused  # nothing refused to the user, on any node
    stats = commands_run(tls_cluster)
    # Redis counts a MOVED answer as a rejected call: the identity check's EVALs of other
    # nodes' tags are answered MOVED by design (ACL LOG above shows no ACL refusal)
    rejected = [name for name, value in stats.items() if value["rejected"]]
    assert not set(rejected) - MOVED_BY_DESIGN, stats
    used = {name for name, value in stats.items() if value["calls"] > 0} - NOT_IN_THE_RULE
    assert used == allowed_commands(rule) - NOT_USED_ON_A_CLUSTER
    assert allowed_commands(rule) - allowed_commands(acl_rule(USER_PASSWORD)) <= used

    # entries on every primary: the service really cached there, as the user, and the
    # identity check ran there (one identity per epoch tag, in that node's slots)
    for port in tls_cluster.primaries():
        with tls_cluster.client(port) as node:
            assert any(node.scan_iter(match="tales:*", count=1000)), port
            assert any(node.scan_iter(match="tales:identity:*", count=1000)), port

    primary = next(iter(tls_cluster.primaries()))
    with acl_user_client(HOST, primary, USER_PASSWORD, tls_files) as user:
        assert user.ping()
        assert_refused_outside_the_prefix(user, ("CLUSTER", "RESET"))
