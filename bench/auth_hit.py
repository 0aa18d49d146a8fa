"""What the bearer-token check costs a near-cache hit: two servers started for this row, the
same command line and settings but AUTH_ENABLED (with a token that grants `tales.read`, the
same for every request: its check is remembered after the first), on the same Redis entries
(their own key prefix), over the same random hero ids. A third row sends the same token to
the server without the check, which ignores it: what carrying the header costs the HTTP
server, apart from the check. The rows are interleaved (`ORDER`), each figure is the mean of
its 4 runs, and the ratios are authenticated / unauthenticated.

Two ratios: req/s, and the server's own CPU time per request (utime + stime of the uvicorn
process over the run, from /proc). On a shared machine the second is the steadier one: the
load of other processes changes how many requests a run gets, much less what each costs.
The issue's target: the authenticated hit within 10 % of the unauthenticated one; the
verdict uses the CPU per request (both ratios are printed)."""

from __future__ import annotations

import random
import secrets
from typing import Any

import httpx

from app.api.tokens import mint
from bench import client
from bench.config import PATHS
from bench.cpu import process_cpu_seconds
from bench.procs import Server, app_env
from bench.report import fmt, percent, ratio, table, times
from bench.scenarios import Context

MAX_IDS = 1000
WARM_PASSES = 2  # the first read may fill Redis only; the second fills the near cache
PREFIX = "benchauth:"
ISSUER, AUDIENCE = "bench", "tales-api"
TOKEN_TTL_S = 3600
#: authenticated CPU per request at most this multiple of unauthenticated (within 10 %)
TARGET = 1.10
#: the servers' rows; `header_only` is the AUTH_ENABLED=false server sent the same bearer
#: header, which it ignores: what carrying the token costs the HTTP server, without the check
ORDER = [
    ("auth_off", "a"),
    ("header_only", "a"),
    ("auth_on", "a"),
    ("auth_on", "b"),
    ("header_only", "b"),
    ("auth_off", "b"),
    ("header_only", "c"),
    ("auth_on", "c"),
    ("auth_off", "c"),
    ("auth_off", "d"),
    ("auth_on", "d"),
    ("header_only", "d"),
]
US_PER_S = 1e6
LABELS = {
    "auth_off": "near hit, AUTH_ENABLED=false",
    "header_only": "near hit, AUTH_ENABLED=false, token sent (ignored)",
    "auth_on": "near hit, AUTH_ENABLED=true + bearer token",
}
SERVER_OF = {"auth_off": "auth_off", "header_only": "auth_off", "auth_on": "auth_on"}


def _start(ctx: Context, key: str, secret: str) -> Server:
    settings: dict[str, object] = {
        "database_url": ctx.database_url,
        "redis_url": ctx.redis.url,
        "log_level": "WARNING",
        "cache_key_prefix": PREFIX,
    }
    if key == "auth_on":
        settings |= {
            "auth_enabled": "true",
            "auth_jwt_secret": secret,
            "auth_issuer": ISSUER,
            "auth_audience": AUDIENCE,
        }
    server = ctx.procs.start_uvicorn(
        f"app-{key.replace('_', '-')}", "app.main:app", app_env(**settings)
    )
    ctx.procs.wait_ready(server)
    return server


def _warm(server: Server, paths: list[str], headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as http:
        for _ in range(WARM_PASSES):
            for path in paths:
                http.get(path).raise_for_status()


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(name: str) -> float:
        return round(sum(float(run[name]) for run in runs) / len(runs), 3)

    return {
        **{name: mean(name) for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms")},
        "requests": sum(run["requests"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "other_cpu": max((run.get("other_cpu") or 0.0) for run in runs),
        "near_hit_share": min(run["near_hit_share"] for run in runs),
        "cpu_us_per_request": (
            round(sum(cpus) / len(cpus), 2)
            if (cpus := [run["cpu_us_per_request"] for run in runs if run["cpu_us_per_request"]])
            else None
        ),
        "runs": len(runs),
    }


def authenticated_hit(ctx: Context) -> None:
    print("\n== authenticated near hit vs unauthenticated (same ids, same Redis entries)")
    ids = list(ctx.ids["hero"])
    random.Random(ctx.cfg.seed).shuffle(ids)
    paths = [f"{PATHS['hero']}/{i}" for i in ids[:MAX_IDS]]
    secret = secrets.token_urlsafe(32)
    token = mint(
        secret,
        issuer=ISSUER,
        audience=AUDIENCE,
        scopes=["tales.read"],
        subject="bench",
        ttl_s=TOKEN_TTL_S,
    )
    bearer = {"Authorization": f"Bearer {token}"}
    headers = {"auth_off": {}, "header_only": bearer, "auth_on": bearer}
    servers: dict[str, Server] = {}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in LABELS}
    try:
        for key in ("auth_off", "auth_on"):
            servers[key] = _start(ctx, key, secret)
        for key, server in servers.items():
            _warm(server, paths, headers[key])
        for key, run in ORDER:
            print(f"  {LABELS[key]} (run {run}):", flush=True)
            server = servers[SERVER_OF[key]]
            before = client.cache_stats(server.url)
            cpu_before = process_cpu_seconds(server.proc.pid)
            result = ctx.loader.run(f"{key}-{run}", server.url, paths, headers=headers[key])
            cpu_after = process_cpu_seconds(server.proc.pid)
            d = client.delta(before, client.cache_stats(server.url), "hero")
            lookups = d["hits"] + d["misses"]
            share = round(d["near_hits"] / lookups, 4) if lookups else 0.0
            cpu_us = None
            if cpu_before is not None and cpu_after is not None and result.requests:
                cpu_us = round((cpu_after - cpu_before) * US_PER_S / result.requests, 2)
            print(f"    server CPU per request: {fmt(cpu_us)} µs", flush=True)
            runs[key].append(
                ctx.record(
                    f"{key}_near_ids_{run}", result, near_hit_share=share, cpu_us_per_request=cpu_us
                )
            )
    finally:
        for server in servers.values():
            ctx.procs.stop(server.proc)
    load = ctx.results["load"]
    for key, entries in runs.items():
        load[f"{key}_near_ids"] = _mean(entries)
    on, off = load["auth_on_near_ids"], load["auth_off_near_ids"]
    carried = load["header_only_near_ids"]
    cpu_ratio = ratio(on["cpu_us_per_request"], off["cpu_us_per_request"], 3)
    ctx.results["auth_hit"] = {
        "ids": len(paths),
        "cpu_per_request_ratio": cpu_ratio,
        # of which: carrying the header (server ignores it), then the check itself
        "cpu_header_only_ratio": ratio(carried["cpu_us_per_request"], off["cpu_us_per_request"], 3),
        "cpu_check_ratio": ratio(on["cpu_us_per_request"], carried["cpu_us_per_request"], 3),
        "rps_ratio": ratio(on["rps"], off["rps"], 3),
        "p50_ratio": ratio(on["p50_ms"], off["p50_ms"], 3),
        "p99_ratio": ratio(on["p99_ms"], off["p99_ms"], 3),
        "target": TARGET,
        "ok": cpu_ratio is not None and cpu_ratio <= TARGET,
    }


def render_auth_hit(results: dict[str, Any]) -> list[str]:
    report = results.get("auth_hit")
    if not report:
        return []
    load = results["load"]
    rows = []
    for key, label in LABELS.items():
        r = load[f"{key}_near_ids"]
        rows.append(
            [
                label,
                fmt(r["rps"], 0),
                fmt(r["cpu_us_per_request"], 1),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                percent(r["near_hit_share"]),
                fmt(r["non_2xx"]),
                percent(r["other_cpu"]),
            ]
        )
    headers = [
        f"GET by id (mean of {len(ORDER) // len(LABELS)} runs each)",
        "req/s",
        "server CPU µs/req",
        "p50 ms",
        "p99 ms",
        "near hits",
        "non-2xx",
        "other CPU",
    ]
    verdict = "ok" if report["ok"] else "MISSED"
    return [
        "",
        f"authenticated near hit / unauthenticated, {report['ids']} ids: server CPU per request "
        f"{times(report['cpu_per_request_ratio'])} (target ≤ ×{TARGET:.2f}: {verdict}); req/s "
        f"{times(report['rps_ratio'])}, p50 {times(report['p50_ratio'])}, p99 "
        f"{times(report['p99_ratio'])}",
        f"  CPU per request: token carried but ignored / none "
        f"{times(report.get('cpu_header_only_ratio'))}, checked / carried but ignored "
        f"{times(report.get('cpu_check_ratio'))}",
        table(headers, rows, right={1, 2, 3, 4, 5, 6, 7}),
    ]
