"""The measured scenarios. Each one records into `ctx.results` and prints a short progress line."""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import client
from bench.config import LIST_QUERY, PATCH_FIELD, PATHS, BenchConfig
from bench.load import LoadResult, LoadRunner
from bench.procs import Processes, Server
from tests.support import FaultProxy, RedisServer

BREAKER_WAIT = 15.0  # seconds to wait for the breaker to open / close


@dataclass
class Context:
    cfg: BenchConfig
    procs: Processes
    loader: LoadRunner
    work_dir: Path
    redis: RedisServer
    proxy: FaultProxy
    nocache: Server  # REDIS_ENABLED=false
    cached: Server  # Redis directly
    hung: Server  # Redis behind the FaultProxy
    yardstick: Server
    ids: dict[str, list[str]]  # entity -> ids (the stampede id excluded)
    stampede_ids: list[str]  # cold heroes: never read before the stampede
    database_url: str  # the bench's database (the peers read it too)
    admin_token: str  # ADMIN_TOKEN of the cached server
    results: dict[str, Any] = field(default_factory=dict)

    def hero_paths(self) -> list[str]:
        return [f"{PATHS['hero']}/{i}" for i in self.ids["hero"]]

    def list_paths(self) -> list[str]:
        return [f"{PATHS['hero']}?{LIST_QUERY}"]

    def record(self, key: str, result: LoadResult, **extra: Any) -> dict[str, Any]:
        entry = {**result.as_dict(), **extra}
        self.results.setdefault("load", {})[key] = entry
        other = "" if result.other_cpu is None else f"  other processes {result.other_cpu:.0%} CPU"
        print(
            f"    {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
            f"  non-2xx {result.non_2xx}  socket errors {result.socket_errors}{other}",
            flush=True,
        )
        return entry


def _banner(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _wait_breaker(server: Server, want: str, poke: str) -> tuple[float, int, float]:
    """GET `poke` until `/cache/stats` shows breaker `want`; (seconds, requests, max latency)."""
    started = time.perf_counter()
    requests, slowest = 0, 0.0
    with httpx.Client(base_url=server.url, timeout=10.0) as http:
        while True:
            if http.get("/cache/stats").json()["breaker"] == want:
                return time.perf_counter() - started, requests, slowest
            if time.perf_counter() - started > BREAKER_WAIT:
                raise RuntimeError(f"{server.name}: breaker not {want!r} after {BREAKER_WAIT}s")
            t0 = time.perf_counter()
            response = http.get(poke)
            slowest = max(slowest, time.perf_counter() - t0)
            requests += 1
            if response.status_code != 200:
                raise RuntimeError(f"{server.name}: GET {poke} -> {response.status_code}")
            time.sleep(0.02)


# -- 7b. stampede: first, while the cache is cold -------------------------------------------
def stampede(ctx: Context) -> None:
    n = ctx.cfg.stampede_requests
    _banner(
        f"stampede: {n} concurrent cold GETs of one hero (cache on), "
        f"{len(ctx.stampede_ids)} bursts on different ids"
    )
    bursts = []
    for entity_id in ctx.stampede_ids:
        path = f"{PATHS['hero']}/{entity_id}"
        before = client.cache_stats(ctx.cached.url)
        statuses, errors, seconds = client.fire(ctx.cached.url, [path] * n, n)
        d = client.delta(before, client.cache_stats(ctx.cached.url), "hero")
        burst = {
            "path": path,
            "seconds": round(seconds, 3),
            "statuses": {str(k): v for k, v in statuses.items()},
            "socket_errors": errors,
            "database_loads": d["database_loads"],
            "misses": d["misses"],  # requests that found no entry (concurrent with the load)
            "hits": d["hits"],  # requests that arrived after the fill
            "stampede_waits": d["stampede_waits"],  # misses that joined another's load
            "cache_errors": d["errors"],  # Redis calls that failed (e.g. pool exhausted)
            "ok": d["database_loads"] == 1 and client.non_2xx(statuses) == 0 and errors == 0,
        }
        bursts.append(burst)
        print(
            f"    database loads {d['database_loads']} (expected 1): misses {d['misses']} "
            f"(joined a load {d['stampede_waits']}), hits {d['hits']}, cache errors "
            f"{d['errors']}, statuses {dict(statuses)}, {seconds * 1000:.0f} ms"
        )
    ctx.results["stampede"] = {
        "requests": n,
        "expected_database_loads": 1,
        "database_loads": [b["database_loads"] for b in bursts],
        "bursts": bursts,
        "ok": all(b["ok"] for b in bursts),
    }


# -- 3. yardstick ---------------------------------------------------------------------------
def yardstick(ctx: Context) -> None:
    _banner("yardstick: GET /const (constant body = one hero's JSON)")
    client.fire(ctx.yardstick.url, ["/const"] * 200)
    ctx.record("yardstick", ctx.loader.run("yardstick", ctx.yardstick.url, ["/const"]))


def yardstick_again(ctx: Context) -> None:
    _banner("yardstick, again (how much did the machine drift during the run?)")
    ctx.record("yardstick_again", ctx.loader.run("yardstick-again", ctx.yardstick.url, ["/const"]))


# -- 1. without cache -----------------------------------------------------------------------
def without_cache(ctx: Context) -> None:
    _banner("without cache (REDIS_ENABLED=false)")
    client.fire(ctx.nocache.url, ctx.hero_paths() + ctx.list_paths() * 50)  # pool, PG buffers
    ctx.record("nocache_get", ctx.loader.run("nocache-get", ctx.nocache.url, ctx.hero_paths()))
    ctx.record("nocache_list", ctx.loader.run("nocache-list", ctx.nocache.url, ctx.list_paths()))


# -- 2. with cache, warmed ------------------------------------------------------------------
def with_cache(ctx: Context) -> None:
    _banner("with cache (warmed)")
    statuses, errors, _ = client.fire(ctx.cached.url, ctx.hero_paths() + ctx.list_paths())
    if client.non_2xx(statuses) or errors:
        raise RuntimeError(f"warm-up failed: {dict(statuses)}, socket errors {errors}")
    for key, name, paths in (
        ("cache_get", "cache-get", ctx.hero_paths()),
        ("cache_list", "cache-list", ctx.list_paths()),
    ):
        before = client.cache_stats(ctx.cached.url)
        result = ctx.loader.run(name, ctx.cached.url, paths)
        after = client.cache_stats(ctx.cached.url)
        d = client.delta(before, after, "hero")
        ctx.record(
            key,
            result,
            hit_rate=d["hit_rate"],
            database_loads=d["database_loads"],
            cache_errors=d["errors"],
            breaker_after=after["breaker"],
        )
        print(
            f"    hit rate {d['hit_rate']}, database loads {d['database_loads']}, "
            f"cache errors {d['errors']}, breaker {after['breaker']}"
        )


# -- 4. invalidation ------------------------------------------------------------------------
def invalidation(ctx: Context) -> None:
    _banner("invalidation: PATCH then GET shows the new data (cache on)")
    rounds = ctx.cfg.invalidation_rounds
    report: dict[str, Any] = {}
    with httpx.Client(base_url=ctx.cached.url, timeout=10.0) as http:
        for entity, base in PATHS.items():
            fld, timings, failures = PATCH_FIELD[entity], [], []
            for n, entity_id in enumerate(ctx.ids[entity][-rounds:]):
                path = f"{base}/{entity_id}"
                http.get(path).raise_for_status()
                http.get(path).raise_for_status()  # now served from the cache
                value = f"Invalidated {entity} {n} {time.time_ns()}"
                t0 = time.perf_counter()
                patched = http.patch(path, json={fld: value})
                read = http.get(path)
                timings.append(time.perf_counter() - t0)
                if patched.status_code != 200 or read.status_code != 200:
                    failures.append(f"{path}: PATCH {patched.status_code}, GET {read.status_code}")
                elif read.json()[fld] != value:
                    failures.append(f"{path}: GET after PATCH shows {read.json()[fld]!r}")
            report[entity] = _invalidation_entry(timings, failures)

        # a list page: PATCH an item of the cached page, the page must show it
        list_path = f"{PATHS['hero']}?{LIST_QUERY}"
        timings, failures = [], []
        for n in range(rounds):
            page = http.get(list_path)
            page.raise_for_status()
            item = page.json()["items"][n % len(page.json()["items"])]
            value = f"Listed hero {n} {time.time_ns()}"
            t0 = time.perf_counter()
            patched = http.patch(f"{PATHS['hero']}/{item['id']}", json={"name": value})
            after = http.get(list_path)
            timings.append(time.perf_counter() - t0)
            names = {i["id"]: i["name"] for i in after.json().get("items", [])}
            if patched.status_code != 200 or after.status_code != 200:
                failures.append(f"PATCH {patched.status_code}, list GET {after.status_code}")
            elif names.get(item["id"]) != value:
                failures.append(f"list after PATCH shows {names.get(item['id'])!r}")
        report["hero_list"] = _invalidation_entry(timings, failures)
    ctx.results["invalidation"] = report
    for name, entry in report.items():
        print(
            f"    {name:10} {'OK' if entry['ok'] else 'FAIL'}  write+read p50 "
            f"{entry['write_read_p50_ms']:.2f} ms  max {entry['write_read_max_ms']:.2f} ms"
            + (f"  {entry['failures']}" if entry["failures"] else "")
        )


def _invalidation_entry(timings: list[float], failures: list[str]) -> dict[str, Any]:
    return {
        "ok": not failures and bool(timings),
        "rounds": len(timings),
        "write_read_p50_ms": round(statistics.median(timings) * 1000, 3) if timings else None,
        "write_read_max_ms": round(max(timings) * 1000, 3) if timings else None,
        "failures": failures,
    }


# -- 6. mixed workload ----------------------------------------------------------------------
def mixed_config(ctx: Context, base_url: str) -> dict[str, Any]:
    """The `bench.pyload mixed` configuration of the bench's mixed workload against one app
    (the same seed, shape and write shares wherever it runs)."""
    cfg = ctx.cfg
    return {
        "base_url": base_url,
        "seed": cfg.seed,
        "zipf_s": cfg.zipf_s,
        "concurrency": cfg.mixed_concurrency,
        "duration": cfg.mixed_duration,
        "warmup": cfg.mixed_warmup,
        "entities": {
            entity: {
                "path": PATHS[entity],
                "ids": ctx.ids[entity],
                "write_share": cfg.write_share[entity],
                "field": PATCH_FIELD[entity],
            }
            for entity in PATHS
        },
    }


def mixed(ctx: Context) -> None:
    cfg = ctx.cfg
    _banner(
        f"mixed workload: Zipf s={cfg.zipf_s} reads + writes "
        + ", ".join(f"{e} {s:.0%}" for e, s in cfg.write_share.items())
    )
    config = mixed_config(ctx, ctx.cached.url)
    path = ctx.work_dir / "mixed.json"
    path.write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "bench.pyload", "mixed", str(path)]
    print(
        f"  $ {' '.join(cmd)}   # {cfg.mixed_concurrency} concurrent, warm-up "
        f"{cfg.mixed_warmup:g}s, measured {cfg.mixed_duration:g}s",
        flush=True,
    )
    timeout = cfg.mixed_duration + cfg.mixed_warmup + 60
    probe = ctx.loader.probe
    before, started = (probe.sample() if probe else {}), time.perf_counter()
    code, out, err = ctx.procs.run("pyload-mixed", cmd, timeout=timeout)
    elapsed = time.perf_counter() - started
    other = probe.other_share(before, probe.sample(), elapsed) if probe else None
    if code != 0:
        raise RuntimeError(f"mixed load generator failed ({code}): {err.strip()[-800:]}")
    data = json.loads(out.strip().splitlines()[-1])
    entities: dict[str, Any] = {}
    for entity in PATHS:
        d = client.delta(data["stats_before"], data["stats_after"], entity)
        ops = data["entities"].get(entity, {})
        target = cfg.hit_rate_target[entity]
        hit_rate = d["hit_rate"]
        non_2xx = {
            f"{'GET' if kind == 'read' else 'PATCH'} {code}": count
            for kind in ("read", "write")
            for code, count in (ops.get(kind) or {}).get("statuses", {}).items()
            if not code.startswith("2")
        }
        entities[entity] = {
            "non_2xx": non_2xx,
            "reads": ops.get("read", {}).get("requests", 0),
            "writes": ops.get("write", {}).get("requests", 0),
            "read": ops.get("read"),
            "write": ops.get("write"),
            "socket_errors": ops.get("socket_errors", 0),
            "cache": d,
            "hit_rate": hit_rate,
            "target": target,
            "result": "PASS" if hit_rate is not None and hit_rate > target else "MISS",
        }
        print(
            f"    {entity:6} hit rate {hit_rate if hit_rate is None else f'{hit_rate:.1%}'}"
            f" (target > {target:.0%}) {entities[entity]['result']}"
        )
    ctx.results["mixed"] = {
        "command": " ".join(cmd),
        "requests": data["requests"],
        "seconds": data["seconds"],
        "rps": data["rps"],
        "other_cpu": None if other is None else round(other, 3),
        "entities": entities,
        "non_2xx_samples": data["non_2xx_samples"],
        "config": {k: v for k, v in config.items() if k != "entities"}
        | {"write_share": cfg.write_share, "hit_rate_target": cfg.hit_rate_target},
    }
    print(f"    {data['requests']} requests in {data['seconds']:.1f}s ({data['rps']:,.0f} req/s)")
    for sample, body in data["non_2xx_samples"].items():
        print(f"    non-2xx: {sample}: {body}")


# -- 5. degradation: Redis killed -----------------------------------------------------------
def degradation(ctx: Context) -> None:
    _banner("degradation: redis-server killed (cache on)")
    poke = ctx.hero_paths()[0]
    before = client.cache_stats(ctx.cached.url)
    ctx.redis.kill()
    try:
        result = ctx.loader.run("degraded-get", ctx.cached.url, ctx.hero_paths())
        during = client.cache_stats(ctx.cached.url)
    finally:
        ctx.redis.start()
    entry = ctx.record(
        "degraded_get",
        result,
        breaker_during=during["breaker"],
        cache_errors=client.delta(before, during, "hero")["errors"],
        ok=result.non_2xx == 0 and result.socket_errors == 0,
    )
    seconds, requests, _ = _wait_breaker(ctx.cached, "closed", poke)
    hits_before = client.cache_stats(ctx.cached.url)
    with httpx.Client(base_url=ctx.cached.url, timeout=10.0) as http:
        for _ in range(3):
            http.get(poke).raise_for_status()
    hits = client.delta(hits_before, client.cache_stats(ctx.cached.url), "hero")["hits"]
    entry.update(
        recovered_after_s=round(seconds, 3),
        recovery_requests=requests,
        hits_after_recovery=hits,
    )
    print(
        f"    breaker during: {during['breaker']}; Redis restarted, breaker closed after "
        f"{seconds:.2f}s ({requests} requests); hits after recovery: {hits}/3"
    )


# -- 7a. Redis hung (FaultProxy blackhole) --------------------------------------------------
def hung(ctx: Context) -> None:
    _banner("resilience: Redis hung (FaultProxy blackhole) until the breaker opens")
    poke = ctx.hero_paths()[0]
    client.fire(ctx.hung.url, ctx.hero_paths()[:100])  # pool connections through the proxy
    # pooled connections may have died with the Redis restart of the degradation scenario:
    # start from a closed breaker so that the row measures the hang alone
    _wait_breaker(ctx.hung, "closed", poke)
    ctx.proxy.set_mode("blackhole")
    try:
        seconds, requests, slowest = _wait_breaker(ctx.hung, "open", poke)
        print(
            f"    breaker open after {seconds:.2f}s / {requests} requests "
            f"(slowest {slowest * 1000:.0f} ms)"
        )
        before = client.cache_stats(ctx.hung.url)
        result = ctx.loader.run("hung-get", ctx.hung.url, ctx.hero_paths())
        after = client.cache_stats(ctx.hung.url)
    finally:
        ctx.proxy.set_mode("pass")
    ctx.record(
        "hung_get",
        result,
        breaker_opened_after_s=round(seconds, 3),
        requests_until_open=requests,
        slowest_before_open_ms=round(slowest * 1000, 3),
        breaker_after=after["breaker"],
        cache_errors_during=client.delta(before, after, "hero")["errors"],
        ok=result.non_2xx == 0 and result.socket_errors == 0,
    )


# -- the machine's drift: scenario 1's GET again, at the end --------------------------------
def baseline_again(ctx: Context) -> None:
    _banner("without cache, again (how much did the machine drift during the run?)")
    ctx.record(
        "nocache_get_again", ctx.loader.run("nocache-get-again", ctx.nocache.url, ctx.hero_paths())
    )
