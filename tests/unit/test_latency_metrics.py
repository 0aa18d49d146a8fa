"""The hit and miss latency histograms as Prometheus buckets (`app/cache/latency_metrics.py`):
per-bucket counts turned cumulative at one bound per octave, `+Inf` the total, `_sum` exact
(the same conversion the integration test in tests/observability reads over HTTP)."""

import math

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.cache.latency import BOUNDS, LatencyBuckets, Lookups, RequestLatency
from app.cache.latency_metrics import NAME, RequestLatencyCollector, cumulative_buckets

OCTAVES = 24
SLOWER_THAN_EVERY_BOUND = 3600.0


def test_the_buckets_are_cumulative_at_one_bound_per_octave() -> None:
    observed = [0.00001, 0.000015, 0.00002, 0.00042, 0.0007, 0.003, 0.003, 1.5]
    observed += [BOUNDS[8], BOUNDS[9], SLOWER_THAN_EVERY_BOUND]  # on a bound, just past one
    histogram = LatencyBuckets()
    for seconds in observed:
        histogram.record(seconds)

    buckets = cumulative_buckets(histogram.copy())

    labels = [le for le, _ in buckets]
    assert labels[:4] == ["1e-05", "2e-05", "4e-05", "8e-05"]
    assert labels[-2:] == ["83.88608", "+Inf"]
    assert len(buckets) == OCTAVES + 1
    bounds = [float(le) for le in labels]
    assert bounds == sorted(set(bounds))
    assert bounds[:-1] == list(BOUNDS[::4])  # each label is exactly a recorder's bound
    for bound, count in buckets:  # le is inclusive: a bucket counts what is at most its bound
        assert count == sum(1 for seconds in observed if seconds <= float(bound)), bound
    counts = [count for _, count in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == len(observed)
    assert math.isclose(histogram.seconds, math.fsum(observed))


def test_no_observation_is_a_histogram_of_zeros() -> None:
    empty = LatencyBuckets()
    buckets = cumulative_buckets(empty.copy())
    assert len(buckets) == OCTAVES + 1 and buckets[-1] == ("+Inf", 0)
    assert {count for _, count in buckets} == {0}
    assert empty.seconds == 0.0


def test_the_collector_exposes_every_entity_and_outcome() -> None:
    latency = RequestLatency(["hero", "child"])
    latency.hits["hero"].record(0.0003)  # a near hit records straight into `hits`
    latency.record(Lookups(entity="hero"), 0.0009)  # every lookup a Redis hit
    latency.record(Lookups(entity="hero", missed=True), 0.02)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RequestLatencyCollector(latency))

    (family,) = text_string_to_metric_families(generate_latest(registry).decode())

    assert (family.name, family.type) == (NAME, "histogram")
    values = {
        (
            sample.name,
            sample.labels["entity"],
            sample.labels["outcome"],
            sample.labels.get("le"),
        ): sample.value
        for sample in family.samples
    }
    assert {(entity, outcome) for _, entity, outcome, _ in values} == {
        (entity, outcome) for entity in ("hero", "child") for outcome in ("hit", "miss")
    }
    assert values[(f"{NAME}_count", "hero", "hit", None)] == 2
    assert values[(f"{NAME}_bucket", "hero", "hit", "+Inf")] == 2
    assert values[(f"{NAME}_bucket", "hero", "hit", "0.00064")] == 1
    assert values[(f"{NAME}_bucket", "hero", "hit", "0.00128")] == 2
    assert math.isclose(values[(f"{NAME}_sum", "hero", "hit", None)], 0.0012)
    assert values[(f"{NAME}_count", "hero", "miss", None)] == 1
    assert values[(f"{NAME}_bucket", "hero", "miss", "0.01024")] == 0
    assert values[(f"{NAME}_bucket", "hero", "miss", "0.02048")] == 1
    assert values[(f"{NAME}_count", "child", "miss", None)] == 0
    assert values[(f"{NAME}_sum", "child", "miss", None)] == 0
