"""The samples behind the dashboard: `GET /cache/samples` holds what `/cache/stats` says,
the ring buffer is bounded, and a service without Redis still samples."""

import asyncio
import uuid
from collections import deque

from app.cache.latency import BUCKET_RATIO, LatencyBuckets, percentile_ms
from app.cache.samples import quantile_ms
from tests.api import payloads
from tests.api.helpers import url
from tests.near.conftest import near_copy
from tests.operator.conftest import OperatorApi
from tests.support.redis_server import RedisServer

SIGNAL_TIMEOUT = 10


async def test_a_sample_holds_the_statistics_of_the_moment(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        hero = await api.create("hero", payloads.hero())
        for _ in range(3):
            await api.http.get(url("hero", hero["id"]))
        sampler = api.app.state.operations.sampler

        sample = await sampler.take()
        stats = await api.stats()

        assert sample["entities"] == stats["entities"]
        assert sample["total"] == stats["total"]
        assert sample["latency_since_start"] == stats["latency"]
        assert set(sample["latency"]["hero"]) == {
            f"{kind}_p{q}_ms" for kind in ("hit", "miss", "load") for q in (50, 99)
        }
        assert sample["breaker"] == "closed"
        assert sample["redis_used_memory"] > 0
        assert sample["near_bytes"] == stats["near"]["bytes"]
        body = (await api.http.get("/cache/samples")).json()
        assert body["samples"][-1]["entities"] == stats["entities"]
        assert body["interval_s"] == 1.0


async def test_the_ring_buffer_keeps_the_last_samples(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        sampler = api.app.state.operations.sampler
        sampler.samples = deque(maxlen=3)
        taken = [await sampler.take() for _ in range(5)]
        assert list(sampler.samples) == taken[-3:]


async def test_keys_under_the_prefix_are_counted(
    operator_api: OperatorApi, clean_redis: RedisServer
) -> None:
    async with operator_api() as api:
        hero = await api.create("hero", payloads.hero())
        await api.entry("hero", hero["id"])
        clean_redis.client().set("another-service:key", b"x")  # not under the prefix
        under_prefix = list(clean_redis.client().scan_iter(match="tales:*"))

        counted = await api.app.state.operations.sampler._count_keys()

        assert counted == len(under_prefix) > 0


async def test_without_redis_the_service_still_samples(operator_api: OperatorApi) -> None:
    async with operator_api(redis_enabled=False) as api:
        async with asyncio.timeout(SIGNAL_TIMEOUT):
            while not (await api.http.get("/cache/samples")).json()["samples"]:
                await asyncio.sleep(0.05)
        sample = (await api.http.get("/cache/samples")).json()["samples"][-1]
        assert sample["breaker"] == "disabled"
        assert sample["redis_used_memory"] is None and sample["near_bytes"] is None
        stats = await api.stats()
        assert stats["verifier"]["enabled"] is False
        assert stats["prefetch"] == {"enabled": False}


def test_quantiles_from_histogram_buckets() -> None:
    before = [(0.001, 0.0), (0.01, 0.0), (0.1, 0.0), (float("inf"), 0.0)]
    after = [(0.001, 50.0), (0.01, 99.0), (0.1, 100.0), (float("inf"), 100.0)]
    assert quantile_ms(before, after, 0.5) == 1.0  # the 50th of 100 is in the first bucket
    assert quantile_ms(before, after, 0.99) == 10.0
    assert quantile_ms(after, after, 0.5) is None  # nothing observed in between


def test_the_samples_are_an_operator_route_like_the_dashboard() -> None:
    """With AUTH_ENABLED, the page and the JSON it polls need the same thing."""
    from app.api.access import ADMIN, required_scope

    for protect in (False, True):
        page = required_scope("GET", "/dashboard", protect)
        assert required_scope("GET", "/cache/samples", protect) == page
    assert required_scope("GET", "/cache/samples", False) is None
    assert required_scope("GET", "/cache/samples", True) == ADMIN
    assert required_scope("POST", "/cache/warm", False) == ADMIN


async def test_requests_are_timed_as_hits_or_misses(operator_api: OperatorApi) -> None:
    """A near hit and a Redis hit are hits; a request whose lookup missed is a miss (a load,
    a 404 after a lookup); a write and a request refused before any lookup are not timed.
    Lookups of background work (none here) would count in the counters only."""
    async with operator_api(cache_prefetch=False) as api:
        hero = await api.create("hero", payloads.hero())
        path = url("hero", hero["id"])
        assert (await api.stats())["latency"]["hero"]["hit_requests"] == 0  # a write: not timed

        await api.http.get(path)  # miss: database load
        await api.http.get(path)  # hit (Redis, or near)
        await near_copy(api.app, api.http, path)  # near hits (the first reads may be Redis's)
        assert (await api.http.get(url("hero", str(uuid.uuid4())))).status_code == 404  # miss
        assert (await api.http.get(url("hero", "not-an-id"))).status_code == 422  # no lookup
        await api.http.get(url("hero"))  # a list page: miss, then hit
        await api.http.get(url("hero"))

        stats = await api.stats()
        counters, latency = stats["entities"]["hero"], stats["latency"]["hero"]
        assert counters["near_hits"] >= 1
        assert latency["hit_requests"] == counters["hits"] >= 3
        assert latency["miss_requests"] == counters["misses"] == 3
        for kind in ("hit", "miss"):
            assert 0 < latency[f"{kind}_p50_ms"] <= latency[f"{kind}_p99_ms"]
        assert stats["latency"]["child"] == {
            "hit_requests": 0,
            "hit_p50_ms": None,
            "hit_p99_ms": None,
            "miss_requests": 0,
            "miss_p50_ms": None,
            "miss_p99_ms": None,
        }


def test_latency_percentiles_from_bucket_counts() -> None:
    """Recording is a bucket increment; a percentile is within one bucket of the truth."""
    buckets = LatencyBuckets()
    observed = [0.0001 * (i + 1) for i in range(1000)]  # 0.1 ms .. 100 ms
    for seconds in observed:
        buckets.record(seconds)
    assert sum(buckets.counts) == len(observed)
    for q, true_ms in ((0.5, 50.0), (0.99, 99.0)):
        found = percentile_ms(buckets.counts, q)
        assert found is not None
        assert true_ms / BUCKET_RATIO <= found <= true_ms * BUCKET_RATIO, (q, found)
    assert percentile_ms([0] * len(buckets.counts), 0.5) is None
    slowest = LatencyBuckets()
    slowest.record(3600.0)  # past the last bound: reported as that bound
    assert percentile_ms(slowest.counts, 0.99) is not None
