"""Redis trouble never becomes an API error or a stale answer: absent at start-up, killed
mid-run, corrupt entries, and disabled altogether. Each test runs its own redis-server."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.api import payloads
from tests.cache.conftest import (
    ADMIN_TOKEN,
    Api,
    all_keys,
    cache_settings,
    entity_keys,
    entry_key,
    serve,
)
from tests.conftest import make_settings
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

FAST_FAILURE = {
    "redis_socket_timeout": 0.25,
    "redis_connect_timeout": 0.25,
    "redis_pool_timeout": 0.25,
    "breaker_cooldown_seconds": 0.2,
}


async def exercise_crud(api: Api) -> None:
    """Create, read, list, update and delete every entity; the answers must come from the DB."""
    hero = await api.create("hero", payloads.hero(name="Offline"))
    child = await api.create("child", payloads.child(name="Nina"))
    story = await api.create("story", payloads.story_of_child(child["id"], hero_id=hero["id"]))
    for _ in range(2):
        assert (await api.get("hero", hero["id"])).json() == hero
        assert (await api.get("story", story["id"])).json()["child_name"] == "Nina"
        assert [h["id"] for h in (await api.list("hero", name="Offline"))["items"]] == [hero["id"]]
        assert (await api.list("child", name="Nina", age=5, gender="female"))["total"] == 1
        assert (await api.list("story", child_id=child["id"]))["total"] == 1

    await api.patch("hero", hero["id"], {"name": "Renamed", "language": "ru"})
    await api.patch("child", child["id"], {"name": "Nora"})
    await api.rate(story["id"], 9)
    assert (await api.get("hero", hero["id"])).json()["name"] == "Renamed"
    assert (await api.list("hero", name="Offline"))["total"] == 0
    assert (await api.list("hero", language="ru"))["items"][0]["id"] == hero["id"]
    refreshed = (await api.get("story", story["id"])).json()
    assert (refreshed["child_name"], refreshed["rating"]) == ("Nora", 9)
    assert (await api.list("story", child_name="Nora"))["total"] == 1

    await api.delete("hero", hero["id"])
    assert (await api.get("story", story["id"])).json()["hero_id"] is None
    await api.delete("child", child["id"])
    assert (await api.get("story", story["id"])).status_code == 404
    assert (await api.get("hero", hero["id"])).status_code == 404
    for entity in ("hero", "child", "story"):
        assert (await api.list(entity))["total"] == 0


async def test_app_starts_and_serves_everything_when_redis_is_absent(
    postgresql_database_url: str,
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    settings = cache_settings(postgresql_database_url, nothing_listens, **FAST_FAILURE)

    async with serve(settings) as api:
        await exercise_crud(api)
        stats = await api.stats()
        ready = await api.http.get("/health/ready")

    assert stats["status"] == "down"
    assert stats["total"]["errors"] > 0
    assert stats["total"]["hits"] == 0
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_redis_killed_mid_run_then_restarted_never_serves_pre_outage_values(
    postgresql_database_url: str,
) -> None:
    # appendonly: the pre-outage entries survive the restart, so serving them would be visible
    with RedisServer(appendonly=True) as server:
        settings = cache_settings(postgresql_database_url, server.url, **FAST_FAILURE)
        async with serve(settings) as api:
            hero = await api.create("hero", payloads.hero(name="Before", language="en"))
            child = await api.create("child", payloads.child(name="Kim"))
            story = await api.create("story", payloads.story_of_child(child["id"], title="Old"))
            assert (await api.entry("hero", hero["id"]))["name"] == "Before"
            assert await api.ids("hero", language="en") == [hero["id"]]
            assert await api.ids("hero", language="ru") == []
            assert (await api.entry("story", story["id"]))["title"] == "Old"
            assert (await api.entry("child", child["id"]))["name"] == "Kim"
            assert (await api.page("story"))["total"] == 1
            cached_keys = set(all_keys(server.client()))

            server.kill()
            assert (await api.get("hero", hero["id"])).json()["name"] == "Before"
            assert (await api.list("hero", language="en"))["total"] == 1
            await api.patch("hero", hero["id"], {"name": "During", "language": "ru"})
            added = await api.create("hero", payloads.hero(name="Added", language="ru"))
            await api.patch("story", story["id"], {"title": "New"})
            await api.patch("child", child["id"], {"name": "Lee"})
            assert (await api.get("hero", hero["id"])).json()["name"] == "During"
            assert (await api.list("hero", language="ru"))["total"] == 2
            assert (await api.list("hero", language="en"))["total"] == 0
            assert (await api.stats())["total"]["errors"] > 0

            server.restart()
            assert cached_keys <= set(all_keys(server.client())), "the AOF lost the entries"

            for _ in range(3):  # breaker open, half-open probe, closed: always fresh
                assert (await api.get("hero", hero["id"])).json()["name"] == "During"
                assert (await api.list("hero", language="en"))["total"] == 0
                ru = {h["id"] for h in (await api.list("hero", language="ru"))["items"]}
                assert ru == {hero["id"], added["id"]}
                fresh_story = (await api.get("story", story["id"])).json()
                assert (fresh_story["title"], fresh_story["child_name"]) == ("New", "Lee")
                assert (await api.get("child", child["id"])).json()["name"] == "Lee"
                assert (await api.list("story"))["items"][0]["title"] == "New"
                await asyncio.sleep(0.1)

            async def cache_is_up() -> bool:
                await api.get("hero", hero["id"])
                return (await api.stats())["status"] == "up"

            await eventually(cache_is_up)
            assert (await api.entry("hero", hero["id"]))["name"] == "During"
            assert set(await api.ids("hero", language="ru")) == {hero["id"], added["id"]}
            assert await api.ids("hero", language="en") == []
            assert (await api.entry("story", story["id"]))["title"] == "New"


#: Idle pooled connections held when Redis restarts (below the pool's bound of 10).
IDLE_CONNECTIONS = 6
#: Seconds for the event loop to read the end of the connections the killed server closed.
SEEN_BY_THE_EVENT_LOOP = 0.1


async def test_connections_pooled_before_a_quick_redis_restart_are_replaced_not_used(
    postgresql_database_url: str,
) -> None:
    """Redis restarted while the service was idle (nothing noticed the outage): the pooled
    connections the old process closed are replaced when they are taken from the pool, so the
    first reads after the restart are served without a single cache error (redis-py 8.1
    hands them out with maintenance notifications on, `app/cache/connection.py`)."""
    with RedisServer() as server:
        # no near cache: its heartbeats would meet a closed connection first
        settings = cache_settings(postgresql_database_url, server.url, cache_near_enabled=False)
        async with serve(settings) as api:
            heroes = [
                await api.create("hero", payloads.hero(name=f"Idle {i}"))
                for i in range(IDLE_CONNECTIONS)
            ]
            pool = api.app.state.services.cache.redis.connection_pool
            held = [await pool.get_connection() for _ in range(IDLE_CONNECTIONS)]
            for connection in held:
                await pool.release(connection)
            errors = (await api.counters("hero"))["errors"]

            server.kill()
            await asyncio.sleep(SEEN_BY_THE_EVENT_LOOP)  # as a service running meanwhile would
            server.restart()

            reads = await asyncio.gather(*(api.get("hero", hero["id"]) for hero in heroes))
            assert [r.json()["name"] for r in reads] == [hero["name"] for hero in heroes]
            assert (await api.counters("hero"))["errors"] == errors, "a closed connection was used"
            for hero in heroes:  # and the cache is in use again at once
                assert (await api.entry("hero", hero["id"]))["name"] == hero["name"]


def parsed(body: bytes) -> Any:
    """The JSON document, or None when the bytes are not valid JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None


def current_epoch(redis: Any, epoch_key: str) -> str:
    return redis.get(epoch_key).decode()


CORRUPTIONS: dict[str, Callable[[bytes, str], bytes]] = {
    "not-json": lambda entry, epoch: b"not json",
    "empty": lambda entry, epoch: b"",
    "json-of-another-shape": lambda entry, epoch: b'{"unexpected": true, "items": [1, 2]}',
    "json-array": lambda entry, epoch: b"[1, 2, 3]",
    "entry-head-without-metadata": lambda entry, epoch: (
        f'{{"state":"entry","epoch":{epoch},"version":1,"entity":{{"name":"Wrong"}}}}'.encode()
    ),
    "truncated": lambda entry, epoch: entry[: len(entry) // 2],
    "truncated-by-one-byte": lambda entry, epoch: entry[:-1],
}


@pytest.fixture
async def own_redis_api(postgresql_database_url: str, own_redis: RedisServer) -> AsyncIterator[Api]:
    """The cached app on a redis-server of this test alone, whose entries the test corrupts
    (behind Redis's back: no near copy may answer instead of the corrupt value)."""
    settings = cache_settings(postgresql_database_url, own_redis.url, cache_near_enabled=False)
    async with serve(settings) as api:
        yield api


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
async def test_corrupt_entry_is_answered_from_the_database_and_replaced(
    own_redis_api: Api, own_redis: RedisServer, corruption: str
) -> None:
    api, redis = own_redis_api, own_redis.client()
    hero = await api.create("hero", payloads.hero(name="Intact"))
    key = entry_key("hero", hero["id"])
    await api.entry("hero", hero["id"])
    good = redis.get(key)
    epoch = current_epoch(redis, entity_keys("hero").epoch_of(key))
    redis.set(key, CORRUPTIONS[corruption](good, epoch), ex=600)

    response = await api.get("hero", hero["id"])

    assert response.status_code == 200
    assert parsed(response.content) == hero, f"served {response.content!r}"
    assert response.headers["etag"] == f'"{hero["id"]}.1"'
    replaced = json.loads(redis.get(key))
    assert replaced["entity"] == hero
    assert (await api.entry("hero", hero["id"])) == hero  # cached again: a hit


@pytest.mark.parametrize(
    "corruption", ["not-json", "json-of-another-shape", "truncated", "truncated-by-one-byte"]
)
async def test_corrupt_list_page_is_answered_from_the_database_and_replaced(
    own_redis_api: Api, own_redis: RedisServer, corruption: str
) -> None:
    api, redis = own_redis_api, own_redis.client()
    heroes = [await api.create("hero", payloads.hero(name=n)) for n in ("One", "Two")]
    page = await api.page("hero", language="en")
    (key,) = [k for k in all_keys(redis) if k.startswith("tales:hero:{hero.pages}:lang:en:")]
    epoch = current_epoch(redis, entity_keys("hero").pages_epoch)
    redis.set(key, CORRUPTIONS[corruption](redis.get(key), epoch))

    response = await api.http.get("/api/v1/heroes", params={"language": "en"})

    assert response.status_code == 200
    served = parsed(response.content)
    assert served == page, f"served {response.content!r}"
    assert [item["id"] for item in served["items"]] == [h["id"] for h in reversed(heroes)]
    assert json.loads(redis.get(key))["entity"] == page
    assert await api.page("hero", language="en") == page


def tales_clients(redis: Any) -> list[dict[str, Any]]:
    return [client for client in redis.client_list() if client.get("name") == "tales-api"]


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
async def test_disabled_cache_never_connects_to_redis(
    postgresql_database_url: str, own_redis: RedisServer, enabled: bool
) -> None:
    redis = own_redis.client()
    connections = int(redis.info("stats")["total_connections_received"])  # this checker's
    settings = make_settings(
        postgresql_database_url, own_redis.url, redis_enabled=enabled, admin_token=ADMIN_TOKEN
    )
    async with serve(settings) as api:
        await exercise_crud(api)
        ready = (await api.http.get("/health/ready")).json()
        flushed = await api.flush()
        stats = await api.stats()
        clients = tales_clients(redis)

    if enabled:  # the control: the check below does see the app's connections
        assert clients
        assert stats["status"] == "up"
        assert flushed["cache_reachable"] is True
        return
    assert clients == []
    assert stats["status"] == "disabled"
    assert ready["cache"]["status"] == "disabled"
    assert ready["status"] == "ok"
    assert flushed["cache_reachable"] is False
    assert all_keys(redis) == []
    assert int(redis.info("stats")["total_connections_received"]) == connections
