"""Redis Cluster rows: hit ratio on a cluster vs standalone, and a primary's failover.

A six-node cluster (three primaries, three replicas; `tests/support/redis_cluster.py`) is
started for this scenario, with two fresh app processes, one on the cluster
(`REDIS_MODE=cluster`) and one on the bench's standalone redis-server, both with an empty
cache (prefixes of their own). The same mixed workload (`bench.pyload mixed`, same seed) runs
against each, one after the other: the hit rates come from their `/cache/stats` deltas.

Then the primary holding the most hero entries is SIGKILLed while a load reads heroes; a
probe reads stories, never read before, whose entries that primary holds
(`bench/failover.py` measures: when requests succeed again, when fills and hits resume on
the promoted replica, the errors seen).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from uuid import UUID

from app.cache.format import EntityKeys
from app.cache.keys import KeyEncoder
from app.entities import ENTITIES
from bench import client, failover
from bench.config import PATHS
from bench.procs import Server, app_env
from bench.scenarios import Context, mixed_config
from tests.support.redis_cluster import RedisClusterServers

CLUSTER_PREFIX = "benchcl:"
STANDALONE_PREFIX = "benchsa:"
READ_IDS = failover.READ_IDS


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
    client.fire(server.url, [f"{PATHS['hero']}/{i}" for i in heroes] * 2)
    by_primary = _entries_by_primary(servers, "hero")
    victim = max(by_primary, key=lambda port: len(by_primary[port]))
    keys = EntityKeys(ENTITIES["story"], CLUSTER_PREFIX, KeyEncoder())
    victim_slots = servers.primaries()[victim]
    probe_ids = [
        i
        for i in failover.cold_ids(ctx)
        if any(lo <= _slot(keys.entry(UUID(i))) <= hi for lo, hi in victim_slots)
    ]
    half = len(servers.ports) // 2

    def promoted() -> bool:
        primaries = servers.primaries()
        return victim not in primaries and len(primaries) == half

    result = asyncio.run(
        failover.measure(server, lambda: servers.kill(victim), promoted, heroes, probe_ids)
    )
    result["victim"] = victim
    result["victim_entries"] = f"{len(by_primary[victim])} of {sum(map(len, by_primary.values()))}"
    failover.report(
        f"cluster, primary :{victim} SIGKILLed, {result['victim_entries']} hero entries", result
    )
    return result


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))
