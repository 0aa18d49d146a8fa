"""GET /metrics: Prometheus text with HTTP, cache, breaker and database-load metrics.

HTTP and database-load metrics are process-wide (they keep counting across the app
instances of this test run), so those are checked as differences around the traffic; the
cache counters belong to one app and must equal its /cache/stats."""

import asyncio
import math
import uuid

import httpx
import pytest

from app.cache.latency_metrics import NAME as REQUEST_SECONDS
from app.cache.stats import COUNTERS
from tests.near.conftest import near_copy
from tests.observability.conftest import Scrape, scrape
from tests.stampede.helpers import HERO, HEROES, LoadGate, lookups
from tests.support.redis_server import RedisServer

HERO_ROUTE = "/api/v1/heroes/{entity_id}"
CHILD = {"name": "Mila", "age": 5, "gender": "female"}
ENTITIES = ("hero", "child", "story")


async def create_hero(client: httpx.AsyncClient) -> str:
    response = await client.post(HEROES, json=HERO)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_metrics_are_prometheus_text_with_one_family_per_metric(
    cached_instance, own_redis
) -> None:
    async with cached_instance(own_redis.url) as (_app, client):
        await client.get("/health")
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    metrics = Scrape(response.text)
    types = {family.name: family.type for family in metrics.families}
    assert len(types) == len(metrics.families)  # no family is exposed twice
    expected = {
        "tales_http_requests": "counter",
        "tales_http_request_duration_seconds": "histogram",
        "tales_cache_database_load_seconds": "histogram",
        "tales_cache_breaker_state": "gauge",
        REQUEST_SECONDS: "histogram",
        **{f"tales_cache_{name}": "counter" for name in COUNTERS},
    }
    assert {name: types.get(name) for name in expected} == expected


async def test_requests_are_counted_and_timed_per_route_template_and_status(
    cached_instance, own_redis
) -> None:
    async with cached_instance(own_redis.url) as (_app, client):
        hero_id = await create_hero(client)
        before = await scrape(client)
        for _ in range(3):
            assert (await client.get(f"{HEROES}/{hero_id}")).status_code == 200
        for _ in range(2):
            assert (await client.get(f"{HEROES}/{uuid.uuid4()}")).status_code == 404
        assert (await client.get(f"{HEROES}/not-a-uuid")).status_code == 422
        assert (await client.get("/no/such/path")).status_code == 404
        after = await scrape(client)

    def requests(status: str, route: str = HERO_ROUTE) -> float:
        labels = {"route": route, "method": "GET", "status": status}
        return after.value("tales_http_requests_total", **labels) - before.value(
            "tales_http_requests_total", **labels
        )

    assert (requests("200"), requests("404"), requests("422")) == (3, 2, 1)
    assert requests("404", route="unmatched") == 1
    assert not any(  # ids never become label values: only the template does
        hero_id in str(labels) for _name, labels in after.samples
    )

    name = "tales_http_request_duration_seconds"

    def timed(status: str) -> float:
        labels = {"route": HERO_ROUTE, "method": "GET", "status": status}
        return after.value(f"{name}_count", **labels) - before.value(f"{name}_count", **labels)

    assert (timed("200"), timed("404"), timed("422")) == (3, 2, 1)
    timing = {"route": HERO_ROUTE, "method": "GET", "status": "200"}
    assert after.value(f"{name}_sum", **timing) > before.value(f"{name}_sum", **timing)
    assert after.value(f"{name}_bucket", **timing, le="+Inf") == after.value(
        f"{name}_count", **timing
    )


def assert_cache_counters_match(metrics: Scrape, stats: dict) -> None:
    exposed = {
        entity: {
            name: metrics.value(f"tales_cache_{name}_total", entity=entity) for name in COUNTERS
        }
        for entity in ENTITIES
    }
    reported = {
        entity: {name: stats["entities"][entity][name] for name in COUNTERS} for entity in ENTITIES
    }
    assert exposed == reported


async def test_cache_counters_per_entity_equal_cache_stats(
    cached_instance, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = LoadGate().install(monkeypatch)
    async with cached_instance(own_redis.url) as (app, client):
        hero_id = await create_hero(client)
        hero = f"{HEROES}/{hero_id}"
        gate.hold_until(lambda: lookups(app) >= 5)  # concurrent cold reads overlap
        await asyncio.gather(*(client.get(hero) for _ in range(5)))  # 1 load, 4 waits
        gate.hold_until(lambda: True)
        await client.get(hero)  # hit
        await client.patch(hero, json={"age": 8})  # invalidation
        await client.get(f"{HEROES}/{uuid.uuid4()}")  # miss, load, nothing stored
        child = await client.post("/api/v1/children", json=CHILD)
        await client.get(f"/api/v1/children/{child.json()['id']}")
        await client.get("/api/v1/stories", params={"language": "en"})

        stats = (await client.get("/cache/stats")).json()
        metrics = await scrape(client)
        assert_cache_counters_match(metrics, stats)
        counted = stats["entities"]["hero"]
        # near hits are counted by tests/near (this instance may not be in step with Redis yet)
        occurred = [name for name in COUNTERS if name not in ("errors", "near_hits")]
        assert all(counted[name] > 0 for name in occurred), counted
        assert counted["stampede_waits"] >= 4
        assert metrics.value("tales_cache_breaker_state", state="closed") == 1

        own_redis.kill()
        await client.get(hero)
        await client.get("/api/v1/children", params={"name": "Mila"})
        stats = (await client.get("/cache/stats")).json()
        metrics = await scrape(client)
        assert_cache_counters_match(metrics, stats)
        assert stats["entities"]["hero"]["errors"] > 0
        assert stats["entities"]["child"]["errors"] > 0


async def test_database_loads_are_timed_per_entity(cached_instance, own_redis) -> None:
    name = "tales_cache_database_load_seconds"
    async with cached_instance(own_redis.url) as (_app, client):
        hero_id = await create_hero(client)
        before = await scrape(client)
        await client.get(f"{HEROES}/{hero_id}")  # load
        await client.get(f"{HEROES}/{hero_id}")  # hit
        await client.get(f"{HEROES}/{uuid.uuid4()}")  # load of nothing
        await client.get("/api/v1/children", params={"age": 5})  # load
        stats = (await client.get("/cache/stats")).json()["entities"]
        after = await scrape(client)

    for entity, loads in (("hero", 2), ("child", 1), ("story", 0)):
        assert stats[entity]["database_loads"] == loads
        count = after.value(f"{name}_count", entity=entity)
        assert count - before.value(f"{name}_count", entity=entity) == loads
        assert after.value(f"{name}_bucket", entity=entity, le="+Inf") == count
    elapsed = after.value(f"{name}_sum", entity="hero") - before.value(f"{name}_sum", entity="hero")
    assert 0 < elapsed < 5 and not math.isnan(elapsed)


async def test_hit_and_miss_latency_is_a_histogram_per_entity_and_outcome(
    cached_instance, own_redis
) -> None:
    """The buckets behind `/cache/stats`'s `latency`, read when scraped: one `_count` per
    request timed, cumulative buckets, `+Inf` equal to `_count`, `_sum` within the buckets."""
    near_hits = 3
    async with cached_instance(own_redis.url) as (app, client):
        hero_id = await create_hero(client)
        hero = f"{HEROES}/{hero_id}"
        assert (await client.get(hero)).status_code == 200  # miss: database load
        for _ in range(near_hits):  # the first reads may be Redis hits that fill the near cache
            await near_copy(app, client, hero)
        for _ in range(2):
            assert (await client.get(f"{HEROES}/{uuid.uuid4()}")).status_code == 404  # misses
        stats = (await client.get("/cache/stats")).json()
        metrics = await scrape(client)

    family = metrics.family(REQUEST_SECONDS)
    assert family.type == "histogram"
    series = {(s.labels["entity"], s.labels["outcome"]) for s in family.samples}
    assert series == {(entity, outcome) for entity in ENTITIES for outcome in ("hit", "miss")}
    latency, counters = stats["latency"]["hero"], stats["entities"]["hero"]
    hits = metrics.value(f"{REQUEST_SECONDS}_count", entity="hero", outcome="hit")
    assert hits == latency["hit_requests"] == counters["hits"]
    assert hits >= counters["near_hits"] >= near_hits
    misses = metrics.value(f"{REQUEST_SECONDS}_count", entity="hero", outcome="miss")
    assert misses == latency["miss_requests"] == counters["misses"] == 3
    for entity, outcome in series:
        labels = {"entity": entity, "outcome": outcome}
        buckets = sorted(
            (float(s.labels["le"]), s.value)
            for s in family.samples
            if s.name == f"{REQUEST_SECONDS}_bucket"
            and (s.labels["entity"], s.labels["outcome"]) == (entity, outcome)
        )
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), (entity, outcome)  # cumulative: never decreasing
        assert buckets[-1] == (math.inf, metrics.value(f"{REQUEST_SECONDS}_count", **labels))
        # Each observation lies in its bucket: the sum is between the lower and upper bounds.
        lower = upper = 0.0
        previous_bound, previous_count = 0.0, 0.0
        for bound, count in buckets[:-1]:
            lower += (count - previous_count) * previous_bound
            upper += (count - previous_count) * bound
            previous_bound, previous_count = bound, count
        assert counts[-1] == previous_count  # nothing slower than the last bound here
        seconds = metrics.value(f"{REQUEST_SECONDS}_sum", **labels)
        assert lower <= seconds <= upper, (entity, outcome, lower, seconds, upper)
    assert metrics.value(f"{REQUEST_SECONDS}_sum", entity="hero", outcome="hit") > 0
    assert metrics.value(f"{REQUEST_SECONDS}_count", entity="child", outcome="hit") == 0


async def test_breaker_state_gauge_turns_open_when_redis_dies(cached_instance, own_redis) -> None:
    async with cached_instance(
        own_redis.url,
        redis_socket_timeout=0.05,
        redis_connect_timeout=0.05,
        breaker_failure_threshold=2,
        breaker_cooldown_seconds=30,
    ) as (_app, client):
        hero_id = await create_hero(client)
        await client.get(f"{HEROES}/{hero_id}")
        closed = await scrape(client)
        own_redis.kill()
        for _ in range(3):
            assert (await client.get(f"{HEROES}/{hero_id}")).status_code == 200
        opened = await scrape(client)
        breaker = (await client.get("/cache/stats")).json()["breaker"]

    def states(metrics: Scrape) -> dict[str, float]:
        return {
            state: metrics.value("tales_cache_breaker_state", state=state)
            for state in ("closed", "open", "half_open", "disabled")
        }

    assert states(closed) == {"closed": 1, "open": 0, "half_open": 0, "disabled": 0}
    assert states(opened) == {"closed": 0, "open": 1, "half_open": 0, "disabled": 0}
    assert breaker == "open"
