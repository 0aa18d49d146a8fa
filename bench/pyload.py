"""Python load generator (asyncio + httpx), run in its own process by the bench:

    python -m bench.pyload fixed CONFIG.json   # wrk stand-in: cycle over paths, fixed time
    python -m bench.pyload mixed CONFIG.json   # Zipf reads + a write share per entity

Prints one JSON document on stdout. `mixed` reads `/cache/stats` between its warm-up and
measured phases and at the end, so the parent can compute hit rates of the measured phase.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(latencies: list[float]) -> dict[str, float]:
    """Latency summary in milliseconds."""
    values = sorted(latencies)
    ms = 1000.0
    return {
        "p50_ms": round(percentile(values, 50) * ms, 3),
        "p90_ms": round(percentile(values, 90) * ms, 3),
        "p99_ms": round(percentile(values, 99) * ms, 3),
        "max_ms": round((values[-1] if values else 0.0) * ms, 3),
        "mean_ms": round((sum(values) / len(values) if values else 0.0) * ms, 3),
    }


def _client(base_url: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0)


# -- fixed: the wrk stand-in ------------------------------------------------------------------
async def fixed(cfg: dict[str, Any]) -> dict[str, Any]:
    """GET the paths in turn; with `patch_field`, PATCH them, setting that field anew."""
    paths = itertools.cycle(cfg["paths"])
    connections = int(cfg["connections"])
    patch_field: str | None = cfg.get("patch_field")
    writes = itertools.count(1)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    socket_errors = 0

    async with _client(cfg["base_url"], connections) as client:
        client.headers.update(cfg.get("headers") or {})

        async def worker(deadline: float) -> None:
            nonlocal socket_errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    if patch_field is None:
                        response = await client.get(next(paths))
                    else:
                        value = f"bench write {next(writes)}"
                        response = await client.patch(next(paths), json={patch_field: value})
                except httpx.HTTPError:
                    socket_errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1

        started = time.perf_counter()
        deadline = started + float(cfg["duration"])
        await asyncio.gather(*(worker(deadline) for _ in range(connections)))
        seconds = time.perf_counter() - started

    return {
        "requests": len(latencies),
        "seconds": round(seconds, 3),
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300),
        "socket_errors": socket_errors,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        **summarize(latencies),
    }


# -- mixed: Zipf reads, a write share per entity ----------------------------------------------
class Zipf:
    """Ranks 1..n with P(k) ~ 1/k^s, mapped onto a shuffled id order (hot ids are random)."""

    def __init__(self, ids: list[str], s: float, rng: random.Random) -> None:
        self.ids = list(ids)
        rng.shuffle(self.ids)
        self.cumulative = list(itertools.accumulate(1.0 / k**s for k in range(1, len(ids) + 1)))
        self.rng = rng

    def pick(self) -> str:
        index = bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])
        return self.ids[min(index, len(self.ids) - 1)]


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.statuses: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
        self.socket_errors: Counter[str] = Counter()
        self.samples: dict[str, str] = {}  # "entity kind status" -> first response body

    def add(self, entity: str, kind: str, seconds: float, response: httpx.Response) -> None:
        self.latency[(entity, kind)].append(seconds)
        self.statuses[(entity, kind)][response.status_code] += 1
        if not 200 <= response.status_code < 300:
            sample = f"{response.request.method} {entity} {response.status_code}"
            self.samples.setdefault(sample, response.text[:300])

    def report(self, seconds: float) -> dict[str, Any]:
        entities: dict[str, Any] = {}
        for (entity, kind), values in sorted(self.latency.items()):
            statuses = self.statuses[(entity, kind)]
            entities.setdefault(entity, {})[kind] = {
                "requests": len(values),
                "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300),
                "statuses": {str(code): n for code, n in sorted(statuses.items())},
                **summarize(values),
            }
        for entity, errors in self.socket_errors.items():
            entities.setdefault(entity, {})["socket_errors"] = errors
        total = sum(len(v) for v in self.latency.values())
        return {
            "requests": total,
            "seconds": round(seconds, 3),
            "rps": round(total / seconds, 1) if seconds else 0.0,
            "entities": entities,
            "non_2xx_samples": self.samples,
        }


async def mixed(cfg: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(cfg["seed"])
    entities = cfg["entities"]  # name -> {path, ids, write_share, field}
    names = sorted(entities)
    zipf = {name: Zipf(entities[name]["ids"], float(cfg["zipf_s"]), rng) for name in names}
    concurrency = int(cfg["concurrency"])
    writes = itertools.count(1)

    async with _client(cfg["base_url"], concurrency + 1) as client:

        async def worker(deadline: float, recorder: Recorder | None) -> None:
            while time.perf_counter() < deadline:
                name = rng.choice(names)
                spec = entities[name]
                path = f"{spec['path']}/{zipf[name].pick()}"
                write = rng.random() < spec["write_share"]
                started = time.perf_counter()
                try:
                    if write:
                        body = {spec["field"]: f"Bench {name} {next(writes)}"}
                        response = await client.patch(path, json=body)
                    else:
                        response = await client.get(path)
                except httpx.HTTPError:
                    if recorder is not None:
                        recorder.socket_errors[name] += 1
                    continue
                if recorder is not None:
                    kind = "write" if write else "read"
                    recorder.add(name, kind, time.perf_counter() - started, response)

        async def phase(seconds: float, recorder: Recorder | None) -> float:
            started = time.perf_counter()
            deadline = started + seconds
            await asyncio.gather(*(worker(deadline, recorder) for _ in range(concurrency)))
            return time.perf_counter() - started

        if cfg["warmup"] > 0:
            await phase(float(cfg["warmup"]), None)
        before = (await client.get("/cache/stats")).json()
        recorder = Recorder()
        seconds = await phase(float(cfg["duration"]), recorder)
        after = (await client.get("/cache/stats")).json()

    return {**recorder.report(seconds), "stats_before": before, "stats_after": after}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("fixed", "mixed"):
        print("usage: python -m bench.pyload fixed|mixed CONFIG.json", file=sys.stderr)
        return 2
    cfg = json.loads(Path(argv[1]).read_text())
    runner = fixed if argv[0] == "fixed" else mixed
    try:
        import uvloop  # uvicorn[standard] brings it: a faster client loop when present
    except ImportError:
        result = asyncio.run(runner(cfg))
    else:
        result = uvloop.run(runner(cfg))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
