"""The hit-path comparison's tables: peers and tales-api (near cache on/off) against the
yardstick and the uncached database, the ratios between them, and memory."""

from __future__ import annotations

from typing import Any

from bench.hitpath import PATCH_ROWS, PEER_ROWS, PRODUCT_ROWS, ROWS, HitRow
from bench.peer_servers import PEERS
from bench.report import fmt, percent, ratio, table, times

#: the issue's target: a hit serves at least this many times the uncached database's req/s
HIT_VS_DATABASE_TARGET = 10.0
MIB = 1024 * 1024

#: shape -> the uncached row it is compared with (PostgreSQL, measured next to the hits)
UNCACHED = {"ids": "nocache_ids", "hot": "nocache_ids", "pages": "nocache_pages"}


def request_label(row: HitRow, hit_path: dict[str, Any]) -> str:
    return {
        "ids": f"GET by id, {hit_path.get('ids', '?')} random ids",
        "pages": f"GET list, {hit_path.get('pages', '?')} pages of {hit_path.get('page_size')}",
        "hot": "GET by id, one hot id",
        "patch": f"PATCH by id, {hit_path.get('ids', '?')} ids",
    }[row.shape]


def _number(entry: dict[str, Any] | None, name: str) -> float | None:
    value = (entry or {}).get(name)
    return None if value is None else float(value)


def compute_hitpath_ratios(load: dict[str, Any]) -> dict[str, Any]:
    def rps(key: str) -> float | None:
        return _number(load.get(key), "rps")

    def lat(key: str, q: str) -> float | None:
        return _number(load.get(key), f"{q}_ms")

    ratios: dict[str, Any] = {
        "hit_vs_uncached_get_rps": ratio(rps("near_on_ids"), rps("nocache_ids")),
        "hit_vs_uncached_target": HIT_VS_DATABASE_TARGET,
        "p99_over_p50": {
            row.key: ratio(lat(row.key, "p99"), lat(row.key, "p50"))
            for row in ROWS
            if row.key in load
        },
        "yardstick_drift_rps": ratio(rps("yardstick_again"), rps("yardstick")),
    }
    for shape in ("ids", "pages", "hot"):
        ratios[f"near_on_vs_off_{shape}_rps"] = ratio(
            rps(f"near_on_{shape}"), rps(f"near_off_{shape}")
        )
        ratios[f"near_off_vs_on_{shape}_p50"] = ratio(
            lat(f"near_off_{shape}", "p50"), lat(f"near_on_{shape}", "p50")
        )
    for peer in PEERS:
        ratios[f"near_on_vs_{peer.key}_rps"] = ratio(
            rps("near_on_ids"), rps(f"peer_{peer.key}_get")
        )
    for q in ("p50", "p99"):
        ratios[f"patch_near_on_vs_off_{q}"] = ratio(
            lat("near_on_patch", q), lat("near_off_patch", q)
        )
    return ratios


def hitpath_table(load: dict[str, Any], hit_path: dict[str, Any]) -> str:
    yard = load.get("yardstick", {}).get("rps")
    rows = []
    for row in PEER_ROWS + PRODUCT_ROWS + PATCH_ROWS:
        r = load.get(row.key)
        request = request_label(row, hit_path)
        if r is None:
            reason = hit_path.get("errors", {}).get(row.server) or hit_path.get("errors", {}).get(
                row.key, "not measured"
            )
            rows.append([row.label, request, *["-"] * 11, str(reason)[:80]])
            continue
        uncached = load.get(UNCACHED.get(row.shape, ""), {}).get("rps")
        notes = []
        if r.get("hit_rate") is not None:
            notes.append(f"hit rate {percent(r['hit_rate'])}")
        if r.get("near_hit_share") is not None:
            notes.append(f"near hits {percent(r['near_hit_share'])}")
        if r.get("cache_errors"):
            notes.append(f"{r['cache_errors']} cache errors")
        if r.get("runs"):
            notes.append(f"mean of {r['runs']} runs (order off, on, on, off)")
        rows.append(
            [
                row.label,
                request,
                fmt(round(r["rps"])),
                fmt(ratio(r["rps"], yard, 3), 3) if row.shape != "patch" else "-",
                times(ratio(r["rps"], uncached)) if row.shape != "patch" else "-",
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                times(ratio(r["p99_ms"], r["p50_ms"])),
                fmt(r.get("redis_commands_per_request")),
                fmt(r.get("body_bytes")),
                fmt(r["non_2xx"]),
                fmt(r["socket_errors"]),
                percent(r.get("other_cpu")),
                ", ".join(notes),
            ]
        )
    headers = [
        "server",
        "request",
        "req/s",
        "×yardstick",
        "×uncached",
        "p50 ms",
        "p99 ms",
        "p99/p50",
        "Redis cmd/req",
        "body B",
        "non-2xx",
        "sock err",
        "other CPU",
        "notes",
    ]
    return table(headers, rows, right=set(range(2, 13)))


def hitpath_ratio_table(ratios: dict[str, Any]) -> str:
    hit = ratios.get("hit_vs_uncached_get_rps")
    target = ratios.get("hit_vs_uncached_target", HIT_VS_DATABASE_TARGET)
    verdict = "-" if hit is None else ("PASS" if hit >= target else "MISS")
    rows = [
        [
            "near hit / uncached PostgreSQL, GET by id, req/s",
            times(hit),
            f"≥ ×{target:g}  {verdict}",
        ],
        ["near cache on / off, GET by id, req/s", times(ratios.get("near_on_vs_off_ids_rps")), ""],
        [
            "near cache on / off, list pages, req/s",
            times(ratios.get("near_on_vs_off_pages_rps")),
            "",
        ],
        ["near cache on / off, hot id, req/s", times(ratios.get("near_on_vs_off_hot_rps")), ""],
        ["near cache off / on, GET by id, p50", times(ratios.get("near_off_vs_on_ids_p50")), ""],
        ["near cache off / on, list pages, p50", times(ratios.get("near_off_vs_on_pages_p50")), ""],
    ]
    rows += [
        [
            f"near cache on / {peer.label}, GET by id, req/s",
            times(ratios.get(f"near_on_vs_{peer.key}_rps")),
            "",
        ]
        for peer in PEERS
    ]
    rows += [
        ["PATCH near cache on / off, p50", times(ratios.get("patch_near_on_vs_off_p50")), ""],
        ["PATCH near cache on / off, p99", times(ratios.get("patch_near_on_vs_off_p99")), ""],
        [
            "noise: yardstick at the end / at the start, req/s",
            times(ratios.get("yardstick_drift_rps")),
            "",
        ],
    ]
    return table(["hit-path ratio", "value", "target"], rows, right={1})


def memory_lines(hit_path: dict[str, Any]) -> list[str]:
    memory = hit_path.get("memory")
    if not memory:
        return []
    rss = memory["rss_bytes"]

    def mib(value: int | None) -> str:
        return "-" if value is None else f"{value / MIB:.1f} MiB"

    near = memory.get("near") or {}
    lines = [
        "memory after the warm runs (RSS): "
        f"tales-api near cache on {mib(rss.get('near_on'))}, off {mib(rss.get('near_off'))} "
        f"(on/off {times(ratio(rss.get('near_on'), rss.get('near_off')))}); "
        + ", ".join(f"{peer.label} {mib(rss.get(peer.key))}" for peer in PEERS if peer.key in rss)
    ]
    if near.get("enabled"):
        lines.append(
            f"near cache (GET /cache/stats): {fmt(near['entries'])} entries, "
            f"{near['bytes'] / MIB:.2f} MiB of {near['max_bytes'] / MIB:.0f} MiB, "
            f"{fmt(near['evictions'])} evictions, {fmt(near['rejected'])} rejected, "
            f"serving {fmt(near['serving'])}"
        )
    return lines


def render_hitpath(results: dict[str, Any]) -> list[str]:
    hit_path = results.get("hit_path")
    if not hit_path:
        return []
    load = results.get("load", {})
    return [
        "",
        "hit path: same Redis, same data; every cached GET measured is a hit (each target read "
        "twice before); ×uncached = req/s over the cache-off (PostgreSQL) row of the same "
        "request, measured next to it; Redis cmd/req = commands Redis ran per request, those "
        "inside Lua scripts included",
        hitpath_table(load, hit_path),
        "",
        hitpath_ratio_table(results["ratios"].get("hit_path", {})),
        "",
        *memory_lines(hit_path),
    ]
