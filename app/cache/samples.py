"""The samples behind `/dashboard`: every `SAMPLE_INTERVAL_S` one sample of this process's
cache statistics goes into a ring buffer of `SAMPLE_CAPACITY` (five minutes), served as JSON
by `GET /cache/samples`.

A sample holds the cumulative counters of `/cache/stats` per entity (so the page derives the
rates from consecutive samples, and its last point is what `/cache/stats` said) and its
latency since the start (`latency_since_start`: p50/p99 of hits and of misses, as
`/cache/stats` says), the verifier's checked/stale counts and nines, the latency quantiles
of the interval per entity (`latency`: p50/p99 of hits and of misses from the counts
recorded since the previous sample, `latency.py`; and of the misses' database loads, from
their Prometheus histogram), the breaker state, the near cache's bytes, Redis `used_memory`,
and the number of keys under the prefix (counted by SCAN every `KEY_COUNT_EVERY` samples,
on a cluster over every primary, at most `MAX_KEY_COUNT_CALLS` rounds, so a large keyspace
costs a bounded amount). Percentiles are computed here, once a sample, never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

from app.cache.guard import FAILED
from app.cache.key_scan import KeyScan
from app.cache.keys import escape_glob
from app.cache.latency import QUANTILES, difference, percentile_ms, quantiles
from app.cache.service import CacheService
from app.cache.stats import database_load_seconds
from app.core.registry import Registry

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0
SAMPLE_CAPACITY = 300
KEY_COUNT_EVERY = 5
KEY_COUNT_BATCH = 1000
MAX_KEY_COUNT_CALLS = 100
#: The longest `close` waits for a sample in progress before cancelling it.
STOP_TIMEOUT_S = 5.0

Buckets = dict[str, list[tuple[float, float]]]  # group -> [(upper bound, cumulative count)]


def histogram_buckets(
    histogram: Histogram, group: Callable[[dict[str, str]], str | None]
) -> Buckets:
    """Cumulative bucket counts of `histogram`, summed per `group(labels)` (None: skipped)."""
    sums: dict[str, dict[float, float]] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_bucket"):
                continue
            name = group(sample.labels)
            if name is None:
                continue
            bound = float(sample.labels["le"])
            by_bound = sums.setdefault(name, {})
            by_bound[bound] = by_bound.get(bound, 0.0) + sample.value
    return {name: sorted(bounds.items()) for name, bounds in sums.items()}


def quantile_ms(
    previous: list[tuple[float, float]], current: list[tuple[float, float]], q: float
) -> float | None:
    """The `q` quantile of the observations between two snapshots of a Prometheus histogram's
    cumulative buckets, in ms (`latency.percentile_ms`; None: no observation)."""
    before = dict(previous)
    cumulative = [count - before.get(bound, 0.0) for bound, count in current]
    below = [0.0, *cumulative][: len(cumulative)]
    per_bucket = [now - less for now, less in zip(cumulative, below, strict=True)]
    bounds = tuple(bound for bound, _ in current if bound != float("inf"))
    return percentile_ms(per_bucket, q, bounds)


class Sampler:
    def __init__(
        self,
        cache: CacheService,
        registry: Registry,
        extra: Callable[[], dict[str, Any]],
        *,
        interval: float = SAMPLE_INTERVAL_S,
        capacity: int = SAMPLE_CAPACITY,
    ) -> None:
        self.cache = cache
        self.extra = extra  # the operations' snapshot (verifier, prefetch)
        self.interval = interval
        self.samples: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._paths = {spec.name: spec.path for spec in registry}
        self._previous_loads: Buckets = {}
        self._previous_requests: dict[str, dict[str, list[int]]] = {}
        self._keys: int | None = None
        self._count = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop between samples: a sample's Redis calls are not cancelled half-way (that
        could leave a pooled connection mid-reply while the pool closes)."""
        if self._task is not None:
            self._stopping.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.take()
            except Exception:  # one failed sample must not end the series
                logger.exception("cache sample failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def _latencies(self) -> dict[str, dict[str, float | None]]:
        """Per entity, this interval's p50/p99 of hits, of misses (`latency.py`) and of the
        misses' database loads."""
        requests = self.cache.stats.latency.counts()
        loads = histogram_buckets(database_load_seconds, lambda labels: labels.get("entity"))
        result: dict[str, dict[str, float | None]] = {}
        for entity in self._paths:
            values: dict[str, float | None] = {}
            before = self._previous_requests.get(entity, {})
            for kind, counts in requests.get(entity, {}).items():
                values.update(quantiles(difference(counts, before.get(kind)), kind))
            previous, now = self._previous_loads.get(entity, []), loads.get(entity, [])
            for q in QUANTILES:
                values[f"load_p{round(q * 100)}_ms"] = quantile_ms(previous, now, q)
            result[entity] = values
        self._previous_requests, self._previous_loads = requests, loads
        return result

    async def _redis_memory(self) -> int | None:
        result = await self.cache.guard.run(None, lambda redis: redis.info("memory"))
        if result is FAILED:
            return None
        used = result.get("used_memory")
        return int(used) if used is not None else None

    async def _count_keys(self) -> int | None:
        """The keys under the prefix: one full SCAN pass (on a cluster, over every primary),
        at most `MAX_KEY_COUNT_CALLS` rounds; None if Redis failed or the bound was hit."""
        scan = KeyScan(escape_glob(self.cache.prefix) + "*", KEY_COUNT_BATCH)
        total = 0
        for _ in range(MAX_KEY_COUNT_CALLS):
            batch = await scan.step(self.cache.guard, None)
            if batch is None:
                return None
            total += len(batch)
            if scan.done:
                return total
        return None  # too many to count within the bound

    async def take(self) -> dict[str, Any]:
        """Take one sample now and append it."""
        stats = self.cache.stats.snapshot()
        extra = self.extra()
        near = self.cache.near
        if self.cache.enabled and self._count % KEY_COUNT_EVERY == 0:
            self._keys = await self._count_keys()
        self._count += 1
        verifier = extra.get("verifier", {})
        sample = {
            "t": round(time.time(), 3),
            "entities": stats["entities"],
            "total": stats["total"],
            "latency": self._latencies(),
            "latency_since_start": stats["latency"],
            "verifier": {
                "checked": verifier.get("checked"),
                "stale": verifier.get("stale"),
                "nines": verifier.get("nines"),
                "entities": verifier.get("entities"),
            },
            "prefetch": extra.get("prefetch"),
            "breaker": self.cache.breaker_state(),
            "near_bytes": None if near is None else near.store.bytes,
            "redis_used_memory": await self._redis_memory() if self.cache.enabled else None,
            "redis_keys": self._keys,
        }
        self.samples.append(sample)
        return sample

    def snapshot(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval,
            "capacity": self.samples.maxlen,
            "samples": list(self.samples),
        }
