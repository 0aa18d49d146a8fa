"""Cache statistics per entity: one source for `/cache/stats` and the Prometheus metrics
(read by a collector, so they are counted once), the database load latency, and the
latency of hits and misses (`latency.py`)."""

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.cache.breaker import BreakerState
from app.cache.latency import RequestLatency
from app.core.metrics import LATENCY_BUCKETS, PROCESS_REGISTRY, per_entity_counters

database_load_seconds = Histogram(
    "tales_cache_database_load_seconds",
    "Database loads made on cache misses, by entity",
    ["entity"],
    buckets=LATENCY_BUCKETS,
    registry=PROCESS_REGISTRY,
)


@dataclass
class EntityStats:
    hits: int = 0  # near hits included
    near_hits: int = 0  # answered from this process's near cache
    misses: int = 0
    sets: int = 0
    invalidations: int = 0
    errors: int = 0
    stampede_waits: int = 0
    database_loads: int = 0

    def as_dict(self) -> dict[str, float]:
        result: dict[str, float] = dict(asdict(self))
        lookups = self.hits + self.misses
        result["hit_rate"] = round(self.hits / lookups, 4) if lookups else 0.0
        return result


COUNTERS = [f.name for f in fields(EntityStats)]


class CacheStats:
    def __init__(self, entities: list[str]) -> None:
        self.entities = {entity: EntityStats() for entity in entities}
        self.untagged_errors = 0  # generic operations (admin, health) not tied to an entity
        self.latency = RequestLatency(entities)

    def __getitem__(self, entity: str) -> EntityStats:
        return self.entities[entity]

    def snapshot(self) -> dict[str, object]:
        total = EntityStats(
            **{name: sum(getattr(s, name) for s in self.entities.values()) for name in COUNTERS}
        )
        total.errors += self.untagged_errors
        return {
            "entities": {entity: stats.as_dict() for entity, stats in self.entities.items()},
            "total": total.as_dict(),
            "latency": self.latency.snapshot(),
        }


class CacheStatsCollector(Collector):
    """Exposes CacheStats and the breaker state to Prometheus without double bookkeeping."""

    def __init__(self, stats: CacheStats, breaker_state: Callable[[], str]) -> None:
        self.stats = stats
        self.breaker_state = breaker_state

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield from per_entity_counters(
            lambda name: f"tales_cache_{name}",
            lambda name: f"Cache {name.replace('_', ' ')} per entity",
            COUNTERS,
            self.stats.entities,
        )
        state = GaugeMetricFamily(
            "tales_cache_breaker_state",
            "Redis circuit breaker state (1 = current)",
            labels=["state"],
        )
        current = self.breaker_state()
        for candidate in (*(state.value for state in BreakerState), "disabled"):
            state.add_metric([candidate], 1.0 if candidate == current else 0.0)
        yield state
