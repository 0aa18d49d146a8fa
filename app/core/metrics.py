"""The process's Prometheus registry and the latency buckets its histograms share."""

from prometheus_client import CollectorRegistry

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
