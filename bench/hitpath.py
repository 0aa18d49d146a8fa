"""The hit path against its peers, same run, same data, same Redis:

- each peer (`bench/peers/`) on GET by id over the same random ids;
- tales-api with the near cache on (the `cached` server) and off (a server started for this)
  on GET by id over those ids, on every list page, and on one hot id; and without the cache
  (the `nocache` server: PostgreSQL) on those ids and pages, measured next to them;
- memory after those warm runs: RSS of every server, the near cache's entries and bytes;
- write latency: PATCH by id with the near cache on, and off for comparison, in the order
  off, on, on, off (each figure the mean of its two runs: a drift of the machine or of the
  database over the four runs weighs on both alike).

Each target is read (twice) before it is measured, so every measured GET is a hit, and
every PATCH run starts with each hero cached (its first PATCH of a hero invalidates an entry
and the near copies, the next ones find less to do). The near-off server's PATCHes change
rows behind the `cached` server's entries, so its hero entries are flushed (admin route) and
read again at the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import httpx
import redis

from bench import client
from bench.config import PATCH_FIELD, PATHS
from bench.memory import rss_bytes
from bench.peer_servers import PEERS, start_near_off, start_peers, store_naive_bodies
from bench.procs import Server
from bench.scenarios import Context

MAX_IDS = 1000  # distinct random ids per GET-by-id run (at most the heroes there are)
PAGE_SIZE = 20
WARM_PASSES = 2  # the first read may fill Redis only; the second fills the near cache


@dataclass(frozen=True)
class HitRow:
    key: str  # results["load"] key
    server: str  # "near_on", "near_off" or a peer key
    label: str
    shape: str  # "ids", "pages", "hot", "patch"


PEER_ROWS = [HitRow(f"peer_{p.key}_get", p.key, p.label, "ids") for p in PEERS]
PRODUCT_LABELS = {"near_on": "tales-api, near cache on", "near_off": "tales-api, near cache off"}
UNCACHED_LABEL = "tales-api, cache off (PostgreSQL)"
#: interleaved: the rows a ratio compares are measured one after the other (a noisy machine
#: weighs less on their ratio than on rows measured a minute apart)
PRODUCT_ROWS = [
    HitRow("nocache_ids", "nocache", UNCACHED_LABEL, "ids"),
    HitRow("near_on_ids", "near_on", PRODUCT_LABELS["near_on"], "ids"),
    HitRow("near_off_ids", "near_off", PRODUCT_LABELS["near_off"], "ids"),
    HitRow("nocache_pages", "nocache", UNCACHED_LABEL, "pages"),
    HitRow("near_on_pages", "near_on", PRODUCT_LABELS["near_on"], "pages"),
    HitRow("near_off_pages", "near_off", PRODUCT_LABELS["near_off"], "pages"),
    HitRow("near_on_hot", "near_on", PRODUCT_LABELS["near_on"], "hot"),
    HitRow("near_off_hot", "near_off", PRODUCT_LABELS["near_off"], "hot"),
]
PATCH_ROWS = [
    HitRow(f"{server}_patch", server, label, "patch") for server, label in PRODUCT_LABELS.items()
]
ROWS = PEER_ROWS + PRODUCT_ROWS + PATCH_ROWS
#: the PATCH runs, in order (ABBA), each recorded as `<row key>_<run>`
PATCH_ORDER = [("near_off", "a"), ("near_on", "a"), ("near_on", "b"), ("near_off", "b")]


def shape_paths(ctx: Context) -> dict[str, list[str]]:
    hero = PATHS["hero"]
    ids = list(ctx.ids["hero"])
    random.Random(ctx.cfg.seed).shuffle(ids)
    ids = ids[:MAX_IDS]
    heroes = len(ctx.ids["hero"]) + len(ctx.stampede_ids)
    by_id = [f"{hero}/{i}" for i in ids]
    return {
        "ids": by_id,
        "pages": [f"{hero}?limit={PAGE_SIZE}&offset={o}" for o in range(0, heroes, PAGE_SIZE)],
        "hot": by_id[:1],
        "patch": by_id,
    }


def _warm(server: Server, paths: list[str]) -> None:
    for _ in range(WARM_PASSES):
        statuses, errors, _ = client.fire(server.url, paths)
        if client.non_2xx(statuses) or errors:
            raise RuntimeError(
                f"{server.name}: warm-up failed: {dict(statuses)}, socket errors {errors}"
            )


def _redis_commands(url: str) -> int:
    connection = redis.Redis.from_url(url)
    try:
        return int(connection.info("stats")["total_commands_processed"])
    finally:
        connection.close()


def _measure(
    ctx: Context, row: HitRow, server: Server, paths: list[str], product: bool
) -> dict[str, Any]:
    patch_field = PATCH_FIELD["hero"] if row.shape == "patch" else None
    _warm(server, paths)  # a PATCH run too starts on cached entries: it invalidates them
    stats_before = client.cache_stats(server.url) if product else None
    commands_before = _redis_commands(ctx.redis.url)
    result = ctx.loader.run(row.key.replace("_", "-"), server.url, paths, patch_field)
    commands = _redis_commands(ctx.redis.url) - commands_before - 1  # minus INFO itself
    extra: dict[str, Any] = {
        "server": server.name,
        "shape": row.shape,
        "paths": len(paths),
        "redis_commands_per_request": round(commands / result.requests, 3)
        if result.requests
        else None,
    }
    if stats_before is not None:
        d = client.delta(stats_before, client.cache_stats(server.url), "hero")
        lookups = d["hits"] + d["misses"]
        extra |= {
            "hit_rate": d["hit_rate"],
            "near_hit_share": round(d["near_hits"] / lookups, 4) if lookups else None,
            "database_loads": d["database_loads"],
            "cache_errors": d["errors"],
        }
    if patch_field is None:
        extra["body_bytes"] = len(httpx.get(server.url + paths[0], timeout=10.0).content)
    return ctx.record(row.key, result, **extra)


def _mean_of_runs(ctx: Context, key: str, runs: list[dict[str, Any]]) -> None:
    """Record `key` as the mean of its runs (rates and latencies), errors summed."""
    if not runs:
        return

    def mean(name: str) -> float:
        return round(sum(float(run[name]) for run in runs) / len(runs), 3)

    ctx.results["load"][key] = {
        **{name: mean(name) for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms")},
        "max_ms": max(run["max_ms"] for run in runs),
        "requests": sum(run["requests"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "other_cpu": max((run.get("other_cpu") or 0.0) for run in runs),
        "redis_commands_per_request": mean("redis_commands_per_request"),
        "runs": len(runs),
        "server": runs[0]["server"],
        "shape": "patch",
    }


def _patches(ctx: Context, servers: dict[str, Server], paths: list[str]) -> None:
    runs: dict[str, list[dict[str, Any]]] = {row.key: [] for row in PATCH_ROWS}
    rows = {row.server: row for row in PATCH_ROWS}
    for server, run in PATCH_ORDER:
        row = rows[server]
        print(f"  {row.label}, PATCH (run {run}):", flush=True)
        measured = HitRow(f"{row.key}_{run}", row.server, row.label, row.shape)
        runs[row.key].append(_measure(ctx, measured, servers[server], paths, product=True))
    for key, entries in runs.items():
        _mean_of_runs(ctx, key, entries)


def _memory(servers: dict[str, Server], near_on: Server) -> dict[str, Any]:
    near = client.cache_stats(near_on.url)["near"]
    return {
        "rss_bytes": {key: rss_bytes(server.proc.pid) for key, server in servers.items()},
        "near": near,
    }


def _restore(ctx: Context, hero_paths: list[str]) -> None:
    """Drop the cached server's hero entries (rows changed behind them) and read them again."""
    headers = {"Authorization": f"Bearer {ctx.admin_token}"}
    response = httpx.delete(f"{ctx.cached.url}/cache/heroes", headers=headers, timeout=10.0)
    response.raise_for_status()
    _warm(ctx.cached, hero_paths + ctx.list_paths())


def hit_path(ctx: Context) -> None:
    print("\n== hit path: peers and tales-api (near cache on / off), same Redis, same data")
    paths = shape_paths(ctx)
    report: dict[str, Any] = {
        "ids": len(paths["ids"]),
        "pages": len(paths["pages"]),
        "page_size": PAGE_SIZE,
        "errors": {},
    }
    ctx.results["hit_path"] = report
    servers: dict[str, Server] = {"near_on": ctx.cached, "nocache": ctx.nocache}
    try:
        peers, report["errors"] = start_peers(ctx.procs, ctx.redis.url, ctx.database_url)
        servers |= peers
        servers["near_off"] = start_near_off(ctx.procs, ctx.redis.url, ctx.database_url)
        report["naive_bytes"] = store_naive_bodies(
            ctx.cached, PATHS["hero"], ctx.ids["hero"], ctx.redis.url
        )
        for row in PEER_ROWS + PRODUCT_ROWS:
            server = servers.get(row.server)
            if server is None:
                print(f"  {row.label}: not started ({report['errors'].get(row.server)})")
                continue
            print(f"  {row.label}, {row.shape}:", flush=True)
            try:
                _measure(ctx, row, server, paths[row.shape], row.server in PRODUCT_LABELS)
            except Exception as exc:
                report["errors"][row.key] = f"{type(exc).__name__}: {exc}"
                print(f"    ERROR: {report['errors'][row.key]}", flush=True)
        report["memory"] = _memory(servers, ctx.cached)
        _patches(ctx, servers, paths["patch"])
    finally:
        for key, server in servers.items():
            if key not in ("near_on", "nocache"):  # the bench's own servers stay up
                ctx.procs.stop(server.proc)
        _restore(ctx, ctx.hero_paths())
    if report["errors"]:
        raise RuntimeError(f"hit path: {report['errors']}")
