"""A key scan (`app/cache/key_scan.py`: one cursor per primary) whose pass is under way when a
primary is SIGKILLed and its replica promoted: the dead primary is dropped from the pass,
which ends within a bounded number of steps (never stuck on the dead node, and no step
raises: a step answers None while Redis fails, then recovers) having returned every key of
the surviving primaries once; the next pass returns every key exactly once, those of the
dead primary from the replica promoted in its place. So too when the dead primary is started
again, and is back as a replica under its old name, before the client has seen any error:
its cursor belonged to the dead process, and a replica is never scanned.

The scan runs through the guard and the cluster client of a running app, as the verifier and
the key counts of the dashboard do."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

import pytest

from app.cache.guard import RedisGuard
from app.cache.key_scan import KeyScan
from tests.cluster.conftest import cluster_app, keys_by_primary
from tests.support.redis_cluster import RedisClusterServers

PREFIX = "key-scan-test:"
#: One hash tag per key: ~KEYS / 3 on each primary, many more than one SCAN returns.
KEYS = 900
#: Every primary holds at least this many (a uniform spread gives ~300 each).
MIN_PER_PRIMARY = 150
#: SCAN's COUNT hint: small, so that a pass takes many steps on each primary.
COUNT = 10
#: Promotion takes about two cluster-node-timeouts (1 s); generous on a loaded machine.
FAILOVER_TIMEOUT = 60.0
#: How long the rest of the pass may take once the replica is promoted (breaker cool-downs
#: included); the pass on a primary is ~KEYS / 3 / COUNT calls.
PASS_TIMEOUT = 60.0
#: Steps that returned keys (None answers are not counted) a pass may take: a primary's pass
#: visits each bucket of its hash table (512 for ~300 keys) once, about COUNT at a time
#: (~35 calls here); far less than this unless a step scans what is not a primary's pass.
MAX_ANSWERED_STEPS = 200
POLL = 0.05


def key_names() -> set[bytes]:
    return {f"{PREFIX}{{{i}}}".encode() for i in range(KEYS)}


def replica_of(servers: RedisClusterServers, primary: int) -> int:
    for port in servers.live_ports():
        with contextlib.closing(servers.client(port)) as node:
            info = node.info("replication")
        if info.get("role") == "slave" and int(info["master_port"]) == primary:
            return port
    raise AssertionError(f"no replica of {primary}")


def scanned_on(servers: RedisClusterServers, port: int) -> set[bytes]:
    with contextlib.closing(servers.client(port)) as node:
        return set(node.scan_iter(match=f"{PREFIX}*", count=1000))


async def wait_until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        await asyncio.sleep(POLL * 4)


async def step_to_the_end(scan: KeyScan, guard: RedisGuard) -> tuple[list[bytes], int, int]:
    """Step until the pass ends: its keys, the steps that answered, and those that failed."""
    keys: list[bytes] = []
    answered = failed = 0
    deadline = time.monotonic() + PASS_TIMEOUT
    while True:
        batch = await scan.step(guard, None)  # must never raise
        if batch is None:
            failed += 1
        else:
            answered += 1
            keys.extend(batch)
            if scan.done:
                return keys, answered, failed
        assert answered <= MAX_ANSWERED_STEPS, (
            f"the pass did not end within {MAX_ANSWERED_STEPS} answered steps "
            f"(position {scan.position})"
        )
        assert time.monotonic() < deadline, (
            f"the pass did not end within {PASS_TIMEOUT} s: {answered} steps answered, "
            f"{failed} failed (position {scan.position})"
        )
        await asyncio.sleep(POLL if batch is None else 0)


@pytest.mark.parametrize("rejoins", [False, True], ids=["stays-dead", "rejoins-as-replica"])
async def test_a_pass_under_way_survives_a_failover_and_the_next_pass_sees_every_key_once(
    postgresql_database_url: str, rejoins: bool
) -> None:
    """`rejoins`: the dead primary is started again before the pass goes on, and is back as
    a replica of the node promoted in its place, under its old name: the pass must not carry
    on there (a replica), any more than on a node that is gone."""
    written = key_names()
    with RedisClusterServers() as servers:
        async with cluster_app(postgresql_database_url, servers) as api:
            guard = api.app.state.services.cache.guard
            redis = guard.redis
            assert redis is not None
            for key in sorted(written):
                await redis.set(key, b"x")
            spread = keys_by_primary(servers, f"{PREFIX}*")
            assert len(spread) == 3
            assert all(len(keys) >= MIN_PER_PRIMARY for keys in spread.values()), {
                port: len(keys) for port, keys in spread.items()
            }
            victim = max(spread, key=lambda port: len(spread[port]))
            replica = replica_of(servers, victim)
            victims_keys = {key.encode() for key in spread[victim]}
            await wait_until(  # the replica has every key of its primary before the kill
                lambda: scanned_on(servers, replica) == victims_keys,
                "the replica's copy of its primary's keys",
                FAILOVER_TIMEOUT,
            )

            scan = KeyScan(f"{PREFIX}*", COUNT)
            first = await scan.step(guard, None)
            assert first is not None
            assert isinstance(scan.position, dict)
            assert not scan.done
            # unfinished on every primary, the victim's included
            assert sorted(int(name.rsplit(":", 1)[1]) for name in scan.position) == sorted(spread)

            servers.kill(victim)
            during: list[bytes] = []  # the pass goes on meanwhile (its steps fail or answer)
            deadline = time.monotonic() + FAILOVER_TIMEOUT
            while replica not in servers.primaries() or victim in servers.primaries():
                assert time.monotonic() < deadline, f"no promotion within {FAILOVER_TIMEOUT} s"
                if not scan.done and not rejoins:  # (rejoins: the pass still names the victim)
                    during.extend(await scan.step(guard, None) or [])  # must never raise
                await asyncio.sleep(POLL * 4)
            if rejoins:
                servers.restart(victim)
            servers.wait_ok(FAILOVER_TIMEOUT)  # a rejoined victim: a replica, in sync
            if rejoins:
                assert replica_of(servers, replica) == victim
                assert scanned_on(servers, victim) == victims_keys
                assert not scan.done

            rest, answered, failed = [], 0, 0  # (the pass may have ended meanwhile)
            if not scan.done:
                rest, answered, failed = await step_to_the_end(scan, guard)
            print(f"pass under way: {answered} steps answered, {failed} failed after promotion")
            # Every key of a surviving primary once; of the dead one's, only what it returned
            # before it died: its pass is dropped, not carried on (with a cursor of its hash
            # table) on the promoted replica, on itself as a replica, or on any other node.
            under_way = first + during + rest
            twice = {key: n for key, n in Counter(under_way).items() if n > 1}
            assert twice == {}, f"{len(twice)} keys returned more than once by the pass"
            assert set(under_way) - victims_keys == written - victims_keys
            assert set(under_way) & victims_keys == set(first) & victims_keys

            again, answered, failed = await step_to_the_end(scan, guard)
            print(f"next pass: {answered} steps answered, {failed} failed")
            duplicates = {key: n for key, n in Counter(again).items() if n > 1}
            assert duplicates == {}, f"{len(duplicates)} keys returned more than once"
            assert set(again) == written, (
                f"missing {len(written - set(again))}, foreign {len(set(again) - written)}"
            )
            assert victims_keys <= set(again)  # served by the promoted replica
