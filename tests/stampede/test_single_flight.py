"""Cache stampede protection inside one process and across instances sharing Redis.

200 concurrent requests for one cold key cause exactly one SELECT: the other requests of the
process join the in-flight load (single flight, no Redis needed), and another instance waits
on the Redis lease and reads the fill. Hero loads are held (`load_gate`) until every request
has looked the key up, so all are waiting when the load returns: without the protection each
would have sent its own SELECT.
"""

import asyncio

import httpx

from tests.stampede.helpers import HERO, HEROES, LoadGate, StatementLog, lookups
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

REQUESTS = 200


async def create_hero(client: httpx.AsyncClient, **overrides: object) -> str:
    response = await client.post(HEROES, json={**HERO, **overrides})
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def get_many(client: httpx.AsyncClient, url: str, count: int) -> list[httpx.Response]:
    return await asyncio.gather(*(client.get(url) for _ in range(count)))


def assert_identical_ok(responses: list[httpx.Response]) -> None:
    assert [r.status_code for r in responses] == [200] * len(responses)
    assert len({r.content for r in responses}) == 1
    assert len({r.headers.get("etag") for r in responses}) == 1


def script_calls(redis_server: RedisServer) -> int:
    """Lua script runs since the last CONFIG RESETSTAT (a NOSCRIPT retry is not a run)."""
    stats = redis_server.client().info("commandstats")
    runs = [stats.get(f"cmdstat_{name}", {}) for name in ("evalsha", "eval")]
    return sum(run.get("calls", 0) - run.get("failed_calls", 0) for run in runs)


async def test_concurrent_gets_of_a_cold_hero_make_one_select_and_identical_answers(
    cached_instance, load_gate: LoadGate, redis_server: RedisServer
) -> None:
    async with cached_instance() as (app, client):
        hero_id = await create_hero(client)
        load_gate.hold_until(lambda: lookups(app) >= REQUESTS)
        redis_server.client().config_resetstat()
        with StatementLog().listening(app) as log:
            responses = await get_many(client, f"{HEROES}/{hero_id}", REQUESTS)

        assert len(log.selects("heroes", hero_id)) == 1
        assert_identical_ok(responses)
        assert responses[0].json()["id"] == hero_id
        stats = (await client.get("/cache/stats")).json()["entities"]["hero"]
        assert stats["database_loads"] == 1
        assert stats["stampede_waits"] == REQUESTS - 1
        # the followers waited in process: one read each, plus the leader's lease read and fill
        assert script_calls(redis_server) <= REQUESTS + 2


async def test_concurrent_cold_list_queries_make_one_select_of_the_page(
    cached_instance, load_gate: LoadGate, redis_server: RedisServer
) -> None:
    async with cached_instance() as (app, client):
        hero_ids = {await create_hero(client, name=f"Hero {i}") for i in range(3)}
        load_gate.hold_until(lambda: lookups(app) >= REQUESTS)
        redis_server.client().config_resetstat()
        with StatementLog().listening(app) as log:
            responses = await get_many(client, f"{HEROES}?language=en", REQUESTS)

        page_selects = log.selects("heroes", "en", where="ORDER BY")
        count_selects = log.selects("heroes", "en", where="count(")
        assert (len(page_selects), len(count_selects)) == (1, 1)
        assert_identical_ok(responses)
        assert {item["id"] for item in responses[0].json()["items"]} == hero_ids
        stats = (await client.get("/cache/stats")).json()["entities"]["hero"]
        assert stats["database_loads"] == 1
        assert script_calls(redis_server) <= REQUESTS + 2


async def test_single_flight_works_without_redis(cached_instance, load_gate: LoadGate) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    async with cached_instance(dead_redis) as (app, client):
        hero_id = await create_hero(client)
        load_gate.hold_until(lambda: lookups(app) >= REQUESTS)
        with StatementLog().listening(app) as log:
            responses = await get_many(client, f"{HEROES}/{hero_id}", REQUESTS)

        assert len(log.selects("heroes", hero_id)) == 1
        assert_identical_ok(responses)
        body = (await client.get("/cache/stats")).json()
        assert body["breaker"] == "open"
        assert body["entities"]["hero"]["database_loads"] == 1
        assert body["entities"]["hero"]["sets"] == 0


async def test_second_instance_waits_on_the_redis_lease_and_reads_the_fill(
    cached_instance, load_gate: LoadGate
) -> None:
    half = REQUESTS // 2
    # generous: the lease outlives the held load, and the other instance waits for it
    # a pool that never runs dry: on a loaded machine half the requests queueing for ten
    # connections could time out and open the breaker, which is not what this test is about
    lease = {
        "cache_lease_ms": 10_000,
        "cache_lease_wait_ms": 10_000,
        "redis_max_connections": half,
        "redis_pool_timeout": 10.0,
    }
    async with (
        cached_instance(**lease) as (app_a, client_a),
        cached_instance(**lease) as (app_b, client_b),
    ):
        assert app_a.state.services.cache is not app_b.state.services.cache
        hero_id = await create_hero(client_a)
        url = f"{HEROES}/{hero_id}"
        load_gate.hold_until(lambda: lookups(app_a, app_b) >= REQUESTS)
        with StatementLog().listening(app_a, app_b) as log:
            both = await asyncio.gather(
                get_many(client_a, url, half), get_many(client_b, url, half)
            )

        assert len(log.selects("heroes", hero_id)) == 1
        assert_identical_ok(both[0] + both[1])
        stats = [
            (await client.get("/cache/stats")).json()["entities"]["hero"]
            for client in (client_a, client_b)
        ]
        assert sorted(s["database_loads"] for s in stats) == [0, 1]
        waiting = next(s for s in stats if s["database_loads"] == 0)
        assert waiting["stampede_waits"] >= half - 1  # its requests waited instead of loading
        assert sum(s["sets"] for s in stats) == 1
