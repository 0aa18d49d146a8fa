"""Prefetching: reading a child from the database brings the first page of its stories
into the cache, in the background, bounded, off the request's path, with no second load."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from app.cache.prefetch import Prefetcher
from tests.api import payloads
from tests.api.helpers import url
from tests.cache.conftest import Api
from tests.operator.conftest import OperatorApi
from tests.support.loads import patch_loads

SIGNAL_TIMEOUT = 10


class Hold:
    """Holds every story list load until released (`loads` counts those that started)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0
        self.first = asyncio.Event()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def held(*args: Any, **kwargs: Any) -> Any:
            self.started += 1
            self.first.set()
            await self.release.wait()
            return await original(*args, **kwargs)

        return held


@pytest.fixture
def hold_story_lists(monkeypatch: pytest.MonkeyPatch) -> Hold:
    hold = Hold()
    hold.release.set()  # open until a test closes it
    patch_loads(monkeypatch, hold.wrap, "list", entity="story")
    return hold


def prefetcher(api: Api) -> Prefetcher:
    found = api.app.state.operations.prefetcher
    assert isinstance(found, Prefetcher)
    return found


async def settled(api: Api) -> None:
    """Every prefetch scheduled so far has finished."""
    async with asyncio.timeout(SIGNAL_TIMEOUT):
        while prefetcher(api).running:
            await asyncio.sleep(0.01)


async def child_with_stories(api: Api, stories: int = 2) -> str:
    child = await api.create("child", payloads.child())
    for _ in range(stories):
        await api.create("story", payloads.story_of_child(child["id"]))
    return str(child["id"])


def stories_of(child_id: str) -> tuple[str, dict[str, str]]:
    return url("story"), {"child_id": child_id}


async def story_page_is_a_hit(api: Api, child_id: str) -> bool:
    path, params = stories_of(child_id)
    before = await api.counters("story")
    response = await api.http.get(path, params=params)
    assert response.status_code == 200, response.text
    after = await api.counters("story")
    return (after["hits"], after["misses"]) == (before["hits"] + 1, before["misses"])


async def test_reading_a_child_brings_its_first_stories_page_in(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        child_id = await child_with_stories(api)
        await api.flush()

        assert (await api.get("child", child_id)).status_code == 200
        await settled(api)

        assert prefetcher(api).stats.completed == 1
        assert await story_page_is_a_hit(api, child_id)


async def test_prefetch_can_be_turned_off(operator_api: OperatorApi) -> None:
    async with operator_api(cache_prefetch=False) as api:
        assert api.app.state.operations.prefetcher is None
        child_id = await child_with_stories(api)
        await api.flush()
        await api.get("child", child_id)
        await asyncio.sleep(0.2)
        assert not await story_page_is_a_hit(api, child_id)


async def test_the_response_does_not_wait_for_the_prefetch(
    operator_api: OperatorApi, hold_story_lists: Hold
) -> None:
    async with operator_api() as api:
        child_id = await child_with_stories(api)
        await api.flush()
        hold_story_lists.release.clear()

        response = await asyncio.wait_for(api.get("child", child_id), SIGNAL_TIMEOUT)

        assert response.status_code == 200
        await asyncio.wait_for(hold_story_lists.first.wait(), SIGNAL_TIMEOUT)
        assert prefetcher(api).running == 1  # still held: the response came first
        hold_story_lists.release.set()
        await settled(api)
        assert await story_page_is_a_hit(api, child_id)


@pytest.mark.parametrize("near", [True, False])
async def test_hits_of_the_child_schedule_nothing(operator_api: OperatorApi, near: bool) -> None:
    """Only the database load of the child schedules a prefetch: a near hit and a Redis
    hit never reach it."""
    async with operator_api(cache_near_enabled=near) as api:
        child_id = await child_with_stories(api)
        await api.flush()
        await api.get("child", child_id)  # miss: one prefetch
        await settled(api)
        before = await api.counters("child")

        for _ in range(5):
            await api.get("child", child_id)

        after = await api.counters("child")
        assert after["hits"] == before["hits"] + 5
        assert prefetcher(api).stats.scheduled == 1


async def test_prefetches_are_bounded_and_the_extra_ones_dropped(
    operator_api: OperatorApi, hold_story_lists: Hold
) -> None:
    async with operator_api(cache_prefetch_concurrency=2) as api:
        children = [await child_with_stories(api, 1) for _ in range(5)]
        await api.flush()
        hold_story_lists.release.clear()

        for child_id in children:
            assert (await api.get("child", child_id)).status_code == 200

        stats = prefetcher(api).stats
        assert (stats.scheduled, stats.dropped, prefetcher(api).running) == (2, 3, 2)
        hold_story_lists.release.set()
        await settled(api)
        assert stats.completed == 2


async def test_a_cached_page_is_not_loaded_again(operator_api: OperatorApi) -> None:
    async with operator_api() as api:
        child_id = await child_with_stories(api)
        await api.flush()
        path, params = stories_of(child_id)
        await api.http.get(path, params=params)  # the page is cached now
        await api.flush("children")
        loads = (await api.counters("story"))["database_loads"]

        await api.get("child", child_id)  # a child miss: schedules the prefetch
        await settled(api)

        assert prefetcher(api).stats.already_cached == 1
        assert (await api.counters("story"))["database_loads"] == loads


async def test_a_page_being_loaded_is_joined_not_loaded_twice(
    operator_api: OperatorApi, hold_story_lists: Hold
) -> None:
    async with operator_api() as api:
        child_id = await child_with_stories(api)
        await api.flush()
        loads = (await api.counters("story"))["database_loads"]
        hold_story_lists.release.clear()
        path, params = stories_of(child_id)
        reader = asyncio.create_task(api.http.get(path, params=params))
        await asyncio.wait_for(hold_story_lists.first.wait(), SIGNAL_TIMEOUT)

        await api.get("child", child_id)  # its prefetch finds the page loading
        async with asyncio.timeout(SIGNAL_TIMEOUT):
            while (await api.counters("story"))["stampede_waits"] == 0:
                await asyncio.sleep(0.01)
        hold_story_lists.release.set()
        assert (await reader).status_code == 200
        await settled(api)

        assert hold_story_lists.started == 1
        assert (await api.counters("story"))["database_loads"] == loads + 1
        assert prefetcher(api).stats.completed == 1


def test_prefetch_is_on_by_default() -> None:
    from app.main import load_settings

    settings = load_settings(_env_file=None)
    assert (settings.cache_prefetch, settings.cache_prefetch_concurrency) == (True, 4)
