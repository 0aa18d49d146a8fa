"""What the bearer-token check costs a near-cache hit.

Three servers per round, the same command line and settings but for AUTH_ENABLED: `auth_on`
(the check, with a token that grants `tales.read`, the same for every request: its check is
remembered after the first), `auth_off`, and `twin`, a second AUTH_ENABLED=false server
started alike. All read the same Redis entries (their own key prefix) over the same random
hero ids. Four rows a round: `auth_off`; `header_only`, the same server sent the token,
which it ignores (what carrying the header costs the HTTP server, apart from the check);
`auth_on`; and `twin`, sent the token too: an A/A control, two processes of the same code
and settings and requests.

Why `ROUNDS` rounds, each with its own fresh servers (started in a rotating order, stopped
after the round), and in each `CYCLES` cycles of short runs of every row: two processes of
the same code differ in CPU per request by several per cent (memory layout, where the
scheduler puts them), and the machine drifts and has bursts. With one process per
configuration for the whole row, the process drawn would decide the ratio; over the rounds
that averages out, and the twin row shows how far two identical processes still differ (the
bench's resolution). Each server first gets one unmeasured run of load: a new process is
slower in its first seconds under load.

Two variables that differ between processes of the same code are held equal within a round:
the three servers share one `PYTHONHASHSEED` (the round's number: str and bytes hashes, so
the layout of every dict the hit path touches, differ from one seed to the next), and on a
machine of two CPUs or more each server is pinned to the same CPU (`SERVER_CPU`) while wrk
and the rest of the bench keep the others: no server then shares a core with wrk or is moved
between cores mid-run. The rounds still change the seed, so the verdict is not that of one
seed.

Two ratios: req/s, and the server's own CPU time per request (utime + stime of the uvicorn
process over the run, from /proc). On a shared machine the second is the steadier one: the
load of other processes changes how many requests a run gets, much less what each costs.
The CPU ratios are paired in time: in each round, a row's median over its runs (a burst on
the machine moves one run by up to a third; the median not), and the ratio of two rows'
medians; then the geometric mean of those ratios over the rounds. The table's figures are
each row's median over all its runs, rounds pooled, and so are the req/s and latency
ratios. The issue's target: the authenticated hit within 10 % of the unauthenticated one;
the verdict uses the paired CPU ratio, printed next to the A/A control's."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import statistics
from collections.abc import Iterator
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
#: rounds of fresh servers (per-round A/A ratios spread by up to ±7 % even pinned: six
#: rounds narrow the mean); the order of a round's rows rotates
ROUNDS = 6
#: cycles of every row per round, the rows' order rotating from one to the next
CYCLES = 3
ROWS = ("auth_off", "header_only", "auth_on", "twin")
SERVER_KEYS = ("auth_off", "auth_on", "twin")
#: seconds per run here: more, shorter runs interleave finer than the bench's default
RUN_SECONDS = 2
US_PER_S = 1e6
LABELS = {
    "auth_off": "near hit, AUTH_ENABLED=false",
    "header_only": "near hit, AUTH_ENABLED=false, token sent (ignored)",
    "auth_on": "near hit, AUTH_ENABLED=true + bearer token",
    "twin": "A/A control: a twin AUTH_ENABLED=false server, token sent (ignored)",
}
#: the per-round CPU ratios: name -> (numerator row, denominator row)
PAIRS = {
    "on_off": ("auth_on", "auth_off"),
    "header_only_off": ("header_only", "auth_off"),
    "on_header_only": ("auth_on", "header_only"),
    "twin_header_only": ("twin", "header_only"),
}
SERVER_OF = {key: key for key in SERVER_KEYS} | {"header_only": "auth_off"}
#: the CPU the servers run on (when the machine has two or more); wrk keeps the others
SERVER_CPU = 1


def rotated(items: tuple[str, ...], by: int) -> tuple[str, ...]:
    by %= len(items)
    return items[by:] + items[:by]


def _start(ctx: Context, key: str, secret: str, seed: int) -> Server:
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
    env = app_env(**settings) | {"PYTHONHASHSEED": str(seed)}
    server = ctx.procs.start_uvicorn(f"app-{key.replace('_', '-')}", "app.main:app", env)
    if _pinning():
        os.sched_setaffinity(server.proc.pid, {SERVER_CPU})
    ctx.procs.wait_ready(server)
    return server


def _pinning() -> bool:
    return SERVER_CPU in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1


@contextlib.contextmanager
def _off_the_server_cpu() -> Iterator[None]:
    """This process (and wrk, its child) on every allowed CPU but the servers' one."""
    allowed = os.sched_getaffinity(0)
    if not _pinning():
        yield
        return
    os.sched_setaffinity(0, allowed - {SERVER_CPU})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _warm(server: Server, paths: list[str], headers: dict[str, str]) -> None:
    """Every id read `WARM_PASSES` times: then each is a near hit."""
    with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as http:
        for _ in range(WARM_PASSES):
            for path in paths:
                http.get(path).raise_for_status()


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A row's figures over its runs: the median of each (a burst on the machine moves one
    run a lot; the median not)."""

    def median(name: str) -> float:
        return round(statistics.median(float(run[name]) for run in runs), 3)

    return {
        **{name: median(name) for name in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms")},
        "requests": sum(run["requests"] for run in runs),
        "non_2xx": sum(run["non_2xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "other_cpu": max((run.get("other_cpu") or 0.0) for run in runs),
        "near_hit_share": min(run["near_hit_share"] for run in runs),
        "cpu_us_per_request": (
            round(statistics.median(cpus), 2)
            if (cpus := [run["cpu_us_per_request"] for run in runs if run["cpu_us_per_request"]])
            else None
        ),
        "runs": len(runs),
    }


def _measure(
    ctx: Context, server: Server, key: str, run: str, paths: list[str], headers: dict[str, str]
) -> dict[str, Any]:
    """One wrk run of `key` against `server`, with the server's CPU per request."""
    before = client.cache_stats(server.url)
    cpu_before = process_cpu_seconds(server.proc.pid)
    result = ctx.loader.run(f"{key}-{run}", server.url, paths, headers=headers)
    cpu_after = process_cpu_seconds(server.proc.pid)
    d = client.delta(before, client.cache_stats(server.url), "hero")
    lookups = d["hits"] + d["misses"]
    share = round(d["near_hits"] / lookups, 4) if lookups else 0.0
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and result.requests:
        cpu_us = round((cpu_after - cpu_before) * US_PER_S / result.requests, 2)
    print(f"    server CPU per request: {fmt(cpu_us)} µs", flush=True)
    return ctx.record(
        f"{key}_near_ids_{run}", result, near_hit_share=share, cpu_us_per_request=cpu_us
    )


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
    headers = {"auth_off": {}, "header_only": bearer, "auth_on": bearer, "twin": bearer}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in LABELS}
    rounds: list[dict[str, float | None]] = []
    default_duration = ctx.loader.duration
    ctx.loader.duration = RUN_SECONDS
    try:
        with _off_the_server_cpu():
            for number in range(ROUNDS):
                run = chr(ord("a") + number)
                cpu_of = _round(ctx, number, run, secret, paths, headers, runs)
                rounds.append(
                    {name: ratio(cpu_of.get(a), cpu_of.get(b), 3) for name, (a, b) in PAIRS.items()}
                )
                print(
                    f"    round {run}: CPU per request on / off {times(rounds[-1]['on_off'])}, "
                    f"A/A twin / same server {times(rounds[-1]['twin_header_only'])}",
                    flush=True,
                )
    finally:
        ctx.loader.duration = default_duration
    load = ctx.results["load"]
    for key, entries in runs.items():
        load[f"{key}_near_ids"] = _median(entries)
    on, off = load["auth_on_near_ids"], load["auth_off_near_ids"]
    carried, twin = load["header_only_near_ids"], load["twin_near_ids"]
    paired = {name: _geometric_mean([r[name] for r in rounds]) for name in PAIRS}
    cpu_ratio = paired["on_off"]
    ctx.results["auth_hit"] = {
        "ids": len(paths),
        "rounds": ROUNDS,
        "cycles": CYCLES,
        "run_seconds": RUN_SECONDS,
        "servers_pinned_to_cpu": SERVER_CPU if _pinning() else None,
        "cpu_per_request_ratio": cpu_ratio,
        # of which: carrying the header (server ignores it), then the check itself
        "cpu_header_only_ratio": paired["header_only_off"],
        "cpu_check_ratio": paired["on_header_only"],
        # A/A: two processes alike, the same requests: the resolution of this comparison
        "cpu_twin_ratio": paired["twin_header_only"],
        # the ratio of the medians over every run, rounds pooled (not paired in time)
        "cpu_pooled_ratio": ratio(on["cpu_us_per_request"], off["cpu_us_per_request"], 3),
        "cpu_pooled_twin_ratio": ratio(
            twin["cpu_us_per_request"], carried["cpu_us_per_request"], 3
        ),
        "rps_ratio": ratio(on["rps"], off["rps"], 3),
        "p50_ratio": ratio(on["p50_ms"], off["p50_ms"], 3),
        "p99_ratio": ratio(on["p99_ms"], off["p99_ms"], 3),
        "per_round": rounds,
        "target": TARGET,
        "ok": cpu_ratio is not None and cpu_ratio <= TARGET,
    }


def _round(
    ctx: Context,
    number: int,
    run: str,
    secret: str,
    paths: list[str],
    headers: dict[str, dict[str, str]],
    runs: dict[str, list[dict[str, Any]]],
) -> dict[str, float | None]:
    """One round: fresh servers, every row `CYCLES` times; each row's median CPU per
    request."""
    servers: dict[str, Server] = {}
    cpus: dict[str, list[float | None]] = {key: [] for key in ROWS}
    try:
        for key in rotated(SERVER_KEYS, number):
            servers[key] = _start(ctx, key, secret, seed=number)
            _warm(servers[key], paths, headers[key])
        for key in rotated(SERVER_KEYS, number):  # to its steady state, not measured
            ctx.loader.run(f"{key}-{run}-warm-up", servers[key].url, paths, headers=headers[key])
        for cycle in range(CYCLES):
            for key in rotated(ROWS, number + cycle):
                print(f"  {LABELS[key]} (run {run}{cycle + 1}):", flush=True)
                record = _measure(
                    ctx, servers[SERVER_OF[key]], key, f"{run}{cycle + 1}", paths, headers[key]
                )
                runs[key].append(record)
                cpus[key].append(record.get("cpu_us_per_request"))
    finally:
        for server in servers.values():
            ctx.procs.stop(server.proc)
    return {key: _median_of(values) for key, values in cpus.items()}


def _geometric_mean(ratios: list[float | None]) -> float | None:
    known = [value for value in ratios if value]
    return round(statistics.geometric_mean(known), 3) if known else None


def _median_of(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


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
        f"GET by id (median of {report.get('rounds', '-')} rounds x "
        f"{report.get('cycles', '-')} runs of {report.get('run_seconds', '-')} s)",
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
        f"{times(report['cpu_per_request_ratio'])} (paired per round, geometric mean; target "
        f"≤ ×{TARGET:.2f}: {verdict}); rounds pooled: CPU "
        f"{times(report.get('cpu_pooled_ratio'))}, req/s {times(report['rps_ratio'])}, p50 "
        f"{times(report['p50_ratio'])}, p99 {times(report['p99_ratio'])}",
        "  per round (fresh servers), authenticated / unauthenticated: "
        + ", ".join(times(r["on_off"]) for r in report.get("per_round", [])),
        f"  A/A control, a twin server / the same requests to the unauthenticated one: "
        f"{times(report.get('cpu_twin_ratio'))} (pooled "
        f"{times(report.get('cpu_pooled_twin_ratio'))}; per round: "
        + ", ".join(times(r["twin_header_only"]) for r in report.get("per_round", []))
        + "): how far two identical processes differ here",
        f"  CPU per request: token carried but ignored / none "
        f"{times(report.get('cpu_header_only_ratio'))}, checked / carried but ignored "
        f"{times(report.get('cpu_check_ratio'))}",
        table(headers, rows, right={1, 2, 3, 4, 5, 6, 7}),
    ]
