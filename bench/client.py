"""Small HTTP helpers the bench process itself uses (not load generation)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

COUNTERS = (
    "hits",
    "near_hits",
    "misses",
    "sets",
    "invalidations",
    "errors",
    "stampede_waits",
    "database_loads",
)


def get_json(url: str, timeout: float = 10.0) -> Any:
    response = httpx.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def cache_stats(base_url: str) -> dict[str, Any]:
    return get_json(f"{base_url}/cache/stats")


def delta(before: dict[str, Any], after: dict[str, Any], entity: str) -> dict[str, Any]:
    """Counter deltas of one entity between two `/cache/stats` snapshots, plus the hit rate."""
    old, new = before["entities"][entity], after["entities"][entity]
    result: dict[str, Any] = {name: new[name] - old[name] for name in COUNTERS}
    lookups = result["hits"] + result["misses"]
    result["hit_rate"] = round(result["hits"] / lookups, 4) if lookups else None
    return result


def collect_ids(base_url: str, path: str, headers: dict[str, str] | None = None) -> list[str]:
    """Every id of a collection, paging with limit=100."""
    ids: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as client:
        while True:
            response = client.get(path, params={"limit": 100, "offset": len(ids)})
            response.raise_for_status()
            page = response.json()
            ids += [item["id"] for item in page["items"]]
            if not page["items"] or len(ids) >= page["total"]:
                return ids


async def _fire(
    base_url: str, paths: list[str], concurrency: int
) -> tuple[Counter[int], int, float]:
    """GET every path, at most `concurrency` at once; (statuses, socket errors, seconds).

    The requests are created first and released together (an asyncio.Event), so a burst of
    `concurrency` requests reaches the server as close together as the client allows.
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    statuses: Counter[int] = Counter()
    errors = 0
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as http:
        gate = asyncio.Semaphore(concurrency)
        go = asyncio.Event()

        async def one(path: str) -> None:
            nonlocal errors
            await go.wait()
            async with gate:
                try:
                    statuses[(await http.get(path)).status_code] += 1
                except httpx.HTTPError:
                    errors += 1

        tasks = [asyncio.create_task(one(p)) for p in paths]
        await asyncio.sleep(0)  # every task is now waiting at the gate
        started = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        return statuses, errors, time.perf_counter() - started


def fire(base_url: str, paths: list[str], concurrency: int = 16) -> tuple[Counter[int], int, float]:
    return asyncio.run(_fire(base_url, paths, concurrency))


def non_2xx(statuses: Counter[int]) -> int:
    return sum(n for code, n in statuses.items() if not 200 <= code < 300)
