"""Set up everything, run the scenarios in order, tear everything down, report.

Setup: a fresh PostgreSQL database (127.0.0.1:5432, user postgres), migrated and seeded; a
throwaway redis-server and a FaultProxy in front of it; four uvicorn processes (the app with
the cache off, with the cache on, with the cache on behind the proxy, and the yardstick).
The hit-path scenario starts its own servers (the peers, the app with the near cache off)
and stops them when it is done.
Teardown runs on success, error and Ctrl-C/SIGTERM alike: processes stopped by pid, proxy and
redis-server stopped, the database dropped, logs kept in `bench/results/logs/`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.config import ROOT

if str(ROOT) not in sys.path:  # `tests.support` and `app` are imported from the repo root
    sys.path.insert(0, str(ROOT))

from bench import auth_hit, client, cluster, failover, hitpath, outbox, recovery, scenarios
from bench.chart import write_chart
from bench.config import PATHS, RESULTS_DIR, BenchConfig
from bench.cpu import CpuProbe
from bench.database import postgres_version, prepare
from bench.load import LoadRunner
from bench.procs import Processes, app_env
from bench.report import write_json
from bench.summary import LOAD_ROWS, compute_ratios, render
from tests.support import (
    FaultProxy,
    RedisServer,
    create_database,
    drop_all_created,
    postgres_available,
    postgres_url,
)
from tests.support.postgres import pg_host, pg_port, pg_user

#: admin token of the cached server (the hit-path scenario flushes its hero entries)
ADMIN_TOKEN = secrets.token_urlsafe(16)


def parse_args(argv: list[str] | None) -> BenchConfig:
    cfg = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=cfg.duration, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=cfg.connections)
    parser.add_argument("--threads", type=int, default=cfg.threads)
    parser.add_argument("--mixed-duration", type=float, default=cfg.mixed_duration)
    parser.add_argument("--heroes", type=int, default=cfg.heroes)
    parser.add_argument("--children", type=int, default=cfg.children)
    parser.add_argument("--stories", type=int, default=cfg.stories)
    parser.add_argument(
        "--python-loadgen", action="store_true", help="use the Python load generator, not wrk"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only this scenario (repeatable), e.g. --only 'authenticated hit'",
    )
    args = parser.parse_args(argv)
    names = [name for name, _ in SCENARIOS]
    unknown = [name for name in args.only or [] if name not in names]
    if unknown:
        parser.error(f"unknown scenario {unknown}; scenarios: {', '.join(names)}")
    cfg.only = args.only or []
    cfg.duration, cfg.connections, cfg.threads = args.duration, args.connections, args.threads
    cfg.mixed_duration = args.mixed_duration
    cfg.heroes, cfg.children, cfg.stories = args.heroes, args.children, args.stories
    cfg.python_loadgen = args.python_loadgen
    return cfg


# -- cleanup plumbing -------------------------------------------------------------------------
def _safe(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """A cleanup step that reports its failure instead of skipping the remaining steps."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"cleanup: {what} failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _keep_logs(log_dir: Path) -> None:
    target = RESULTS_DIR / "logs"
    shutil.rmtree(target, ignore_errors=True)
    if log_dir.is_dir():
        shutil.copytree(log_dir, target)


# -- setup ------------------------------------------------------------------------------------
def _phase(title: str) -> None:
    print(f"\n== {title}", flush=True)


def setup(cfg: BenchConfig, stack: contextlib.ExitStack, results: dict[str, Any]):
    work_dir = Path(tempfile.mkdtemp(prefix="tales-bench-"))
    stack.callback(_safe, "remove work dir", shutil.rmtree, work_dir)
    log_dir = work_dir / "logs"
    log_dir.mkdir()
    stack.callback(_safe, "keep logs", _keep_logs, log_dir)
    procs = Processes(log_dir)
    stack.callback(_safe, "stop processes", procs.close)

    _phase("setup")
    loader = LoadRunner(
        procs,
        work_dir,
        threads=cfg.threads,
        connections=cfg.connections,
        duration=cfg.duration,
        force_python=cfg.python_loadgen,
    )
    results["meta"]["load_tool"] = loader.tool

    if not postgres_available():
        raise RuntimeError(
            f"PostgreSQL is not answering on {pg_host()}:{pg_port()} (user {pg_user()}); "
            "start it first (scripts/ensure-test-services.sh does)"
        )
    stack.callback(_safe, "drop database", drop_all_created)
    database = create_database()
    database_url = postgres_url(database)
    print(f"  database {database} on {pg_host()}:{pg_port()}")
    results["meta"]["postgres"] = postgres_version()

    redis = RedisServer()
    stack.callback(_safe, "stop redis-server", redis.close)
    redis.start()
    proxy = FaultProxy("127.0.0.1", redis.port)
    stack.callback(_safe, "stop fault proxy", proxy.stop)
    proxy.start()
    print(f"  redis-server on port {redis.port}; FaultProxy {proxy.port} -> {redis.port}")
    loader.probe = CpuProbe(lambda: procs.pids() | ({redis.pid} if redis.pid else set()), database)

    prepare(procs, database, database_url, cfg)

    common = {"database_url": database_url, "log_level": "WARNING"}
    servers = {
        "nocache": procs.start_uvicorn(
            "app-nocache", "app.main:app", app_env(**common, redis_enabled="false")
        ),
        "cached": procs.start_uvicorn(
            "app-cached",
            "app.main:app",
            app_env(
                **common, redis_url=redis.url, cache_key_prefix="bench:", admin_token=ADMIN_TOKEN
            ),
        ),
        "hung": procs.start_uvicorn(
            "app-hung",
            "app.main:app",
            app_env(**common, redis_url=proxy.url(), cache_key_prefix="benchhung:"),
        ),
    }
    for server in servers.values():
        procs.wait_ready(server)
    print(f"  uvicorn: $ {' '.join(servers['cached'].command)}")
    print("  " + ", ".join(f"{s.name} :{s.port}" for s in servers.values()))

    ids = {
        entity: client.collect_ids(servers["nocache"].url, path) for entity, path in PATHS.items()
    }
    stampede_ids = [ids["hero"].pop() for _ in range(cfg.stampede_bursts)]
    body = _hero_body(servers["nocache"].url, ids["hero"][0])
    body_file = work_dir / "hero.json"
    body_file.write_bytes(body)
    yard = procs.start_uvicorn(
        "yardstick", "bench.yardstick:app", {**app_env(), "BENCH_YARDSTICK_BODY": str(body_file)}
    )
    procs.wait_ready(yard)
    print(f"  yardstick :{yard.port} serves {len(body)} bytes (hero {ids['hero'][0]})")
    results["meta"]["hero_body_bytes"] = len(body)
    return scenarios.Context(
        cfg=cfg,
        procs=procs,
        loader=loader,
        work_dir=work_dir,
        redis=redis,
        proxy=proxy,
        nocache=servers["nocache"],
        cached=servers["cached"],
        hung=servers["hung"],
        yardstick=yard,
        ids=ids,
        stampede_ids=stampede_ids,
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        results=results,
    )


def _hero_body(base_url: str, hero_id: str) -> bytes:
    import httpx

    response = httpx.get(f"{base_url}{PATHS['hero']}/{hero_id}", timeout=10.0)
    response.raise_for_status()
    return response.content


def _meta(cfg: BenchConfig) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return done.stdout.strip() or "unknown"

    dirty = out(["git", "status", "--porcelain", "--", "app", "alembic"]) not in ("", "unknown")
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "git_commit": out(["git", "rev-parse", "--short", "HEAD"])
        + (" (app/ modified)" if dirty else ""),
        "redis": out(["redis-server", "--version"]).split(" sha=")[0],
        "data": f"{cfg.heroes} heroes, {cfg.children} children, {cfg.stories} stories "
        f"(python -m app seed --seed {cfg.seed})",
        "load_shape": f"-t{cfg.threads} -c{cfg.connections} -d{cfg.duration}s",
        "config": {
            k: v
            for k, v in vars(cfg).items()
            if k not in ("write_share", "hit_rate_target")  # reported with the mixed run
        },
    }


# -- run --------------------------------------------------------------------------------------
SCENARIOS: list[tuple[str, Callable[[scenarios.Context], None]]] = [
    ("stampede", scenarios.stampede),  # first: needs a cold cache
    ("yardstick", scenarios.yardstick),
    ("without cache", scenarios.without_cache),
    ("with cache", scenarios.with_cache),
    ("hit path", hitpath.hit_path),  # peers, near cache on/off; before the others' writes
    ("authenticated hit", auth_hit.authenticated_hit),  # the token check on a near hit
    ("invalidation", scenarios.invalidation),
    ("mixed workload", scenarios.mixed),
    ("Redis Cluster", cluster.cluster_rows),  # its own cluster and app processes
    ("Redis Sentinel", failover.sentinel_rows),  # its own sentinel group and app process
    ("degradation", scenarios.degradation),
    ("Redis hung", scenarios.hung),
    ("outbox", outbox.outbox),  # write cost of the outbox, cost of a false alarm
    ("identity check", recovery.identity),  # per new connection; own servers
    ("outbox recovery", recovery.outbox_recovery),  # the probe's pass; own servers
    ("without cache, again", scenarios.baseline_again),  # drift of the machine over the run
    ("yardstick, again", scenarios.yardstick_again),
]


def run(cfg: BenchConfig, stack: contextlib.ExitStack, results: dict[str, Any]) -> None:
    ctx = setup(cfg, stack, results)
    for name, scenario in SCENARIOS:
        if cfg.only and name not in cfg.only:
            continue
        started = time.perf_counter()
        try:
            scenario(ctx)
        except Exception as exc:
            results["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  ERROR in {name}:", file=sys.stderr)
            traceback.print_exc()
        results["timings_s"][name] = round(time.perf_counter() - started, 1)


def failed_checks(results: dict[str, Any]) -> list[str]:
    failed = [
        f"invalidation {n}" for n, e in results.get("invalidation", {}).items() if not e["ok"]
    ]
    for key in ("degraded_get", "hung_get"):
        entry = results.get("load", {}).get(key)
        if entry is not None and not entry["ok"]:
            failed.append(key)
    if results.get("stampede") and not results["stampede"]["ok"]:
        failed.append("stampede")
    return failed


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    results: dict[str, Any] = {"meta": _meta(cfg), "load": {}, "errors": [], "timings_s": {}}
    started = time.perf_counter()
    previous_term = signal.signal(signal.SIGTERM, _terminate)
    interrupted = False
    stack = contextlib.ExitStack()
    try:
        run(cfg, stack, results)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping processes and dropping the database", file=sys.stderr)
    except Exception as exc:
        results["errors"].append(f"setup: {type(exc).__name__}: {exc}")
        traceback.print_exc()
    finally:
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            _phase("cleanup")
            stack.close()
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    if interrupted:
        return 130

    results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
    results["ratios"] = compute_ratios(results["load"])
    results["failed_checks"] = failed_checks(results)
    print("\n" + render(results))
    path = RESULTS_DIR / "latest.json"
    write_json(path, results)
    chart = write_chart(RESULTS_DIR / "latest.svg", results, LOAD_ROWS)
    print(f"\nwritten {path.relative_to(ROOT)}, chart {chart.relative_to(ROOT)}; ", end="")
    print("logs in bench/results/logs/; ", end="")
    print(f"total {results['meta']['total_seconds']:.0f} s")
    if results["errors"] or results["failed_checks"]:
        print(f"FAILED: {results['errors'] + results['failed_checks']}", file=sys.stderr)
        return 1
    return 0
