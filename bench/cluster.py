"""Redis Cluster rows: hit ratio on a cluster vs standalone, and a primary's failover.

A six-node cluster (three primaries, three replicas; `tests/support/redis_cluster.py`) is
started for this scenario, with two fresh app processes, one on the cluster
(`REDIS_MODE=cluster`) and one on the bench's standalone redis-server, both with an empty
cache (prefixes of their own). The same mixed workload (`bench.pyload mixed`, same seed) runs
against each, one after the other: the hit rates come from their `/cache/stats` deltas.

Then the primary holding the most hero entries is SIGKILLed while a load reads heroes; a
probe reads the stories whose entries that primary held. The failover time is from the kill
to the first probe read served from Redis again (the story counters: Redis hits, near hits
excluded, grew — only the probe reads stories), i.e. the promoted replica serves the service.
Errors seen: non-2xx answers of the load and the probe (expected 0), and the cache operations
that failed meanwhile (they were answered from the database).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any
from uuid import UUID

import httpx

from app.cache.format import EntityKeys
from app.cache.keys import KeyEncoder
from app.entities import ENTITIES
from bench import client
from bench.config import PATHS
from bench.procs import Server, app_env
from bench.scenarios import Context, mixed_config
from tests.support.redis_cluster import RedisClusterServers

CLUSTER_PREFIX = "benchcl:"
STANDALONE_PREFIX = "benchsa:"
LOAD_CONCURRENCY = 8
PROBE_INTERVAL = 0.02
RESUME_TIMEOUT = 30.0
AFTER_RESUME = 1.0  # the load goes on this long after the hits resumed
READ_IDS = 200


def cluster_rows(ctx: Context) -> None:
    print("\n== Redis Cluster: hit ratio vs standalone, failover", flush=True)
    with RedisClusterServers() as servers:
        common = {"database_url": ctx.database_url, "log_level": "WARNING"}
        on_cluster = ctx.procs.start_uvicorn(
            "app-cluster",
            "app.main:app",
            app_env(
                **common,
                redis_mode="cluster",
                redis_url=servers.url,
                cache_key_prefix=CLUSTER_PREFIX,
            ),
        )
        standalone = ctx.procs.start_uvicorn(
            "app-standalone",
            "app.main:app",
            app_env(**common, redis_url=ctx.redis.url, cache_key_prefix=STANDALONE_PREFIX),
        )
        for server in (on_cluster, standalone):
            ctx.procs.wait_ready(server)
        print(
            f"  cluster of 6 on ports {servers.ports}; app :{on_cluster.port}, "
            f"standalone app :{standalone.port}"
        )
        hit_rates = {
            "standalone": _mixed(ctx, standalone, "standalone"),
            "cluster": _mixed(ctx, on_cluster, "cluster"),
        }
        failover = _failover(ctx, servers, on_cluster)
    ctx.results["cluster"] = {"hit_rate": hit_rates, "failover": failover}


# -- hit ratio ---------------------------------------------------------------------------
def _mixed(ctx: Context, server: Server, name: str) -> dict[str, Any]:
    cfg = ctx.cfg
    path = ctx.work_dir / f"mixed-{name}.json"
    path.write_text(json.dumps(mixed_config(ctx, server.url)))
    cmd = [sys.executable, "-m", "bench.pyload", "mixed", str(path)]
    timeout = cfg.mixed_duration + cfg.mixed_warmup + 60
    code, out, err = ctx.procs.run(f"pyload-mixed-{name}", cmd, timeout=timeout)
    if code != 0:
        raise RuntimeError(f"mixed load on {name} failed ({code}): {err.strip()[-800:]}")
    data = json.loads(out.strip().splitlines()[-1])
    row: dict[str, Any] = {"rps": data["rps"], "requests": data["requests"]}
    hits = lookups = 0
    for entity in PATHS:
        d = client.delta(data["stats_before"], data["stats_after"], entity)
        row[entity] = d["hit_rate"]
        hits += d["hits"]
        lookups += d["hits"] + d["misses"]
    row["total"] = round(hits / lookups, 4) if lookups else None
    row["non_2xx"] = sum(
        count
        for ops in data["entities"].values()
        for kind in ("read", "write")
        for status, count in (ops.get(kind) or {}).get("statuses", {}).items()
        if not status.startswith("2")
    )
    print(
        f"  {name:10} hit rate total {row['total']:.1%}  "
        + "  ".join(f"{e} {row[e]:.1%}" for e in PATHS)
        + f"  ({data['rps']:,.0f} req/s, non-2xx {row['non_2xx']})",
        flush=True,
    )
    return row


# -- failover ----------------------------------------------------------------------------
def _entries_by_primary(servers: RedisClusterServers, entity: str) -> dict[int, set[str]]:
    pattern = f"{CLUSTER_PREFIX}{entity}:{{{entity}.[0-9]*}}:*"
    found: dict[int, set[str]] = {}
    for port in servers.primaries():
        with servers.client(port) as node:
            found[port] = {
                key.decode().rsplit(":", 1)[1] for key in node.scan_iter(match=pattern, count=1000)
            }
    return found


def _failover(ctx: Context, servers: RedisClusterServers, server: Server) -> dict[str, Any]:
    heroes = ctx.ids["hero"][:READ_IDS]
    stories = ctx.ids["story"][:READ_IDS]
    client.fire(server.url, [f"{PATHS['hero']}/{i}" for i in heroes] * 2)
    client.fire(server.url, [f"{PATHS['story']}/{i}" for i in stories] * 2)
    by_primary = _entries_by_primary(servers, "hero")
    victim = max(by_primary, key=lambda port: len(by_primary[port]))
    keys = EntityKeys(ENTITIES["story"], CLUSTER_PREFIX, KeyEncoder())
    victim_slots = servers.primaries()[victim]
    probe_ids = [
        i for i in stories if any(lo <= _slot(keys.entry(UUID(i))) <= hi for lo, hi in victim_slots)
    ]
    result = asyncio.run(_under_load(servers, server, victim, heroes, probe_ids))
    result["victim_entries"] = f"{len(by_primary[victim])} of {sum(map(len, by_primary.values()))}"
    print(
        f"  failover: primary :{victim} SIGKILLed under load; replica promoted after "
        f"{result['promoted_s']:.2f} s; Redis hits on its slots again after "
        f"{result['failover_s']:.2f} s; non-2xx {result['non_2xx']} of {result['requests']} "
        f"requests; cache operations failed (answered from the database) "
        f"{result['cache_errors']}",
        flush=True,
    )
    return result


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def _redis_hits(stats: dict[str, Any], entity: str) -> int:
    counters = stats["entities"][entity]
    return int(counters["hits"]) - int(counters["near_hits"])


async def _under_load(
    servers: RedisClusterServers,
    server: Server,
    victim: int,
    heroes: list[str],
    probe_ids: list[str],
) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    running = True
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:

        async def load() -> None:
            while running:
                response = await http.get(f"{PATHS['hero']}/{random.choice(heroes)}")
                statuses[response.status_code] += 1

        async def stats() -> dict[str, Any]:
            response = await http.get("/cache/stats")
            return dict(response.json())

        before = await stats()
        tasks = [asyncio.create_task(load()) for _ in range(LOAD_CONCURRENCY)]
        await asyncio.sleep(AFTER_RESUME)
        servers.kill(victim)
        killed = time.monotonic()
        promoted: float | None = None
        resumed: float | None = None
        try:
            while resumed is None and time.monotonic() - killed < RESUME_TIMEOUT:
                if (
                    promoted is None
                    and victim not in servers.primaries()
                    and len(servers.primaries()) == len(servers.ports) // 2
                ):
                    promoted = time.monotonic() - killed
                story = random.choice(probe_ids)
                first = await http.get(f"{PATHS['story']}/{story}")
                counted = _redis_hits(await stats(), "story")
                second = await http.get(f"{PATHS['story']}/{story}")
                statuses[first.status_code] += 1
                statuses[second.status_code] += 1
                if _redis_hits(await stats(), "story") > counted:
                    resumed = time.monotonic() - killed
                await asyncio.sleep(PROBE_INTERVAL)
            await asyncio.sleep(AFTER_RESUME)
        finally:
            running = False
            await asyncio.gather(*tasks)
        after = await stats()
    if resumed is None:
        raise RuntimeError(f"no Redis hit on the killed primary's slots in {RESUME_TIMEOUT} s")
    return {
        "victim": victim,
        "promoted_s": round(promoted if promoted is not None else resumed, 3),
        "failover_s": round(resumed, 3),
        "requests": sum(statuses.values()),
        "non_2xx": client.non_2xx(statuses),
        "statuses": {str(code): count for code, count in statuses.items()},
        "cache_errors": int(after["total"]["errors"]) - int(before["total"]["errors"]),
        "probe_ids": len(probe_ids),
    }
