"""Turn the raw results into ratios, the printed tables and the JSON document."""

from __future__ import annotations

from typing import Any

from bench.auth_hit import render_auth_hit
from bench.config import LIST_QUERY, PATHS
from bench.hitpath_summary import compute_hitpath_ratios, render_hitpath
from bench.outbox import render as render_outbox
from bench.recovery import render_identity, render_recovery
from bench.report import fmt, percent, ratio, table, times

NOISY = 0.10  # other processes' CPU share above which a run is flagged

GET = f"GET {PATHS['hero']}/{{id}}"
LIST = f"GET {PATHS['hero']}?{LIST_QUERY}"

#: load key -> (scenario label, route, compare latency against)
LOAD_ROWS = [
    ("yardstick", "yardstick (constant body)", "GET /const", None),
    ("nocache_get", "without cache", GET, None),
    ("nocache_list", "without cache", LIST, None),
    ("cache_get", "with cache (warm)", GET, "nocache_get"),
    ("cache_list", "with cache (warm)", LIST, "nocache_list"),
    ("degraded_get", "Redis killed (degraded)", GET, "nocache_get"),
    ("hung_get", "Redis hung, breaker open", GET, "nocache_get"),
    ("nocache_get_again", "without cache, again at the end", GET, "nocache_get"),
    ("yardstick_again", "yardstick, again at the end", "GET /const", None),
]


def compute_ratios(load: dict[str, Any]) -> dict[str, Any]:
    def rps(key: str) -> float | None:
        return load.get(key, {}).get("rps")

    def lat(key: str, q: str) -> float | None:
        return load.get(key, {}).get(f"{q}_ms")

    ratios: dict[str, Any] = {
        "vs_yardstick_rps": {
            key: ratio(rps(key), rps("yardstick"), 3) for key in load if key != "yardstick"
        },
        "cache_speedup_get_rps": ratio(rps("cache_get"), rps("nocache_get")),
        "cache_speedup_list_rps": ratio(rps("cache_list"), rps("nocache_list")),
        "cache_speedup_get_p50": ratio(lat("nocache_get", "p50"), lat("cache_get", "p50")),
        "cache_speedup_list_p50": ratio(lat("nocache_list", "p50"), lat("cache_list", "p50")),
    }
    for key in ("hung_get", "degraded_get"):
        name = key.removesuffix("_get")
        ratios[f"{name}_vs_nocache_p50"] = ratio(lat(key, "p50"), lat("nocache_get", "p50"))
        ratios[f"{name}_vs_nocache_p99"] = ratio(lat(key, "p99"), lat("nocache_get", "p99"))
        ratios[f"{name}_vs_nocache_rps"] = ratio(rps(key), rps("nocache_get"))
    # the same measurement at the start and at the end: how far apart are repeated runs?
    ratios["baseline_drift_rps"] = ratio(rps("nocache_get_again"), rps("nocache_get"))
    ratios["baseline_drift_p50"] = ratio(lat("nocache_get_again", "p50"), lat("nocache_get", "p50"))
    ratios["hit_path"] = compute_hitpath_ratios(load)
    return ratios


def load_table(load: dict[str, Any], ratios: dict[str, Any]) -> str:
    rows = []
    for key, label, route, versus in LOAD_ROWS:
        r = load.get(key)
        if r is None:
            rows.append([label, route, "-", "-", "-", "-", "-", "-", "-", "not measured"])
            continue
        notes = []
        if versus and versus in load:
            base = load[versus]
            notes.append(f"req/s {times(ratio(r['rps'], base['rps']))} vs no cache")
            notes.append(f"p50 {times(ratio(r['p50_ms'], base['p50_ms']))}")
            notes.append(f"p99 {times(ratio(r['p99_ms'], base['p99_ms']))}")
        if r.get("hit_rate") is not None:
            notes.append(f"hit rate {percent(r['hit_rate'])}")
        if r.get("cache_errors"):
            breaker = r.get("breaker_after") or r.get("breaker_during")
            notes.append(f"{r['cache_errors']} cache errors, breaker {breaker}")
        vs_yard = ratios["vs_yardstick_rps"].get(key) if key != "yardstick" else 1.0
        rows.append(
            [
                label,
                route,
                fmt(round(r["rps"])),
                fmt(vs_yard, 3),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["non_2xx"]),
                fmt(r["socket_errors"]),
                percent(r.get("other_cpu")),
                ", ".join(notes),
            ]
        )
    headers = [
        "scenario",
        "route",
        "req/s",
        "×yardstick",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "sock err",
        "other CPU",
        "notes",
    ]
    return table(headers, rows, right={2, 3, 4, 5, 6, 7, 8})


def ratio_table(ratios: dict[str, Any]) -> str:
    rows = [
        ["cache speed-up, GET by id, req/s (cached / uncached)", ratios["cache_speedup_get_rps"]],
        ["cache speed-up, GET by id, p50 (uncached / cached)", ratios["cache_speedup_get_p50"]],
        ["cache speed-up, list, req/s (cached / uncached)", ratios["cache_speedup_list_rps"]],
        ["cache speed-up, list, p50 (uncached / cached)", ratios["cache_speedup_list_p50"]],
        ["Redis hung (breaker open) / cache disabled, p50", ratios["hung_vs_nocache_p50"]],
        ["Redis hung (breaker open) / cache disabled, p99", ratios["hung_vs_nocache_p99"]],
        ["Redis hung (breaker open) / cache disabled, req/s", ratios["hung_vs_nocache_rps"]],
        ["Redis killed / cache disabled, p50", ratios["degraded_vs_nocache_p50"]],
        ["Redis killed / cache disabled, p99", ratios["degraded_vs_nocache_p99"]],
        ["noise: cache disabled at the end / at the start, req/s", ratios["baseline_drift_rps"]],
        ["noise: cache disabled at the end / at the start, p50", ratios["baseline_drift_p50"]],
    ]
    return table(["ratio", "value"], [[n, times(v)] for n, v in rows], right={1})


def checks_table(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    for name, entry in results.get("invalidation", {}).items():
        route = "list page" if name == "hero_list" else f"{name} by id"
        rows.append(
            [
                f"invalidation: PATCH then GET shows new data ({route})",
                "OK" if entry["ok"] else "FAIL",
                f"write+read p50 {fmt(entry['write_read_p50_ms'])} ms, "
                f"max {fmt(entry['write_read_max_ms'])} ms, {entry['rounds']} rounds",
            ]
        )
    degraded = results.get("load", {}).get("degraded_get")
    if degraded:
        rows.append(
            [
                "degradation: Redis killed, non-2xx = 0",
                "OK" if degraded["ok"] else "FAIL",
                f"non-2xx {degraded['non_2xx']}, socket errors {degraded['socket_errors']}, "
                f"breaker {degraded['breaker_during']}; after restart closed in "
                f"{fmt(degraded.get('recovered_after_s'))} s, "
                f"hits again {degraded.get('hits_after_recovery')}/3",
            ]
        )
    hung = results.get("load", {}).get("hung_get")
    if hung:
        rows.append(
            [
                "resilience: Redis hung, requests served",
                "OK" if hung["ok"] else "FAIL",
                f"breaker open after {hung['breaker_opened_after_s']:.2f} s / "
                f"{hung['requests_until_open']} requests "
                f"(slowest {hung['slowest_before_open_ms']:.0f} ms)",
            ]
        )
    stampede = results.get("stampede")
    if stampede:
        bursts = stampede["bursts"]
        rows.append(
            [
                f"stampede: {stampede['requests']} concurrent cold GETs → database loads",
                "OK" if stampede["ok"] else "FAIL",
                f"{', '.join(str(b['database_loads']) for b in bursts)} (expected 1 per burst); "
                f"misses {'/'.join(str(b['misses']) for b in bursts)}, "
                f"joined a load {'/'.join(str(b['stampede_waits']) for b in bursts)}"
                + (
                    f", cache errors {'/'.join(str(b['cache_errors']) for b in bursts)}"
                    if any(b["cache_errors"] for b in bursts)
                    else ""
                ),
            ]
        )
    return table(["check", "result", "details"], rows, right=set())


def mixed_table(mixed: dict[str, Any]) -> str:
    rows = []
    for entity, e in mixed["entities"].items():
        read, write = e.get("read") or {}, e.get("write") or {}
        rows.append(
            [
                entity,
                fmt(e["reads"]),
                fmt(e["writes"]),
                percent(e["hit_rate"]),
                f"> {e['target'] * 100:.0f} %",
                e["result"],
                f"{fmt(read.get('p50_ms'))} / {fmt(read.get('p99_ms'))}",
                f"{fmt(write.get('p50_ms'))} / {fmt(write.get('p99_ms'))}",
                ", ".join(f"{k}×{v}" for k, v in e["non_2xx"].items()) or "0",
                fmt(e["socket_errors"]),
            ]
        )
    headers = [
        "entity",
        "reads",
        "writes",
        "hit rate",
        "target",
        "result",
        "read p50/p99 ms",
        "write p50/p99 ms",
        "non-2xx",
        "sock err",
    ]
    return table(headers, rows, right={1, 2, 3, 6, 7, 9})


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    load = results.get("load", {})
    parts = [
        f"tales-api bench — {meta['started_at']}  ({meta['machine']})",
        f"data: {meta['data']};  load: {meta.get('load_tool', '-')}, {meta['load_shape']}",
        "",
        load_table(load, results["ratios"]),
        "",
        ratio_table(results["ratios"]),
        "",
        checks_table(results),
        *render_hitpath(results),
        *render_auth_hit(results),
        *(render_outbox(results["outbox"]) if results.get("outbox") else []),
        *(render_identity(results["identity_check"]) if results.get("identity_check") else []),
        *(render_recovery(results["outbox_recovery"]) if results.get("outbox_recovery") else []),
    ]
    if results.get("mixed"):
        m = results["mixed"]
        cfg = m["config"]
        parts += [
            "",
            f"mixed workload: Zipf s={cfg['zipf_s']}, {cfg['concurrency']} concurrent, "
            f"warm-up {cfg['warmup']:g} s, measured {m['seconds']:.1f} s, "
            f"{m['rps']:,.0f} req/s (Python httpx client), other CPU "
            f"{percent(m.get('other_cpu'))}; hit rate from /cache/stats deltas",
            mixed_table(m),
        ]
        for sample, body in m.get("non_2xx_samples", {}).items():
            parts.append(f"  {sample}: {body}")
    if results.get("cluster"):
        parts += ["", *render_cluster(results["cluster"])]
    if results.get("sentinel"):
        parts += [
            "",
            failover_line(
                "Redis Sentinel (primary, replica, 3 sentinels)", results["sentinel"]["failover"]
            ),
        ]
    shares = [r.get("other_cpu") or 0.0 for r in load.values()]
    if results.get("mixed"):
        shares.append(results["mixed"].get("other_cpu") or 0.0)
    if shares and max(shares) > NOISY:
        parts += [
            "",
            f"WARNING: other processes used up to {max(shares):.0%} of the CPUs during a "
            "measurement (column 'other CPU'): absolute figures are low and ratios between "
            "rows measured at different times are unreliable; rerun on a quiet machine.",
        ]
    if results.get("errors"):
        parts += ["", "ERRORS:"] + [f"  {e}" for e in results["errors"]]
    return "\n".join(parts)


def render_cluster(cluster: dict[str, Any]) -> list[str]:
    """Hit ratio on a cluster vs standalone (the same mixed workload), and the failover."""
    lines = ["Redis Cluster (3 primaries + 3 replicas) vs standalone: mixed workload, hit rate"]
    lines.append(f"  {'mode':12}{'total':>8}{'hero':>8}{'child':>8}{'story':>8}{'req/s':>9}")
    for mode, row in cluster["hit_rate"].items():
        rates = "".join(f"{percent(row[k]):>8}" for k in ("total", "hero", "child", "story"))
        lines.append(f"  {mode:12}{rates}{row['rps']:>9,.0f}")
    lines.append(failover_line("cluster", cluster["failover"]))
    return lines


def failover_line(mode: str, f: dict[str, Any]) -> str:
    """A primary SIGKILLed under load, as the clients saw it (`bench/failover.py`)."""
    return (
        f"failover ({mode}): a primary SIGKILLed under load -> replica promoted "
        f"{f['promoted_s']:.2f} s, requests succeed again {f['requests_ok_again_s']:.2f} s, "
        f"cache fills and hits again {f['failover_s']:.2f} s after the kill; slowest request "
        f"{f['slowest_request_s']:.2f} s; non-2xx {f['non_2xx']}, transport errors "
        f"{f['transport_errors']} of {f['requests']}; cache operations failed (served from "
        f"the database) {f['cache_errors']}"
    )
