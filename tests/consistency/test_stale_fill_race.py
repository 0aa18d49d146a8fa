"""The classic cache-aside race, made deterministic: a reader misses, reads the old row, and
is paused before its fill; a writer commits and invalidates; the reader resumes and tries to
store the old row. Afterwards every read must return the new version."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.heroes.repository import HeroRepository
from tests.support.ports import free_port

HEROES = "/api/v1/heroes"
HERO = {"name": "Luna", "age": 7, "gender": "female", "language": "en"}


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
    monkeypatch.setattr(HeroRepository, "get", pause.wrap(HeroRepository.get))
    return pause


@pytest.fixture
def pause_list(monkeypatch: pytest.MonkeyPatch) -> Pause:
    pause = Pause()
    monkeypatch.setattr(HeroRepository, "list", pause.wrap(HeroRepository.list))
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


@pytest.fixture
async def hero_app(cached_instance) -> AsyncIterator[Any]:
    async with cached_instance() as (_app, client):
        yield client


async def test_reader_paused_before_fill_cannot_store_row_older_than_write(
    hero_app, pause_get: Pause, redis_server
) -> None:
    client = hero_app
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
    stored = redis_server.client().get(f"tales:hero:{hero['id']}")
    assert b'"version":2' in stored


async def test_reader_joining_an_older_load_after_a_write_reads_the_new_version(
    hero_app, pause_get: Pause
) -> None:
    """A request that starts after the write was acknowledged must not take the result of a
    single-flight load that began before it."""
    client = hero_app
    _hero, url = await create_hero_then_arm(client, pause_get)

    leader = await start_paused_read(client, pause_get, url)
    assert (await client.patch(url, json={"age": 8})).status_code == 200

    follower = asyncio.create_task(client.get(url))  # starts after the acknowledged write
    await asyncio.sleep(0.05)  # let it reach the in-flight load
    pause_get.resume.set()
    assert (await leader).json()["version"] == 1
    answer = (await follower).json()
    assert answer["version"] == 2 and answer["age"] == 8


async def test_list_fill_made_before_a_write_lands_where_nobody_reads(
    hero_app, pause_list: Pause
) -> None:
    client = hero_app
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
    client = hero_app
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
    async with cached_instance(redis_url=f"redis://127.0.0.1:{free_port()}/0") as (_app, client):
        _hero, url = await create_hero_then_arm(client, pause_get)

        leader = await start_paused_read(client, pause_get, url)
        assert (await client.patch(url, json={"age": 9})).status_code == 200

        follower = asyncio.create_task(client.get(url))
        await asyncio.sleep(0.05)
        pause_get.resume.set()
        assert (await leader).json()["version"] == 1
        assert (await follower).json()["version"] == 2
