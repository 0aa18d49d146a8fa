"""The lean hit path answers exactly as the full path does: status, headers (ETag and
content type included), body, the 304 of If-None-Match, and the same metrics and cache
statistics."""

import re
from typing import Any

import httpx
import pytest

from tests.api import payloads
from tests.near.conftest import NearInstance, near_copy, serving


def raw(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.headers.raw), response.content


async def requests_counted(client: httpx.AsyncClient, route: str, status: int) -> float:
    metrics = (await client.get("/metrics")).text
    pattern = (
        r'^tales_http_requests_total\{method="GET",route="'
        + re.escape(route)
        + rf'",status="{status}"\}} (\S+)$'
    )
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found[1]) if found else 0.0


@pytest.fixture
async def three(near_instance: NearInstance) -> Any:
    async with (
        near_instance() as (app, client),
        near_instance(cache_near_enabled=False) as (
            _plain_app,
            plain,
        ),
    ):
        hero = await client.post("/api/v1/heroes", json=payloads.hero(name="Nova"))
        child = await client.post("/api/v1/children", json=payloads.child(name="Ann"))
        story = await client.post(
            "/api/v1/stories", json=payloads.story_of_child(child.json()["id"])
        )
        paths = {
            "hero": f"/api/v1/heroes/{hero.json()['id']}",
            "child": f"/api/v1/children/{child.json()['id']}",
            "story": f"/api/v1/stories/{story.json()['id']}",
            "heroes": "/api/v1/heroes?language=en&limit=5",
            "stories": f"/api/v1/stories?child_id={child.json()['id']}",
        }
        await serving(app)
        yield app, client, plain, paths


@pytest.mark.parametrize("kind", ["hero", "child", "story", "heroes", "stories"])
async def test_a_near_hit_is_byte_identical_to_the_full_path(three: Any, kind: str) -> None:
    app, client, plain, paths = three
    path = paths[kind]
    full = await client.get(path)  # the full path (it fills the near cache)
    near = await near_copy(app, client, path)
    elsewhere = await plain.get(path)  # an instance without a near cache
    assert raw(near) == raw(full) == raw(elsewhere)


@pytest.mark.parametrize("kind", ["hero", "story"])
async def test_if_none_match_gets_the_same_304_from_the_near_cache(three: Any, kind: str) -> None:
    app, client, plain, paths = three
    etag = (await near_copy(app, client, paths[kind])).headers["etag"]
    stats = app.state.services.cache.stats[kind]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        before = stats.near_hits
        near = await client.get(paths[kind], headers={"If-None-Match": header})
        assert stats.near_hits == before + 1
        full = await plain.get(paths[kind], headers={"If-None-Match": header})
        assert near.status_code == 304
        assert raw(near) == raw(full)
    other = await client.get(paths[kind], headers={"If-None-Match": '"other"'})
    assert other.status_code == 200 and other.headers["etag"] == etag


async def test_a_near_hit_is_counted_like_a_hit_of_the_full_path(three: Any) -> None:
    app, client, _plain, paths = three
    await near_copy(app, client, paths["hero"])
    route = "/api/v1/heroes/{entity_id}"
    counted = await requests_counted(client, route, 200)
    stats = (await client.get("/cache/stats")).json()["entities"]["hero"]
    for _ in range(3):
        await client.get(paths["hero"])
    after = (await client.get("/cache/stats")).json()["entities"]["hero"]
    assert await requests_counted(client, route, 200) == counted + 3
    assert (after["hits"], after["near_hits"], after["misses"]) == (
        stats["hits"] + 3,
        stats["near_hits"] + 3,
        stats["misses"],
    )
    assert (await client.get("/cache/stats")).json()["near"]["entries"] >= 1


async def test_answers_that_do_not_copy_redis_are_not_kept_near(
    near_instance: NearInstance,
) -> None:
    """A 404 and a validation error are answered by the full path every time."""
    async with near_instance() as (app, client):
        await serving(app)
        missing = "/api/v1/heroes/00000000-0000-4000-8000-000000000000"
        bad = "/api/v1/heroes?limit=0"
        for path, status in ((missing, 404), (bad, 422)):
            for _ in range(2):
                assert (await client.get(path)).status_code == status
        assert len(app.state.services.cache.near.store) == 0
