"""Two costs of "invalidations never lost" on a Redis that fails over or comes back, each
measured in one run, in process (the app's own client and ASGI stack, no HTTP server), on
servers and a database of their own:

- **identity check** (`app/cache/identity.py`): what the check of the server's identity
  (`INFO server`, then one script; on a cluster one `INFO` and 51 pipelined scripts) adds to a
  new connection. `CONNECTIONS` fresh connections of the service's own client, each opened
  by one GET (the client's connections are closed before each; the time of the GET is the
  connect, the hand-shake, the check and the GET), with the check and without it
  (`DatasetIdentity.checking = False`, bench only), in the order off, on, on, off, twice;
  each figure the median over its runs. On a standalone redis-server and on a 3-primary
  cluster (`tests/support/redis_cluster.py`; the GETs cycle over a key of each primary),
  near cache off and the samples and the verifier stopped (no other use of the client).
  The connections the servers accepted are counted, to show each GET opened one. And how
  often the service opens connections in steady state: the connections a standalone Redis
  accepted during `STEADY_REQUESTS` GETs by id, `STEADY_CONCURRENCY` at once, each a Redis
  read (near cache off), right after start-up.
- **outbox recovery** (`Outbox.recover`, run by the guard's half-open probe before Redis is
  read again): K outbox rows pending (`RECOVERY_ROWS`), left by real PATCHes whose writer
  never applied them (as after an outage, or a writer killed after COMMIT; the periodic
  repairer stopped); then the breaker is opened (failures recorded, no Redis fault) and,
  after its cool-down, one GET by id carries the probe (the samples and the verifier are
  stopped and the near cache's heartbeat slowed, so that none of them takes the probe
  first, as they may in service). Reported: the duration of `recover`, the latency of
  that GET, and of the same GET of another hero right after (a miss too, no probe).

Timeouts are patient (`PATIENT`, as `bench/outbox.py`): the runs measure costs, not faults.

Rows of `make bench` ("identity check", "outbox recovery"; run one alone with
`make bench BENCH_ARGS="--only 'identity check'"`), or both alone:

    python -m bench.recovery
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy import func, select

from app.cache.breaker import BreakerState
from app.cache.outbox import OutboxRow
from app.main import create_app, load_settings
from bench.config import PATCH_FIELD, PATHS
from bench.outbox import PATIENT, seeded_database
from bench.scenarios import Context
from tests.support import RedisServer
from tests.support.redis_cluster import RedisClusterServers

HEROES = PATHS["hero"]
FIELD = PATCH_FIELD["hero"]
BASE_URL = "http://bench.recovery"
IDENTITY_PREFIX = "bench-identity:"
RECOVERY_PREFIX = "bench-recovery:"
#: new connections per run (8 runs per mode)
CONNECTIONS = 200
ORDER = ("off", "on", "on", "off", "off", "on", "on", "off")
STEADY_REQUESTS = 2000
STEADY_CONCURRENCY = 16
STEADY_HEROES = 100
#: outbox rows pending when the probe comes
RECOVERY_ROWS = (0, 100, 1000)
#: the breaker's cool-down in the recovery runs (the probe comes this long after it opened)
COOLDOWN_S = 0.2
#: near-cache lease of the recovery runs: its heartbeat (every lease / 4) would otherwise
#: often take the probe before the GET does
QUIET_LEASE_MS = 60_000


# -- pure logic ----------------------------------------------------------------------------
def paired(runs: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Medians (µs) of the runs without ("off") and with ("on") the check, what the check
    adds, and on / off."""
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    return {
        "off_us": round(off * 1e6, 1),
        "on_us": round(on * 1e6, 1),
        "added_us": round((on - off) * 1e6, 1),
        "ratio": round(on / off, 2),
    }


# -- set-up ----------------------------------------------------------------------------------
def _settings(database_url: str, redis_url: str, prefix: str, **extra: Any) -> Any:
    return load_settings(
        database_url=database_url,
        redis_url=redis_url,
        cache_key_prefix=prefix,
        log_level="WARNING",
        _env_file=None,
        **{**PATIENT, **extra},
    )


# -- A: the identity check per new connection -----------------------------------------------
async def _connection_runs(
    redis: Any, identity: Any, drop: Callable[[], Awaitable[None]], keys: list[str]
) -> dict[str, list[float]]:
    """Seconds of each GET over a fresh connection, with the check ("on") and without."""
    runs: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for label in ORDER:
            identity.checking = label == "on"
            for i in range(CONNECTIONS):
                await drop()
                started = time.perf_counter()
                await redis.get(keys[i % len(keys)])
                runs[label].append(time.perf_counter() - started)
    finally:
        identity.checking = True
    return runs


def _accepted(clients: Sequence[Any]) -> int:
    """Connections the servers accepted so far (each client's own counted once, before)."""
    return sum(int(c.info("stats")["total_connections_received"]) for c in clients)


async def _steady(http: httpx.AsyncClient, ids: list[str]) -> float:
    gate = asyncio.Semaphore(STEADY_CONCURRENCY)

    async def one(hero_id: str) -> None:
        async with gate:
            (await http.get(f"{HEROES}/{hero_id}")).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one(ids[i % len(ids)]) for i in range(STEADY_REQUESTS)))
    return time.perf_counter() - started


async def measure_standalone(database_url: str, redis: RedisServer, ids: list[str]) -> Any:
    settings = _settings(database_url, redis.url, IDENTITY_PREFIX, cache_near_enabled=False)
    app = create_app(settings)
    counter = redis.client()
    async with app.router.lifespan_context(app):
        cache = app.state.services.cache
        _accepted([counter])  # its own connection, before counting
        before = _accepted([counter])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            steady_s = await _steady(http, ids)
        steady_new = _accepted([counter]) - before

        await app.state.operations.close()  # its samples would share the connections dropped
        pool = cache.redis.connection_pool
        before = _accepted([counter])
        runs = await _connection_runs(
            cache.redis, cache.identity, pool.disconnect, [f"{IDENTITY_PREFIX}probe"]
        )
        opened = _accepted([counter]) - before
        changes = cache.identity.changes
    return {
        **paired(runs),
        "connections": len(ORDER) * CONNECTIONS,
        "accepted": opened,
        "identity_changes": changes,
        "steady": {
            "requests": STEADY_REQUESTS,
            "concurrency": STEADY_CONCURRENCY,
            "pool": settings.redis_max_connections,
            "seconds": round(steady_s, 2),
            "new_connections": steady_new,
        },
    }


async def measure_cluster(database_url: str, servers: RedisClusterServers) -> Any:
    settings = _settings(
        database_url,
        servers.url,
        IDENTITY_PREFIX,
        redis_mode="cluster",
        cache_near_enabled=False,
    )
    app = create_app(settings)
    primaries = list(servers.primaries())
    counters = [servers.client(port) for port in primaries]
    try:
        async with app.router.lifespan_context(app):
            cache = app.state.services.cache
            client = cache.redis
            keys = _key_per_node(client, len(primaries))
            await app.state.operations.close()  # its samples would share the connections

            async def drop() -> None:
                for node in client.get_nodes():
                    await node.disconnect()

            _accepted(counters)
            before = _accepted(counters)
            runs = await _connection_runs(client, cache.identity, drop, keys)
            opened = _accepted(counters) - before
            changes = cache.identity.changes
    finally:
        for counter in counters:
            counter.close()
    return {
        **paired(runs),
        "connections": len(ORDER) * CONNECTIONS,
        "accepted": opened,
        "identity_changes": changes,
        "primaries": len(primaries),
    }


def _key_per_node(client: Any, nodes: int) -> list[str]:
    """One key on each primary."""
    found: dict[str, str] = {}
    i = 0
    while len(found) < nodes:
        key = f"{IDENTITY_PREFIX}probe:{i}"
        found.setdefault(client.get_node_from_key(key).name, key)
        i += 1
    return list(found.values())


def identity_rows(database_url: str, ids: list[str]) -> dict[str, Any]:
    with RedisServer() as redis:
        standalone = asyncio.run(measure_standalone(database_url, redis, ids))
    with RedisClusterServers() as servers:
        on_cluster = asyncio.run(measure_cluster(database_url, servers))
    return {"standalone": standalone, "cluster": on_cluster}


def render_identity(result: dict[str, Any]) -> list[str]:
    lines = ["", "identity check per new connection (python -m bench.recovery):"]
    for mode, row in (("standalone", result["standalone"]), ("cluster", result["cluster"])):
        lines.append(
            f"  {mode:10}: new connection + GET {row['on_us']:.0f} µs with the check, "
            f"{row['off_us']:.0f} µs without: +{row['added_us']:.0f} µs, x{row['ratio']:.2f} "
            f"(median; {row['connections']} connections, servers accepted {row['accepted']}; "
            f"identity changes {row['identity_changes']})"
        )
    steady = result["standalone"]["steady"]
    lines.append(
        f"  steady state: {steady['requests']} GETs by id ({steady['concurrency']} at once, "
        f"each a Redis read, pool of {steady['pool']}) opened {steady['new_connections']} "
        "new connections"
    )
    return lines


def identity(ctx: Context) -> None:
    """The bench scenario "identity check": own database, redis-server and cluster."""
    with seeded_database(STEADY_HEROES) as (url, ids):
        result = identity_rows(url, ids)
    ctx.results["identity_check"] = result
    for line in render_identity(result)[1:]:
        print(line, flush=True)


# -- B: the outbox pass on recovery -----------------------------------------------------------
async def _pending(outbox: Any) -> int:
    async with outbox._session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.key_prefix == outbox.cache.prefix)
        )
    return int(count or 0)


async def measure_recovery(database_url: str, redis_url: str, ids: list[str]) -> Any:
    settings = _settings(
        database_url,
        redis_url,
        RECOVERY_PREFIX,
        breaker_cooldown_seconds=COOLDOWN_S,
        cache_near_lease_ms=QUIET_LEASE_MS,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        outbox, cache = services.outbox, services.cache
        await outbox.stop()  # no periodic repair: the rows wait for the probe
        await app.state.operations.close()  # no samples: the GET is the first to use Redis
        outbox.applied = lambda _row_id: None  # the writer never applies its row (bench only)
        recover = cache.guard.recover
        calls: list[tuple[float, float, bool]] = []

        async def timed(redis: Any) -> bool:
            started = time.perf_counter()
            ok = False
            try:
                ok = bool(await recover(redis))
                return ok
            finally:
                calls.append((started, time.perf_counter(), ok))

        cache.guard.recover = timed
        writers, probes = ids[: max(RECOVERY_ROWS)], ids[max(RECOVERY_ROWS) :]
        rows: list[dict[str, Any]] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            for k, probe_id, control_id in zip(
                RECOVERY_ROWS, probes[0::2], probes[1::2], strict=True
            ):
                for i, hero_id in enumerate(writers[:k]):
                    response = await http.patch(
                        f"{HEROES}/{hero_id}", json={FIELD: f"bench recovery {k}.{i}"}
                    )
                    response.raise_for_status()
                pending = await _pending(outbox)
                calls.clear()
                for _ in range(cache.breaker.failure_threshold):
                    cache.breaker.record_failure()  # open, without a Redis fault
                await asyncio.sleep(COOLDOWN_S * 1.5)
                started = time.perf_counter()
                response = await http.get(f"{HEROES}/{probe_id}")
                ended = time.perf_counter()
                response.raise_for_status()
                if len(calls) != 1:
                    raise RuntimeError(f"expected one recovery pass, saw {len(calls)}")
                began, done, ok = calls[0]
                control_s = time.perf_counter()  # the same GET (a miss), no probe
                (await http.get(f"{HEROES}/{control_id}")).raise_for_status()
                control_s = time.perf_counter() - control_s
                rows.append(
                    {
                        "rows": pending,
                        "recover_ms": round((done - began) * 1000, 2),
                        "recover_ok": ok,
                        "probe_request_ms": round((ended - started) * 1000, 2),
                        "control_request_ms": round(control_s * 1000, 2),
                        "carried_by_request": started <= began <= ended,
                        "left_after": await _pending(outbox),
                        "breaker": cache.breaker.state.value,
                    }
                )
                if cache.breaker.state is not BreakerState.closed:
                    raise RuntimeError(f"the probe did not close the breaker: {rows[-1]}")
    return {"runs": rows, "cooldown_s": COOLDOWN_S}


def render_recovery(result: dict[str, Any]) -> list[str]:
    lines = ["", "outbox recovery, half-open probe (python -m bench.recovery):"]
    for row in result["runs"]:
        lines.append(
            f"  {row['rows']:>5} rows pending: recover {row['recover_ms']:.1f} ms, "
            "the GET carrying the probe "
            f"{row['probe_request_ms']:.1f} ms, the same GET without a probe "
            f"{row['control_request_ms']:.1f} ms (carried by the request: "
            f"{'yes' if row['carried_by_request'] else 'no'}; rows left {row['left_after']}, "
            f"breaker {row['breaker']})"
        )
    return lines


def recovery_rows() -> dict[str, Any]:
    with (
        seeded_database(max(RECOVERY_ROWS) + 2 * len(RECOVERY_ROWS)) as (url, ids),
        RedisServer() as r,
    ):
        return asyncio.run(measure_recovery(url, r.url, ids))


def outbox_recovery(ctx: Context) -> None:
    """The bench scenario "outbox recovery": own database and redis-server."""
    result = recovery_rows()
    ctx.results["outbox_recovery"] = result
    for line in render_recovery(result)[1:]:
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__)
    parser.parse_args()
    with seeded_database(STEADY_HEROES) as (url, ids):
        identity_result = identity_rows(url, ids)
    recovery_result = recovery_rows()
    print("\n".join(render_identity(identity_result) + render_recovery(recovery_result)))


if __name__ == "__main__":
    main()
