"""The classic cache-aside race, made deterministic: a reader misses, reads the old row, and
is paused before its fill; a writer commits and invalidates; the reader resumes and tries to
store the old row. Afterwards every read must return the new version."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.cache.conftest import entry_key
from tests.support.loads import patch_loads
from tests.support.ports import free_port

HEROES = "/api/v1/heroes"
HERO = {"name": "Luna", "age": 7, "gender": "female", "language": "en"}
ADMIN_TOKEN = "race-admin"
SIGNAL_TIMEOUT = 10


class Pause:
    """Holds the first call of a repository method after its database read."""

    def __init__(self) -> None:
        self.loaded = asyncio.Event()
        self.resume = asyncio.Event()
        self.armed = True

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def paused(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            if self.armed:
                self.armed = False
                self.loaded.set()
                await self.resume.wait()
            return result

        return paused


@pytest.fixture
def pause_get(monkeypatch: pytest.MonkeyPatch) -> Pause:
    pause = Pause()
    patch_loads(monkeypatch, pause.wrap, "get")
    return pause


@pytest.fixture
def pause_list(monkeypatch: pytest.MonkeyPatch) -> Pause:
    pause = Pause()
    patch_loads(monkeypatch, pause.wrap, "list")
    return pause


async def create_hero_then_arm(
    client: httpx.AsyncClient, pause: Pause
) -> tuple[dict[str, Any], str]:
    """Create the hero with `pause` disarmed, then arm it for the next load; returns the hero
    and its URL."""
    pause.armed = False
    hero = (await client.post(HEROES, json=HERO)).json()
    pause.armed = True
    return hero, f"{HEROES}/{hero['id']}"


async def start_paused_read(
    client: httpx.AsyncClient, pause: Pause, url: str, params: dict[str, str] | None = None
) -> asyncio.Task[httpx.Response]:
    """Start a GET and return once `pause` holds its database load (read, not stored yet)."""
    reader = asyncio.create_task(client.get(url, params=params))
    await asyncio.wait_for(pause.loaded.wait(), 5)
    return reader


async def joined(app: FastAPI, misses: int) -> None:
    """Return once `app` has counted `misses` hero misses. A reader that misses joins the
    load in flight in the same step (no await in between), so from then on it waits on it."""
    stats = app.state.services.cache.stats["hero"]
    async with asyncio.timeout(SIGNAL_TIMEOUT):
        while stats.misses < misses:
            await asyncio.sleep(0)


@pytest.fixture
async def hero_app(cached_instance) -> AsyncIterator[Any]:
    async with cached_instance(admin_token=ADMIN_TOKEN) as app_and_client:
        yield app_and_client


async def test_reader_paused_before_fill_cannot_store_row_older_than_write(
    hero_app, pause_get: Pause, redis_server
) -> None:
    _app, client = hero_app
    hero, url = await create_hero_then_arm(client, pause_get)

    reader = await start_paused_read(client, pause_get, url)  # holds version 1, not stored yet

    write = await client.patch(url, json={"name": "Luna Moon"})
    assert write.status_code == 200 and write.json()["version"] == 2

    pause_get.resume.set()
    stale = await reader
    assert stale.json()["version"] == 1  # it started before the write was acknowledged

    for _ in range(3):
        after = await client.get(url)
        assert after.json()["version"] == 2
        assert after.json()["name"] == "Luna Moon"
    stored = redis_server.client().get(entry_key("hero", hero["id"]))
    assert b'"version":2' in stored


async def test_reader_joining_an_older_load_after_a_write_reads_the_new_version(
    hero_app, pause_get: Pause
) -> None:
    """A request that starts after the write was acknowledged must not take the result of a
    single-flight load that began before it."""
    app, client = hero_app
    _hero, url = await create_hero_then_arm(client, pause_get)

    leader = await start_paused_read(client, pause_get, url)
    assert (await client.patch(url, json={"age": 8})).status_code == 200

    follower = asyncio.create_task(client.get(url))  # starts after the acknowledged write
    await joined(app, misses=2)  # the leader's miss and the follower's
    pause_get.resume.set()
    assert (await leader).json()["version"] == 1
    answer = (await follower).json()
    assert answer["version"] == 2 and answer["age"] == 8


async def test_list_fill_made_before_a_write_lands_where_nobody_reads(
    hero_app, pause_list: Pause
) -> None:
    _app, client = hero_app
    pause_list.armed = True
    # the reader read the empty list and has not stored it yet
    reader = await start_paused_read(client, pause_list, HEROES, params={"language": "en"})

    created = await client.post(HEROES, json=HERO)
    assert created.status_code == 201

    pause_list.resume.set()
    assert (await reader).json()["total"] == 0
    for _ in range(3):
        page = (await client.get(HEROES, params={"language": "en"})).json()
        assert [item["id"] for item in page["items"]] == [created.json()["id"]]


async def test_delete_is_not_undone_by_a_paused_reader(hero_app, pause_get: Pause) -> None:
    _app, client = hero_app
    _hero, url = await create_hero_then_arm(client, pause_get)

    reader = await start_paused_read(client, pause_get, url)
    assert (await client.delete(url)).status_code == 204
    pause_get.resume.set()
    await reader
    assert (await client.get(url)).status_code == 404


async def test_write_seen_by_a_second_instance_sharing_redis(cached_instance) -> None:
    async with cached_instance() as (_, first), cached_instance() as (_, second):
        hero = (await first.post(HEROES, json=HERO)).json()
        url = f"{HEROES}/{hero['id']}"
        assert (await second.get(url)).json()["version"] == 1  # cached by the second
        assert (await second.get(HEROES, params={"name": "Luna"})).json()["total"] == 1
        await first.patch(url, json={"name": "Stella"})
        assert (await second.get(url)).json()["name"] == "Stella"
        assert (await second.get(HEROES, params={"name": "Luna"})).json()["total"] == 0
        assert (await second.get(HEROES, params={"name": "Stella"})).json()["total"] == 1


async def test_reader_arriving_after_a_write_does_not_join_an_older_load_while_redis_is_down(
    cached_instance, pause_get: Pause
) -> None:
    """With Redis unreachable there is no marker to compare with: a load that began before a
    write this process acknowledged must take no new callers."""
    async with cached_instance(redis_url=f"redis://127.0.0.1:{free_port()}/0") as (app, client):
        _hero, url = await create_hero_then_arm(client, pause_get)

        leader = await start_paused_read(client, pause_get, url)
        assert (await client.patch(url, json={"age": 9})).status_code == 200

        follower = asyncio.create_task(client.get(url))
        await joined(app, misses=2)
        pause_get.resume.set()
        assert (await leader).json()["version"] == 1
        assert (await follower).json()["version"] == 2


async def test_fill_read_before_an_epoch_move_is_not_stored(
    hero_app, pause_get: Pause, redis_server
) -> None:
    """A flush moves the epoch: a reader that missed under the old epoch cannot store what it
    read into the new one."""
    app, client = hero_app
    hero, url = await create_hero_then_arm(client, pause_get)
    reader = await start_paused_read(client, pause_get, url)
    flushed = await client.delete(
        "/cache/heroes", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert flushed.status_code == 200
    sets = app.state.services.cache.stats["hero"].sets

    pause_get.resume.set()
    assert (await reader).json()["version"] == 1
    assert app.state.services.cache.stats["hero"].sets == sets  # the fill was refused
    assert redis_server.client().get(entry_key("hero", hero["id"])) is None


async def test_reader_joining_a_load_older_than_a_write_made_elsewhere_loads_again(
    cached_instance, pause_get: Pause
) -> None:
    """Instance B's load began before instance A's write; a B reader that arrives after the
    write sees A's marker (a newer version) in Redis, so it does not take the older result of
    the load it joined."""
    async with cached_instance() as (_app_a, a), cached_instance() as (app_b, b):
        _hero, url = await create_hero_then_arm(a, pause_get)
        leader = await start_paused_read(b, pause_get, url)
        assert (await a.patch(url, json={"age": 8})).status_code == 200

        follower = asyncio.create_task(b.get(url))  # starts after the acknowledged write
        await joined(app_b, misses=2)
        pause_get.resume.set()
        assert (await leader).json()["version"] == 1
        answer = (await follower).json()
        assert answer["version"] == 2 and answer["age"] == 8
