"""The process's Prometheus registry, the latency buckets its histograms share, and the one
shape of the app's per-entity counters in `/metrics`."""

from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def per_entity_counters(
    metric: Callable[[str], str],
    description: Callable[[str], str],
    names: Iterable[str],
    counts: Mapping[str, object],
) -> Iterator[CounterMetricFamily]:
    """One counter family per name in `names`, labelled by entity: the value of entity `e` is
    the attribute `name` of `counts[e]` (a dataclass of counters)."""
    for name in names:
        family = CounterMetricFamily(metric(name), description(name), labels=["entity"])
        for entity, entity_counts in counts.items():
            family.add_metric([entity], getattr(entity_counts, name))
        yield family
