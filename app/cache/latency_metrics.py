"""The latency of hits and misses (`latency.py`) in `/metrics`, as the Prometheus histogram
`tales_cache_request_duration_seconds{entity, outcome}` (`outcome`: `hit` or `miss`).

**Read when scraped.** A collector copies the recorder's bucket counts and sums when
`/metrics` is asked: nothing is added to the request path (a near hit still records one
bucket increment and one float add, as `latency.py` describes), and there is no second
bookkeeping to drift from `/cache/stats`: its `hit_requests` and `miss_requests` are the
`_count` of the same buckets.

**Buckets: one per octave.** The recorder keeps 96 quarter-octave buckets; Prometheus gets
every `STEPS_PER_OCTAVE`-th bound, the powers of 2 from 10 µs (`le="1e-05"`, `"2e-05"`, …)
to 83.9 s, 24 bounds and `+Inf`: 25 bucket series per entity and outcome (150 for three
entities) instead of 97 each, which every scrape would store. The range is kept whole: a
near hit (microseconds), a Redis hit (under a millisecond) and a database load or a slow
dependency (milliseconds to seconds) each fall in their own buckets. The cost is precision:
`histogram_quantile` interpolates linearly inside a bucket, so its p99 is within a factor
of 2 of the truth, against about 19 % for the dashboard and `/cache/stats`, computed from
all 96 buckets. Enough to alert on an order of magnitude (`deploy/prometheus/alerts.yml`).

**Cumulative.** The recorder counts each bucket on its own (the observations above the
previous bound and at most its bound); a Prometheus bucket `le=b` counts every observation
at most `b`: the running total of the recorder's buckets up to `b`. `+Inf` is the total,
which is `_count`.

**`_sum`** is exact: the running sum of the seconds recorded (`LatencyBuckets.seconds`).
"""

from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from app.cache.latency import BOUNDS, STEPS_PER_OCTAVE, RequestLatency

NAME = "tales_cache_request_duration_seconds"
DESCRIPTION = (
    "Latency of GET requests under /api/v1/, by the entity of their first cache lookup and"
    " outcome: hit (near cache, or every lookup a Redis hit) or miss (any lookup missed)"
)
LABELS = ("entity", "outcome")
INFINITY = "+Inf"


def le_label(bound: float) -> str:
    """A bound as prometheus_client's own histograms write `le` (unannotated there)."""
    label: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return label


#: (index in `BOUNDS`, `le` label) of each exported bound: one per octave.
EXPORTED: tuple[tuple[int, str], ...] = tuple(
    (index, le_label(BOUNDS[index])) for index in range(0, len(BOUNDS), STEPS_PER_OCTAVE)
)


def cumulative_buckets(
    counts: Sequence[int], exported: Sequence[tuple[int, str]] = EXPORTED
) -> list[tuple[str, float]]:
    """Prometheus buckets `(le, observations at most le)` from per-bucket `counts` (one
    count per bound of `BOUNDS`, then one for the slower): those of `exported`, then
    `+Inf` (every observation)."""
    running = list(accumulate(counts))
    buckets: list[tuple[str, float]] = [(le, running[index]) for index, le in exported]
    buckets.append((INFINITY, running[-1] if running else 0))
    return buckets


class RequestLatencyCollector(Collector):
    """The hit and miss histograms of every entity in /metrics, read at scrape time."""

    def __init__(self, latency: RequestLatency) -> None:
        self.latency = latency

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(NAME, DESCRIPTION, labels=LABELS)
        outcomes = (("hit", self.latency.hits), ("miss", self.latency.misses))
        for entity in self.latency.hits:
            for outcome, histograms in outcomes:
                histogram = histograms[entity]
                buckets = cumulative_buckets(histogram.copy())
                family.add_metric([entity, outcome], buckets, histogram.seconds)
        yield family
