"""The latency of hits and of misses, per entity: what `/cache/stats` and `/dashboard` show as
p50/p99 of each.

**What is timed.** Every GET under `/api/v1/`, by the near cache's front (`near_front.py`,
in front of the whole stack, near cache on or off): from the moment the front receives the
request to the end of its answer (a near hit's time is the very value it observes in
`tales_http_request_duration_seconds`).

**How a request is classified**, by the cache lookups made on its behalf (the loader's
`read_through`, counted as in `/cache/stats`):

- a **hit**: answered from the near cache (a near hit), or every lookup was a Redis hit (an
  entry, a list page, or a delete marker: known absent);
- a **miss**: at least one lookup missed, whatever followed: a database load by this request,
  joining a load already running (single flight) or waiting for another process's fill (the
  lease), an early refresh (XFetch), or Redis unreachable (the database answers);
- **neither**: no lookup was made (a write, a 422 of a malformed id, a request refused
  before the repository). Lookups of background work (prefetching, warming) run
  outside any request and are not timed; they still count in the hit and miss counters.

The request is attributed to the entity of its first lookup.

**Cost.** Recording is one increment of a bucket of a fixed log-spaced histogram (a bisect
over `len(BOUNDS)` bounds) and one float add to the running sum of seconds (15 to 20 ns
more per record, best of 15 timeit runs of a million on the shared 2-core machine: 130 →
144 ns and 134 → 153 ns; a near hit takes about 5 µs): O(1), no list grows, nothing is
sorted per request. Percentiles are computed from the bucket counts when asked
(a sample, `/cache/stats`), linearly interpolated inside the bucket: within `BUCKET_RATIO`
(about 19 %) of the true value. `/metrics` reads the same counts and sum when scraped
(`latency_metrics.py`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

#: Bucket upper bounds in seconds: from 10 µs, each a quarter-octave above the last, to
#: past 60 s; a last bucket holds what is slower. Every `STEPS_PER_OCTAVE`-th bound is
#: exactly `FIRST_BOUND_S` times a power of 2 (10 µs, 20 µs, 40 µs, …): the bounds
#: `/metrics` exports, as short `le` labels.
FIRST_BOUND_S = 1e-5
STEPS_PER_OCTAVE = 4
BUCKET_RATIO = 2 ** (1 / STEPS_PER_OCTAVE)
BUCKETS = 96
BOUNDS: tuple[float, ...] = tuple(
    FIRST_BOUND_S * 2 ** (i / STEPS_PER_OCTAVE) for i in range(BUCKETS)
)
QUANTILES = (0.5, 0.99)
MS_PER_SECOND = 1000
KINDS = ("hit", "miss")


@dataclass(slots=True)
class Lookups:
    """What the cache lookups of one request found (filled in by the loader)."""

    entity: str | None = None
    missed: bool = False


LOOKUPS: ContextVar[Lookups | None] = ContextVar("cache_lookups", default=None)


def looked_up(entity: str, missed: bool) -> None:
    """Called by the loader for each lookup: marks the request being served, if any."""
    lookups = LOOKUPS.get()
    if lookups is not None:
        if lookups.entity is None:
            lookups.entity = entity
        if missed:
            lookups.missed = True


class LatencyBuckets:
    """Counts of observations per bucket of `BOUNDS` (the last: slower than every bound),
    and the sum of the seconds observed (Prometheus's `_sum`)."""

    __slots__ = ("counts", "seconds")

    def __init__(self) -> None:
        self.counts = [0] * (BUCKETS + 1)
        self.seconds = 0.0

    def record(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.seconds += seconds

    def copy(self) -> list[int]:
        return list(self.counts)


def percentile_ms(
    counts: Sequence[float], q: float, bounds: tuple[float, ...] = BOUNDS
) -> float | None:
    """The `q` quantile of the observations counted per bucket (`counts[i]`: those at most
    `bounds[i]` and above the previous bound; one more count past the last bound), in ms,
    linearly interpolated inside its bucket; None without observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0.0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            lower = bounds[index - 1] if index else 0.0
            if index == len(bounds):  # slower than every bound: its lower bound
                return round(lower * MS_PER_SECOND, 3)
            share = (rank - below) / count
            return round((lower + (bounds[index] - lower) * share) * MS_PER_SECOND, 3)
        below += count
    return None


def quantiles(counts: list[int], kind: str) -> dict[str, float | None]:
    """{`kind`_p50_ms, `kind`_p99_ms} of these counts."""
    return {f"{kind}_p{round(q * 100)}_ms": percentile_ms(counts, q) for q in QUANTILES}


def difference(now: list[int], before: list[int] | None) -> list[int]:
    """The observations counted between two copies of one histogram's counts."""
    if before is None:
        return now
    return [a - b for a, b in zip(now, before, strict=True)]


class RequestLatency:
    """The hit and miss histograms of every entity, for the lifetime of the process."""

    def __init__(self, entities: list[str]) -> None:
        self.hits = {entity: LatencyBuckets() for entity in entities}
        self.misses = {entity: LatencyBuckets() for entity in entities}

    def record(self, lookups: Lookups, seconds: float) -> None:
        """A request served through the full path (a near hit records into `hits` itself)."""
        if lookups.entity is None:
            return
        (self.misses if lookups.missed else self.hits)[lookups.entity].record(seconds)

    def counts(self) -> dict[str, dict[str, list[int]]]:
        """A copy of every histogram's counts: {entity: {"hit": [...], "miss": [...]}}."""
        return {
            entity: {"hit": self.hits[entity].copy(), "miss": self.misses[entity].copy()}
            for entity in self.hits
        }

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """Since the start, per entity: requests classified and p50/p99 of hits and misses."""
        return {entity: summary(kinds) for entity, kinds in self.counts().items()}


def summary(kinds: dict[str, list[int]]) -> dict[str, float | int | None]:
    """Per kind (hit, miss): the number of requests and their p50/p99 in ms."""
    result: dict[str, float | int | None] = {}
    for kind in KINDS:
        result[f"{kind}_requests"] = sum(kinds[kind])
        result.update(quantiles(kinds[kind], kind))
    return result
