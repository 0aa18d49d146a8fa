"""`make bench-operator`: what warming and prefetching buy, measured in one run.

    python -m bench.operator [--seconds 10] [--warm-limit 100] [--concurrency 8]

Setup as `python -m bench`: a fresh seeded PostgreSQL database, a throwaway redis-server, and
two servers started as `make run` starts them (`python -m app serve`, one worker each): one
with the defaults (prefetch on) and one with `CACHE_PREFETCH=false` under its own key prefix.

Rows:

- **after a flush, without warming:** `DELETE /cache`, then `--seconds` of reads (GET by id of
  heroes, children and stories, Zipf s=1.1 over the ids ordered most recent first, and the
  first list page of each entity one read in ten), `--concurrency` at a time; the hit rate is
  from `/cache/stats` deltas over the window, and per second.
- **after a flush, with warming:** the same, after `POST /cache/warm` of each entity with
  `--warm-limit` (the warm's own reads are before the window).
- **prefetch on / off:** for `--children` children never read before (cache flushed), each
  flow reads the child by id, waits `--think-ms`, then reads `GET /stories?child_id=…` (the
  page the prefetch brings in); the story page's hit rate and latency, per server.

Results printed and written to `bench/results/operator.json`; logs in
`bench/results/logs-operator/`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import statistics
import sys
import time
from typing import Any

from bench.config import PATHS, RESULTS_DIR, ROOT, BenchConfig

if str(ROOT) not in sys.path:  # `tests.support` and `app` are imported from the repo root
    sys.path.insert(0, str(ROOT))

import httpx

from bench import client
from bench.session import seeded_session
from tests.support import postgres_available

OUTPUT = RESULTS_DIR / "operator.json"
ADMIN_TOKEN = secrets.token_urlsafe(16)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ZIPF_S = 1.1
LIST_SHARE = 0.1
SEED = 20240601


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="window after the flush")
    parser.add_argument("--warm-limit", type=int, default=100, help="rows warmed per entity")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--children", type=int, default=150, help="flows of the prefetch rows")
    parser.add_argument("--think-ms", type=float, default=200.0, help="child read → stories read")
    parser.add_argument("--heroes", type=int, default=BenchConfig.heroes)
    parser.add_argument("--children-rows", type=int, default=BenchConfig.children)
    parser.add_argument("--stories", type=int, default=BenchConfig.stories)
    return parser.parse_args(argv)


def zipf_weights(n: int) -> list[float]:
    return [1 / (rank**ZIPF_S) for rank in range(1, n + 1)]


def lookups(stats: dict[str, Any]) -> tuple[int, int]:
    total = stats["total"]
    return int(total["hits"]), int(total["misses"])


async def read_window(
    base: str, ids: dict[str, list[str]], seconds: float, concurrency: int
) -> dict[str, Any]:
    """Reads for `seconds`; hit rate over the window and per second, from /cache/stats."""
    rng = random.Random(SEED)
    weights = {entity: zipf_weights(len(values)) for entity, values in ids.items()}
    entities = list(ids)
    per_second: list[float | None] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        start_stats = (await http.get("/cache/stats")).json()
        started = time.monotonic()
        stop = started + seconds
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                entity = rng.choice(entities)
                if rng.random() < LIST_SHARE:
                    path = PATHS[entity]
                else:
                    (entity_id,) = rng.choices(ids[entity], weights[entity])
                    path = f"{PATHS[entity]}/{entity_id}"
                response = await http.get(path)
                errors += response.status_code != 200

        async def sampler() -> None:
            previous = lookups(start_stats)
            while time.monotonic() < stop:
                await asyncio.sleep(1.0)
                now = lookups((await http.get("/cache/stats")).json())
                hits, misses = now[0] - previous[0], now[1] - previous[1]
                per_second.append(round(hits / (hits + misses), 4) if hits + misses else None)
                previous = now

        await asyncio.gather(sampler(), *(worker() for _ in range(concurrency)))
        end_stats = (await http.get("/cache/stats")).json()
    (h0, m0), (h1, m1) = lookups(start_stats), lookups(end_stats)
    hits, misses = h1 - h0, m1 - m0
    return {
        "reads": hits + misses,
        "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "hit_rate_per_second": per_second,
        "non_200": errors,
    }


async def flush(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        response = await http.delete("/cache", headers=AUTH)
        response.raise_for_status()


async def warm(base: str, limit: int) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        for collection in ("heroes", "children", "stories"):
            response = await http.post(
                "/cache/warm", json={"entity": collection, "limit": limit}, headers=AUTH
            )
            response.raise_for_status()
    return time.monotonic() - started


async def prefetch_flows(
    base: str, children: list[str], think_ms: float, concurrency: int
) -> dict[str, Any]:
    """Child by id, a pause, its first stories page: the page's hit rate and latency."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for child_id in children:
        queue.put_nowait(child_id)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        before = (await http.get("/cache/stats")).json()["entities"]["story"]

        async def worker() -> None:
            while not queue.empty():
                child_id = queue.get_nowait()
                (await http.get(f"{PATHS['child']}/{child_id}")).raise_for_status()
                await asyncio.sleep(think_ms / 1000)
                started = time.perf_counter()
                response = await http.get(PATHS["story"], params={"child_id": child_id})
                latencies.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await asyncio.sleep(1.0)  # prefetches still running finish before the stats
        after = (await http.get("/cache/stats")).json()
    stories = after["entities"]["story"]
    hits, misses = stories["hits"] - before["hits"], stories["misses"] - before["misses"]
    latencies.sort()
    return {
        "flows": len(children),
        "story_page_hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "story_page_p50_ms": round(statistics.median(latencies), 2),
        "story_page_p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        "story_database_loads": after["entities"]["story"]["database_loads"],
        "prefetch": after.get("prefetch"),
    }


def report(results: dict[str, Any]) -> str:
    cold, warmed = results["after_flush"]["without_warming"], results["after_flush"]["with_warming"]
    on, off = results["prefetch"]["on"], results["prefetch"]["off"]
    lines = [
        f"tales-api operator bench — {results['when']}",
        f"data: {results['data']}",
        "",
        f"{'row':<44} {'hit rate':>9} {'reads':>7}  per second",
        f"{'-' * 44} {'-' * 9} {'-' * 7}  {'-' * 10}",
    ]
    for label, row in (
        (f"{results['seconds']:.0f} s after a flush, without warming", cold),
        (f"{results['seconds']:.0f} s after a flush, with warming", warmed),
    ):
        per_second = " ".join("-" if v is None else f"{v:.2f}" for v in row["hit_rate_per_second"])
        lines.append(f"{label:<44} {row['hit_rate']:>9.2%} {row['reads']:>7}  {per_second}")
    lines.append(
        f"warming: {results['warm_limit']} rows per entity + first pages in "
        f"{results['warm_seconds']:.2f} s"
    )
    lines += [
        "",
        f"{'stories page after reading the child':<44} {'hit rate':>9} {'p50 ms':>8} {'p99 ms':>8}",
        f"{'-' * 44} {'-' * 9} {'-' * 8} {'-' * 8}",
    ]
    for label, row in (("prefetch on (CACHE_PREFETCH=true)", on), ("prefetch off", off)):
        lines.append(
            f"{label:<44} {row['story_page_hit_rate']:>9.2%} "
            f"{row['story_page_p50_ms']:>8.2f} {row['story_page_p99_ms']:>8.2f}"
        )
    warm_ratio = (warmed["hit_rate"] or 0) / max(cold["hit_rate"] or 0, 1e-9)
    p50_ratio = off["story_page_p50_ms"] / on["story_page_p50_ms"]
    lines.append(
        f"ratios: hit rate with / without warming ×{warm_ratio:.2f}; "
        f"stories page p50 prefetch off / on ×{p50_ratio:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = BenchConfig(heroes=args.heroes, children=args.children_rows, stories=args.stories)
    if not postgres_available():
        print("PostgreSQL is not answering (scripts/ensure-test-services.sh starts it)")
        return 1
    with seeded_session("operator", cfg) as session:
        server = session.procs.serve_app(
            "app-prefetch-on", session.database_url, session.redis.url, admin_token=ADMIN_TOKEN
        )
        no_prefetch = session.procs.serve_app(
            "app-prefetch-off",
            session.database_url,
            session.redis.url,
            admin_token=ADMIN_TOKEN,
            cache_prefetch="false",
            cache_key_prefix="tales-noprefetch:",
        )
        ids = {entity: client.collect_ids(server.url, path) for entity, path in PATHS.items()}
        results: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": f"{cfg.heroes} heroes, {cfg.children} children, {cfg.stories} stories",
            "seconds": args.seconds,
            "warm_limit": args.warm_limit,
            "after_flush": {},
        }
        print("== after a flush, without warming", flush=True)
        asyncio.run(flush(server.url))
        results["after_flush"]["without_warming"] = asyncio.run(
            read_window(server.url, ids, args.seconds, args.concurrency)
        )
        print("== after a flush, with warming", flush=True)
        asyncio.run(flush(server.url))
        results["warm_seconds"] = asyncio.run(warm(server.url, args.warm_limit))
        results["after_flush"]["with_warming"] = asyncio.run(
            read_window(server.url, ids, args.seconds, args.concurrency)
        )
        print("== prefetch on / off", flush=True)
        flows = random.Random(SEED).sample(ids["child"], min(args.children, len(ids["child"])))
        results["prefetch"] = {}
        for label, target in (("off", no_prefetch), ("on", server)):
            asyncio.run(flush(target.url))
            results["prefetch"][label] = asyncio.run(
                prefetch_flows(target.url, flows, args.think_ms, args.concurrency)
            )
        text = report(results)
        print("\n" + text)
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(json.dumps({**results, "report": text}, indent=2))
        print(f"\nwritten {OUTPUT}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
